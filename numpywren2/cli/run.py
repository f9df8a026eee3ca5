"""``npw run ALGORITHM``: a built-in algorithm on a generated matrix, timed and checked against numpy.

Each entry: how to make the input (``n``, ``block``, a seed), the call, its nominal flop count (the
usual LAPACK counts) and its relative error measured against the input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


def _spd(n: int, rng) -> np.ndarray:
    g = rng.standard_normal((n, n))
    return g @ g.T + n * np.eye(n)


def _rel(a, b) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), np.finfo(float).tiny))


@dataclass(frozen=True)
class Algorithm:
    name: str
    what: str
    run: Callable  # (npw, n, block, executors, rng, progress) -> relative error
    flops: Callable[[int, int], float]


def _cholesky(npw, n, b, e, rng, progress):
    x = _spd(n, rng)
    L = npw.cholesky(x, block_size=b, executors=e, progress=progress).numpy()
    return _rel(L @ L.T, x)


def _gemm(npw, n, b, e, rng, progress):
    a, c = rng.standard_normal((n, n)), rng.standard_normal((n, n))
    return _rel(npw.matmul(a, c, block_size=b, executors=e, progress=progress).numpy(), a @ c)


def _tsqr(npw, n, b, e, rng, progress):
    a = rng.standard_normal((n, b))
    q, r = npw.tsqr(a, block_size=b, executors=e, progress=progress)
    return _rel(q.numpy() @ r.numpy(), a)


def _qr(npw, n, b, e, rng, progress):
    a = rng.standard_normal((n, n))
    q, r = npw.qr(a, block_size=b, executors=e, progress=progress)
    return _rel(q.numpy() @ r.numpy(), a)


def _svd(npw, n, b, e, rng, progress):
    a = rng.standard_normal((n, n))
    s = np.asarray(npw.svd(a, compute_uv=False, block_size=b, executors=e, progress=progress))
    return _rel(np.sort(s)[::-1], np.linalg.svd(a, compute_uv=False))


def _solve(npw, n, b, e, rng, progress):
    a, y = rng.standard_normal((n, n)) + n * np.eye(n), rng.standard_normal((n, 1))
    x = np.asarray(npw.solve(a, y, block_size=b, executors=e, progress=progress))
    return _rel(a @ x, y)


def _lu(npw, n, b, e, rng, progress):
    a = rng.standard_normal((n, n))
    p, lower, upper = npw.lu(a, block_size=b, executors=e, progress=progress)
    return _rel(np.asarray(p) @ np.asarray(lower) @ np.asarray(upper), a)


def _inv(npw, n, b, e, rng, progress):
    a = rng.standard_normal((n, n)) + n * np.eye(n)
    return _rel(a @ npw.inv(a, block_size=b, executors=e, progress=progress).numpy(), np.eye(n))


ALGORITHMS = {a.name: a for a in (
    Algorithm("cholesky", "Cholesky factor of a random SPD n×n matrix", _cholesky, lambda n, b: n**3 / 3),
    Algorithm("gemm", "product of two random n×n matrices", _gemm, lambda n, b: 2 * n**3),
    Algorithm("tsqr", "QR of a random n×block matrix (a tree of tile QRs)", _tsqr,
              lambda n, b: 2 * n * b**2 - 2 * b**3 / 3),
    Algorithm("qr", "QR of a random n×n matrix", _qr, lambda n, b: 4 * n**3 / 3),
    Algorithm("svd", "singular values of a random n×n matrix", _svd, lambda n, b: 8 * n**3 / 3),
    Algorithm("solve", "solution of a random well-conditioned n×n system", _solve, lambda n, b: 2 * n**3 / 3),
    Algorithm("lu", "LU with tournament pivoting of a random n×n matrix", _lu, lambda n, b: 2 * n**3 / 3),
    Algorithm("inv", "inverse of a random well-conditioned n×n matrix", _inv, lambda n, b: 2 * n**3),
)}
