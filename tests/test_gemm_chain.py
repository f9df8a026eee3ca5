"""gemm_chain (each output tile accumulated along k) against numpy, and npw.matmul's choice between it
and the tree of adds (gemm)."""

from __future__ import annotations

import numpy as np
import pytest

import numpywren2 as npw
from numpywren2.core import programs
from numpywren2.core.programs.gemm import gemm_program


@pytest.fixture(scope="module")
def rt():
    with npw.runtime(executors=2) as r:
        yield r


@pytest.mark.parametrize("program", [programs.gemm_chain, programs.gemm])
@pytest.mark.parametrize("m, k, n, block, dtype", [(70, 30, 50, 32, np.float64),    # K = 1
                                                   (64, 64, 40, 32, np.float64),    # K = 2
                                                   (61, 150, 45, 32, np.float64),   # K = 5, ragged
                                                   (50, 90, 33, 16, np.float32)])   # K = 6, float32
def test_both_programs_multiply_as_numpy(rt, program, m, k, n, block, dtype):
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
    A, B = npw.BigMatrix.from_numpy(a, block), npw.BigMatrix.from_numpy(b, block)
    C = npw.BigMatrix.empty((m, n), block, dtype)
    M, N, K = A.grid[0], B.grid[1], A.grid[1]
    job = npw.submit(program, A=A, B=B, C=C, M=M, N=N, K=K).wait()
    assert job.num_tasks == program.bind(M=M, N=N, K=K).num_tasks()
    if program is programs.gemm_chain:
        assert job.num_tasks == M * N * K  # no adds, no copies
    c = C.numpy()
    assert c.dtype == dtype
    ref = a.astype(float) @ b.astype(float)
    assert np.linalg.norm(c - ref) / (np.linalg.norm(a) * np.linalg.norm(b)) <= 10 * k * np.finfo(dtype).eps


def test_gemm_program_picks_the_chain_with_two_output_tiles_per_executor():
    assert gemm_program(64, 64, 64, executors=512) is programs.gemm_chain  # the paper's 256k GEMM
    assert gemm_program(2, 2, 100, executors=2) is programs.gemm_chain
    assert gemm_program(2, 2, 100, executors=3) is programs.gemm
    assert gemm_program(1, 1, 8, executors=1) is programs.gemm


@pytest.mark.parametrize("executors, expected", [(1, "chain"), (4, "tree")])
def test_matmul_runs_the_chosen_program(rt, executors, expected):
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((64, 320)), rng.standard_normal((320, 64))  # 2×2 output tiles, K = 10
    C = npw.matmul(a, b, block_size=32, executors=executors).numpy()
    tree = programs.gemm.bind(M=2, N=2, K=10).num_tasks()
    assert tree > 4 * 10
    assert npw.last_job().num_tasks == {"chain": 4 * 10, "tree": tree}[expected]
    assert np.linalg.norm(C - a @ b) / (np.linalg.norm(a) * np.linalg.norm(b)) <= 10 * 320 * np.finfo(float).eps


def test_chain_critical_path_and_counts_in_closed_form():
    c = programs.gemm_chain.cost(block=4, M=3, N=2, K=7)
    assert c.values["tasks"] == programs.gemm_chain.bind(M=3, N=2, K=7).num_tasks() == 42
    assert c.values["flops"] == 42 * 2 * 4**3
    assert c.critical_path.values["tasks"] == 7
