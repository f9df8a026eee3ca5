"""Executor integrity: every fault ends as a correct answer or a clear, quick error.

Kernel outputs checked against their tile slots (issue 11, item 4), tile checksums (item 5),
canonical task messages and the iteration space (item 7), lost, corrupt and unwritable tiles
(item 8), duplicated tasks and executors that resume after their job ended (item 11).

Jobs run on real executors (processes, or ``Executor`` objects in this process where a test must
hold one between two protocol steps with its ``hooks``), real SQLite and Redis, moto's S3.
Faults are real: files edited, truncated or replaced, a full tmpfs, a read-only bind mount.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import random
import subprocess
import sys
import textwrap
import threading
import uuid

import numpy as np
import pytest

import lambdapack as lp
import numpywren2 as npw
from executor.worker import Executor
from numpywren2.client.runtime import open_queue, open_state, open_store
from numpywren2.core import programs
from numpywren2.core.backends import (
    BackendError,
    CorruptTileError,
    LocalFileStore,
    TileLostError,
    decode_tile,
    encode_tile,
    with_retries,
)
from numpywren2.core.jobspec import KernelOutputError
from numpywren2.core.signing import seal_message, task_key

WAIT = 60  # seconds: far below the two minutes of the provisioner's five-failures rule


def sealed(job, bodies: list[str]) -> list[str]:
    """``bodies`` as queue messages of ``job`` written by a holder of its key (``core.signing``)."""
    key = task_key(job.runtime.secret(), job.id)
    return [seal_message(key, b) for b in bodies]

def tile_path(store: LocalFileStore, key: str) -> str:
    """The file holding tile ``key``: its own, or its matrix's pack (``tile_location`` gives the offset)."""
    return store.tile_location(key)[0]


def gemm_inputs(seed: int = 0, m: int = 8, k: int = 8, n: int = 8, block: int = 4):
    rng = np.random.default_rng(seed)
    A, B = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    return A, B, npw.BigMatrix.from_numpy(A, block), npw.BigMatrix.from_numpy(B, block)


def submit_gemm(Am, Bm, executors=None):
    C = npw.BigMatrix.empty((Am.shape[0], Bm.shape[1]), (Am.block_size[0], Bm.block_size[1]))
    job = npw.submit(programs.gemm, A=Am, B=Bm, C=C, M=Am.grid[0], N=Bm.grid[1], K=Am.grid[1], executors=executors)
    return job, C


def error_record(rt, job) -> dict:
    return json.loads(rt.state.job(job.id)["error"])


@pytest.fixture
def rt():
    with npw.runtime(executors=1) as r:
        yield r


# =============================================================================== item 4: kernel outputs


def _bad_kernel(case: str):
    def bad(x, i):
        good = np.ones_like(x) * 2.0
        if case == "ok":
            return good
        if case == "1x1":
            return np.ones((1, 1))
        if case == "int64":
            return good.astype(np.int64)
        if case == "float32":
            return good.astype(np.float32)
        if case == "tuple":
            return good, good
        if case == "none":
            return None
        if case == "scalar":
            return np.float64(2.0)
        if case == "list":
            return good.tolist()
        if case == "full-size edge":  # the ragged last tile (2x4) must not get a full 4x4 tile
            return np.ones((4, 4)) if i == 2 else good
        raise AssertionError(case)

    return lp.kernel(bad)


def one_output_program(kernel, filename="user_kernels.py"):
    return lp.Program.from_source(textwrap.dedent("""
        def apply(X: lp.Matrix, Y: lp.Matrix, N: int):
            for i in range(N):
                Y[i, 0] = bad(X[i, 0], i)
    """), {"bad": kernel}, filename=filename)


@pytest.mark.parametrize("case, got", [
    ("1x1", "got shape (1, 1)"), ("int64", "got dtype int64"), ("float32", "got dtype float32"),
    ("tuple", "got a tuple of 2 values"), ("none", "got None"), ("scalar", "got a numpy scalar of dtype float64"),
    ("list", "got a list of 4 values"), ("full-size edge", "got shape (4, 4)")])
def test_a_kernel_output_that_does_not_fit_its_slot_fails_the_job_at_once(rt, case, got):
    X = npw.BigMatrix.from_numpy(np.arange(40.0).reshape(10, 4), 4)  # 3x1 grid, last tile 2x4
    Y = npw.BigMatrix.empty((10, 4), 4)
    job = npw.submit(one_output_program(_bad_kernel(case)), X=X, Y=Y, N=3)
    expected = "expected an ndarray of shape (2, 4)" if case == "full-size edge" else \
        "expected an ndarray of shape (4, 4) and dtype float64"
    with pytest.raises(KernelOutputError, match=r"task bad@L4\(i=\d\) \(line 4 of user_kernels.py\)") as e:
        job.wait(timeout=WAIT)
    msg = str(e.value)
    assert "kernel bad returned a tile that does not fit its output Y[" in msg
    assert expected in msg and got in msg, msg
    assert isinstance(e.value, TypeError) and isinstance(e.value, ValueError)
    rec = error_record(rt, job)
    assert rec["key"].startswith(f"{Y.name}/") and rec["line"] == 4


def test_outputs_that_fit_their_slots_including_a_ragged_edge_are_stored(rt):
    X = npw.BigMatrix.from_numpy(np.arange(40.0).reshape(10, 4), 4)
    Y = npw.BigMatrix.empty((10, 4), 4)
    npw.submit(one_output_program(_bad_kernel("ok")), X=X, Y=Y, N=3).wait(timeout=WAIT)
    assert np.array_equal(Y.numpy(), np.full((10, 4), 2.0))


def _scratch_kernel(case: str):
    def make(x):
        if case == "3-D":
            return np.ones((2, 4, 4))
        if case == "object":
            return np.array([[None]], dtype=object)
        if case == "int":
            return np.ones((4, 4), np.int32)
        return x * 2

    return lp.kernel(make)


@lp.kernel
def keep(s):
    return s.copy()


@pytest.mark.parametrize("case, got", [("3-D", "got a 3-D array of shape (2, 4, 4)"), ("object", "got dtype object"),
                                       ("int", "got dtype int32")])
def test_scratch_tiles_must_be_2d_float_arrays(rt, case, got):
    prog = lp.Program.from_source(textwrap.dedent("""
        def via_scratch(X: lp.Matrix, Y: lp.Matrix, S: lp.Matrix, N: int):
            for i in range(N):
                S[i, 0] = make(X[i, 0])
                Y[i, 0] = keep(S[i, 0])
    """), {"make": _scratch_kernel(case), "keep": keep}, filename="scratchy.py")
    X = npw.BigMatrix.from_numpy(np.ones((8, 4)), 4)
    job = npw.submit(prog, X=X, Y=npw.BigMatrix.empty((8, 4), 4), N=2)
    with pytest.raises(KernelOutputError, match=r"task make@L4\(i=\d\) \(line 4 of scratchy.py\)") as e:
        job.wait(timeout=WAIT)
    assert "expected a 2-D float32 or float64 ndarray (a scratch tile)" in str(e.value) and got in str(e.value)


@lp.kernel
def one_for_two(x):
    return x


def test_a_kernel_with_two_outputs_must_return_a_tuple_of_two_tiles(rt):
    prog = lp.Program.from_source(textwrap.dedent("""
        def split2(X: lp.Matrix, Y: lp.Matrix, Z: lp.Matrix):
            Y[0, 0], Z[0, 0] = one_for_two(X[0, 0])
    """), {"one_for_two": one_for_two}, filename="two.py")
    X = npw.BigMatrix.from_numpy(np.ones((4, 4)), 4)
    job = npw.submit(prog, X=X, Y=npw.BigMatrix.empty((4, 4), 4), Z=npw.BigMatrix.empty((4, 4), 4))
    with pytest.raises(KernelOutputError, match=r"kernel one_for_two returned an ndarray of shape \(4, 4\) and dtype "
                                                r"float64; expected a tuple of 2 tiles, for its outputs Y\[0, 0\], "
                                                r"Z\[0, 0\]"):
        job.wait(timeout=WAIT)


def test_float32_generators_write_float32_tiles(rt):
    X = npw.random.normal((6, 5), 4, dtype=np.float32)
    ref = npw.random.normal((6, 5), 4)
    assert X.get_tile(0, 0).dtype == np.float32 and np.array_equal(X.numpy(), ref.numpy().astype(np.float32))
    assert npw.random.spd(6, 4, dtype=np.float32).get_tile(1, 1).dtype == np.float32


# =============================================================================== item 5: checksums


def encoded(a) -> bytearray:
    return bytearray(b"".join(bytes(p) for p in encode_tile(a)))


def test_the_tile_checksum_catches_a_flipped_bit_anywhere():
    a = np.random.default_rng(0).standard_normal((5, 3))
    raw = encoded(a)
    assert np.array_equal(decode_tile(bytes(raw), "k"), a)
    for pos in range(len(raw)):  # every byte: magic, version, dtype, ndim, CRC, shape, padding, data
        bad = bytearray(raw)
        bad[pos] ^= 1 << (pos % 8)
        with pytest.raises(CorruptTileError, match="tile 'A/1/2' ") as e:
            decode_tile(bad, "A/1/2")
        assert e.value.key == "A/1/2"
    with pytest.raises(CorruptTileError, match="truncated or over-long"):
        decode_tile(raw[:-8], "k")
    with pytest.raises(CorruptTileError, match="truncated or over-long"):
        decode_tile(raw + b"\0" * 8, "k")
    with pytest.raises(CorruptTileError, match="not a numpywren2 tile"):
        decode_tile(b"x" * 100, "k")
    with pytest.raises(CorruptTileError, match="shorter than a tile header"):
        decode_tile(b"", "k")


def test_tile_data_is_aligned_for_the_kernels():
    raw = encoded(np.ones((3, 3)))
    assert decode_tile(raw).ctypes.data % 16 == 0 and decode_tile(raw).flags.aligned


@pytest.mark.parametrize("shape", [(4, 4), (256, 256)], ids=["read", "memory-mapped"])
def test_local_store_verifies_read_and_memory_mapped_tiles(tmp_path, shape):
    store = LocalFileStore(tmp_path)
    a = np.random.default_rng(1).standard_normal(shape)
    store.put("job/T/0/0", a)
    assert np.array_equal(store.get("job/T/0/0"), a)
    path = tile_path(store, "job/T/0/0")
    with open(path, "r+b") as f:  # one flipped bit in the middle of the data
        f.seek(os.path.getsize(path) // 2)
        b = f.read(1)
        f.seek(-1, io.SEEK_CUR)
        f.write(bytes([b[0] ^ 0x10]))
    with pytest.raises(CorruptTileError, match=r"tile 'job/T/0/0' is corrupt: checksum mismatch"):
        store.get("job/T/0/0")


def _s3_store(moto_server):
    from numpywren2.core.backends.aws import S3TileStore

    return S3TileStore(f"s3://chk-{uuid.uuid4().hex[:8]}/p?endpoint_url={moto_server.endpoint}&create=1")


def _count_gets(store, corrupt_first: int = 0) -> list:
    """Count the store's GetObject calls; corrupt the body of the first ``corrupt_first`` responses (an
    injected transfer fault: the object in S3 stays intact)."""
    from botocore.response import StreamingBody

    calls = []

    def after_get(parsed, **_):
        calls.append(1)
        if len(calls) <= corrupt_first:
            body = bytearray(parsed["Body"].read())
            body[-1] ^= 0xFF
            parsed["Body"] = StreamingBody(io.BytesIO(bytes(body)), len(body))

    store.client.meta.events.register("after-call.s3.GetObject", after_get)
    return calls


def test_s3_store_reads_a_corrupt_transfer_once_more(moto_server):
    store = _s3_store(moto_server)
    a = np.arange(12.0).reshape(3, 4)
    store.put("job/T/0/0", a)
    calls = _count_gets(store, corrupt_first=1)
    assert np.array_equal(store.get("job/T/0/0"), a) and len(calls) == 2


def test_s3_store_fails_on_a_corrupt_object_after_reading_it_twice(moto_server):
    store = _s3_store(moto_server)
    raw = encoded(np.arange(12.0).reshape(3, 4))
    raw[70] ^= 0x01
    store.client.put_object(Bucket=store.bucket, Key=store._key("job/T/0/1"), Body=bytes(raw))
    calls = _count_gets(store)
    with pytest.raises(CorruptTileError, match=r"tile 'job/T/0/1' is corrupt: checksum mismatch .*\(read twice"):
        store.get("job/T/0/1")
    assert len(calls) == 2


def test_a_corrupted_input_tile_fails_the_job_naming_the_tile(rt):
    _, _, Am, Bm = gemm_inputs()
    key = Am.tile_key(1, 0)
    path, offset, _ = rt.store.tile_location(key)  # a slot of A's pack
    with open(path, "r+b") as f:  # a byte of data changed on disk, as by a bad sector or a stray write
        f.seek(offset + 100)
        f.write(b"\x7f")
    job, _ = submit_gemm(Am, Bm)
    with pytest.raises(CorruptTileError, match=rf"task matmul@L\d+\(i=1, j=\d, k=0\) \(line \d+ of .*gemm.py\) failed: "
                                               rf".*reading input tile '{key}' \(matrix A, tile \(1, 0\)\): tile "
                                               rf"'{key}' is corrupt: checksum mismatch"):
        job.wait(timeout=WAIT)
    assert error_record(rt, job)["key"] == key


# =============================================================================== item 7: canonical tasks


@pytest.mark.parametrize("name, params", [
    ("cholesky", {"N": 5}), ("gemm", {"M": 2, "N": 3, "K": 5}), ("tsqr", {"N": 7}),
    ("qr_lstsq", {"M": 4, "N": 3, "C": 3, "BS": 6}),
    ("qr_form_q", {"M": 4, "N": 3, "ROWS": 4, "BS": 6, "QC": 3, "QCOLS": 4, "SINGLE": 0}),
    ("trsm_forward", {"N": 4, "C": 2, "TRANS": 0, "UNIT": 0, "BS": 2})])
def test_contains_is_exactly_the_iteration_space(name, params):
    b = getattr(programs, name).bind(**params)
    tasks = {(int(t[0]), t[1]) for t in b.tasks()}
    assert all(b.contains(t) for t in tasks)
    rng = random.Random(0)
    for t in list(tasks)[:200]:
        for _ in range(10):
            idx = list(t[1])
            if idx:
                idx[rng.randrange(len(idx))] += rng.choice([-3, -1, 1, 2, 7])
            stmt = t[0] if rng.random() < 0.8 else rng.randrange(-2, len(b.stmts) + 2)
            assert b.contains((stmt, tuple(idx))) == ((stmt, tuple(idx)) in tasks)
    assert not b.contains((0, (True,) * len(b.stmts[0].vars)))
    assert not b.contains((0, (0.0,) * len(b.stmts[0].vars)))
    assert not b.contains("[0, [0]]") and not b.contains((0,)) and not b.contains((True, ()))


def test_gemm_with_reformatted_and_out_of_space_copies_in_its_queue(rt):
    A, B, Am, Bm = gemm_inputs(seed=3, m=12, k=16, n=8)  # 3x4 by 4x2 tiles: a 2-level reduction tree
    job, C = submit_gemm(Am, Bm, executors=0)
    real = list(job.bound.tasks())
    reformatted = [json.dumps([int(t[0]), list(t[1])]) for t in real]  # "[0, [1, 2, 3]]"
    assert all(r != t.to_json() for r, t in zip(reformatted, real) if t[1])
    assert [s.label.split("@")[0] for s in job.bound.stmts] == ["matmul", "matmul", "add", "add", "copy"]
    invalid = [  # statements: 0 C = matmul (if K == 1), 1 T = matmul, 2 root add, 3 add, 4 copy (odd node out)
        "[5, [0, 0, 0]]",  # statement id out of range
        "[-1, [0, 0, 0, 0]]",  # negative statement id (as a list index it would name the last statement)
        "[1, [0, 0, 0, 0]]",  # one loop value too many
        "[1, [0, 0]]",  # one too few
        "[1, [3, 0, 0]]",  # i outside range(M)
        "[1, [0, 0, -1]]",  # k outside range(K)
        "[3, [0, 0, 0, 1]]",  # a level-0 add at an odd k (outside range(0, K, 2))
        "[2, [0, 0, 0, 0]]",  # the root add at level 0: its guard (level == depth - 1) is false
        "[0, [0, 0]]",  # the K == 1 branch: its guard is false for K = 4
        "[4, [0, 0, 0, 0]]",  # a copy where no node is odd (k + 2**level < K)
        "[1, [0, 0, 1.0]]", "[1, [0, true, 0]]", '[1, ["0", 0, 0]]', "{}", "not json", "[1]", "",
    ]
    job.queue.send(sealed(job, reformatted + invalid))  # sent by a holder of the key
    proc = subprocess.run([sys.executable, "-m", "executor", "--store", rt.urls["store"], "--queue", rt.urls["queue"],
                           "--state", rt.urls["state"], "--job", job.id, "--idle-timeout", "1"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    job.wait(timeout=WAIT)
    assert np.allclose(C.numpy(), A @ B)
    counters = rt.state.job(job.id)["counters"]
    assert counters["completed"] == job.num_tasks == len(real), "each distinct task counted once"
    assert counters["tasks_dropped"] == len(invalid) == job.stats()["tasks_dropped"]
    assert proc.stderr.count("dropped the queue message") == len(invalid)
    assert "is not one of the program's 0..4" in proc.stderr and "has 3 loop variable(s)" in proc.stderr
    assert "is outside its loop bounds or guards" in proc.stderr and "not a task" in proc.stderr


# =============================================================================== item 8: faults


def test_permanent_os_errors_are_not_retried():
    for code in (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT, errno.EISDIR):
        calls = []

        def fail(code=code, calls=calls):
            calls.append(1)
            raise OSError(code, os.strerror(code))

        with pytest.raises(OSError) as e:
            with_retries(fail, base_delay=0.001)
        assert e.value.errno == code and len(calls) == 1, errno.errorcode[code]
    calls = []

    def reset():
        calls.append(1)
        raise ConnectionResetError(errno.ECONNRESET, "reset")

    with pytest.raises(BackendError):
        with_retries(reset, attempts=3, base_delay=0.001)
    assert len(calls) == 3, "transient errors are still retried"


def test_a_missing_input_tile_fails_the_job_at_once_naming_it(rt):
    _, _, Am, Bm = gemm_inputs()
    key = Bm.tile_key(0, 1)
    rt.store.delete(key)
    job, _ = submit_gemm(Am, Bm)
    with pytest.raises(TileLostError, match=rf"task matmul@L\d+\(i=\d, j=1, k=0\) \(line \d+ of .*gemm.py\) failed: "
                                            rf".*input tile '{key}' \(matrix B, tile \(0, 1\)\) is missing: it was "
                                            "deleted, or never uploaded"):
        job.wait(timeout=WAIT)
    assert error_record(rt, job)["key"] == key


def test_a_truncated_input_tile_fails_the_job_at_once(rt):
    _, _, Am, Bm = gemm_inputs()
    key = Am.tile_key(1, 1)  # the last slot of A's pack: cutting the file short cuts this tile only
    path, offset, size = rt.store.tile_location(key)
    os.truncate(path, offset + size - 40)
    job, _ = submit_gemm(Am, Bm)
    with pytest.raises(CorruptTileError, match=rf"'{key}' is corrupt: truncated or over-long"):
        job.wait(timeout=WAIT)


def test_an_unreadable_input_tile_fails_the_job_with_its_errno(rt):
    _, _, Am, Bm = gemm_inputs()
    # A stored a file per tile (as a store without packs keeps them): its pack removed, its tiles put again
    tiles = {(i, j): Am.get_tile(i, j).copy() for i in range(2) for j in range(2)}
    os.unlink(tile_path(rt.store, Am.tile_key(0, 0)))
    for (i, j), t in tiles.items():
        Am.put_tile(i, j, t)
    key = Am.tile_key(1, 1)
    path = tile_path(rt.store, key)
    head, _, j = key.rpartition("/")
    assert path.endswith(f"{head.rpartition('/')[0]}/1,1.tile") and os.path.isfile(path), "a file of its own"
    os.unlink(path)
    os.mkdir(path)  # the tile's file is a directory: open() fails with EISDIR whoever runs it
    job, _ = submit_gemm(Am, Bm)
    with pytest.raises(IsADirectoryError, match=rf"reading input tile '{key}' \(matrix A, tile \(1, 1\)\): "
                                                "EISDIR") as e:
        job.wait(timeout=WAIT)
    assert e.value.errno == errno.EISDIR
    rec = error_record(rt, job)
    assert rec["errno"] == "EISDIR" and rec["key"] == key and "matmul@L" in rec["task"]


def test_a_kernel_that_returns_none_fails_the_job_at_once(rt):
    X = npw.BigMatrix.from_numpy(np.ones((8, 4)), 4)
    job = npw.submit(one_output_program(_bad_kernel("none")), X=X, Y=npw.BigMatrix.empty((8, 4), 4), N=2)
    with pytest.raises(KernelOutputError, match="got None"):
        job.wait(timeout=WAIT)


def _mount(*args: str) -> None:
    r = subprocess.run(["mount", *args], capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"cannot mount ({' '.join(args)}): {r.stderr.strip()}")


@contextlib.contextmanager
def mounted(path, *args: str):
    if os.geteuid() != 0:
        pytest.skip("needs root, to mount a tmpfs or a read-only bind mount")
    _mount(*args, str(path))
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def embedded_urls(tiles, state_dir) -> dict:
    return {"store": f"file://{tiles}", "queue": f"sqlite://{state_dir}/state.db", "state": f"sqlite://{state_dir}/state.db"}


def test_a_full_disk_fails_the_job_with_enospc(tmp_path):
    tiles = tmp_path / "tiny"
    tiles.mkdir()
    with mounted(tiles, "-t", "tmpfs", "-o", "size=1m", "tmpfs"), \
            npw.runtime(**embedded_urls(tiles, tmp_path), executors=1) as r:
        _, _, Am, Bm = gemm_inputs()
        C = npw.BigMatrix.empty((8, 8), 4)
        fd = os.open(tiles / "filler", os.O_WRONLY | os.O_CREAT)  # fill the file system to its last block
        try:
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * 4096)
        finally:
            os.close(fd)
        job = npw.submit(programs.gemm, A=Am, B=Bm, C=C, M=2, N=2, K=2)
        with pytest.raises(OSError, match=rf"writing output tile '{job.id}/T/\d/\d/\d/0' \(matrix T, tile "
                                          r"\(\d, \d, \d, 0\)\): ENOSPC \(No space left on device\)") as e:
            job.wait(timeout=WAIT)
        assert e.value.errno == errno.ENOSPC
        rec = error_record(r, job)
        assert rec["errno"] == "ENOSPC" and rec["key"].startswith(f"{job.id}/T/") and rec["line"] > 0
        leftovers = [n for _, _, files in os.walk(tiles) for n in files if n.endswith(".tmp")]
        assert leftovers == [], "a failed put removes its temporary file"


def test_a_read_only_store_fails_the_job_with_erofs(tmp_path):
    tiles = tmp_path / "tiles"
    tiles.mkdir()
    with npw.runtime(**embedded_urls(tiles, tmp_path), executors=1):
        _, _, Am, Bm = gemm_inputs()
        C = npw.BigMatrix.empty((8, 8), 4)
        with mounted(tiles, "--bind", str(tiles)):
            _mount("-o", "remount,ro,bind", str(tiles))
            job = npw.submit(programs.gemm, A=Am, B=Bm, C=C, M=2, N=2, K=2)
            with pytest.raises(OSError, match=r"writing output tile .*: EROFS \(Read-only file system\)") as e:
                job.wait(timeout=WAIT)
            assert e.value.errno == errno.EROFS


# =============================================================================== item 11: duplicates, late writers


class InProcess:
    """An ``Executor`` of ``job`` running in a thread of this process, with its own backend clients."""

    def __init__(self, urls: dict, job, **kw):
        kw = {"idle_timeout": 30.0, "status_interval": 0.05, "max_batch": 1, "lease": 30.0, **kw}
        self.executor = Executor(open_store(urls["store"]), open_queue(urls["queue"], job.id),
                                 open_state(urls["state"]), job.id, **kw)
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.executor.run()
        except BaseException as e:
            self.errors.append(e)

    def join(self) -> None:
        self.thread.join(WAIT)
        assert not self.thread.is_alive(), "the executor did not stop"
        assert not self.errors, self.errors


@contextlib.contextmanager
def runtime_on(kind: str, tmp_path, request):
    if kind == "sqlite":
        with npw.runtime(**embedded_urls(tmp_path / "tiles", tmp_path), executors=0) as r:
            yield r
    else:
        url = f"{request.getfixturevalue('redis_server').url}?prefix=t{uuid.uuid4().hex[:8]}:"
        with npw.runtime(store=f"file://{tmp_path / 'tiles'}", queue=url, state=url, executors=0) as r:
            yield r


def writes_scratch(job, task) -> bool:
    return any(m == "T" for m, _ in job.bound.writes(task))


def test_a_second_copy_that_finds_its_inputs_freed_is_a_duplicate_not_a_failure(rt):
    """Copy 1 of the root add completes and frees its scratch inputs while copy 2, past its done-check,
    is about to read them."""
    A, B, Am, Bm = gemm_inputs(seed=4)
    job, C = submit_gemm(Am, Bm, executors=0)
    [root] = [t for t in job.bound.tasks() if ("C", (0, 0)) in job.bound.writes(t)]
    lock, started, second_at_start, first_done = threading.Lock(), [], threading.Event(), threading.Event()

    def on_start(task):
        if task != root:
            return
        with lock:
            started.append(task)
            first = len(started) == 1
        if first:  # a duplicate of this very message, as a re-delivery would make
            job.queue.send(sealed(job, [task.to_json()]))
            assert second_at_start.wait(WAIT)
        else:
            second_at_start.set()
            assert first_done.wait(WAIT)

    def on_completed(task):
        if task == root:
            first_done.set()

    hooks = {"start": on_start, "completed": on_completed}
    # no tile cache: an executor that wrote one of the freed tiles itself would read it from its cache
    executors = [InProcess(rt.urls, job, hooks=hooks, cache_bytes=0) for _ in range(2)]
    job.wait(timeout=WAIT)
    for x in executors:
        x.join()
    assert len(started) == 2 and np.allclose(C.numpy(), A @ B)
    counters = rt.state.job(job.id)["counters"]
    assert counters["tasks_duplicate"] == 1 and counters["completed"] == job.num_tasks
    assert rt.state.status(job.id) == "done"


def test_a_copy_that_arrives_before_its_inputs_are_written_is_dropped(rt):
    A, B, Am, Bm = gemm_inputs(seed=5)
    job, C = submit_gemm(Am, Bm, executors=0)
    [root] = [t for t in job.bound.tasks() if ("C", (1, 1)) in job.bound.writes(t)]
    [writer] = [job.bound.writers_of(m, idx)[0] for m, idx in job.bound.reads(root)][:1]
    dropped = threading.Event()

    def on_start(task):
        if task == writer:  # hold the writer of the copy's first input before it writes
            job.queue.send(sealed(job, [root.to_json()]))
            assert dropped.wait(WAIT)

    executors = [InProcess(rt.urls, job, hooks={"start": on_start, "dropped": lambda t: dropped.set()})
                 for _ in range(2)]
    job.wait(timeout=WAIT)
    for x in executors:
        x.join()
    assert np.allclose(C.numpy(), A @ B)
    counters = rt.state.job(job.id)["counters"]
    assert counters["tasks_premature"] == 1 and counters["completed"] == job.num_tasks


def test_an_intermediate_tile_deleted_behind_the_jobs_back_is_lost_not_waited_for(rt):
    _, _, Am, Bm = gemm_inputs(seed=7)
    job, _ = submit_gemm(Am, Bm, executors=0)
    [root] = [t for t in job.bound.tasks() if ("C", (0, 1)) in job.bound.writes(t)]
    (m, idx), _ = job.bound.reads(root)
    [writer] = job.bound.writers_of(m, idx)
    key = f"{job.id}/{m}/{'/'.join(map(str, idx))}"

    def delete_its_output(task):
        if task == writer:  # as if someone deleted an intermediate tile while the job ran
            rt.store.delete(key)

    x = InProcess(rt.urls, job, hooks={"completed": delete_its_output}, cache_bytes=0)
    with pytest.raises(TileLostError, match=rf"tile '{key}' \(matrix T, tile \(0, 1, 0, 0\)\) is missing although "
                                            rf"matmul@L\d+\(i=0, j=1, k=0\), which writes it, is done"):
        job.wait(timeout=WAIT)
    x.join()


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
@pytest.mark.parametrize("step", ["start", "written"])
def test_an_executor_that_resumes_after_the_job_ended_leaves_no_tile(tmp_path, request, kind, step):
    """One executor is held at ``step`` of a scratch-writing task while another runs a copy of that task and
    the rest of the job, the client waits and cleans up; then the first resumes: it writes (step "start")
    or completes (step "written") after the job's clean-up."""
    with runtime_on(kind, tmp_path, request) as r:
        A, B, Am, Bm = gemm_inputs(seed=6)
        job, C = submit_gemm(Am, Bm, executors=0)
        paused, release, held = threading.Event(), threading.Event(), []

        def hold(task):
            if not held and writes_scratch(job, task):
                held.append(task)
                job.queue.send(sealed(job, [task.to_json()]))  # the other executor runs this task from the copy
                paused.set()
                assert release.wait(WAIT)

        stale = InProcess(r.urls, job, hooks={step: hold})
        assert paused.wait(WAIT)
        other = InProcess(r.urls, job)
        job.wait(timeout=WAIT)
        other.join()
        assert r.store.list(f"{job.id}/") == [], "the client cleaned up"
        release.set()
        stale.join()
        assert r.store.list(f"{job.id}/") == [], f"{held[0]} left its tile behind"
        assert not (tmp_path / "tiles" / job.id).exists()
        assert r.queue(job.id).depth() == 0, "nothing was enqueued on the ended job's queue"
        assert np.allclose(C.numpy(), A @ B)
        assert r.state.job(job.id)["counters"]["completed"] == job.num_tasks


def test_a_late_output_tile_of_a_deleted_matrix_is_deleted(tmp_path, request):
    """An executor held before a task that writes the output ``C`` resumes after the job ended and after the
    client deleted ``C`` (an anonymous result freed): the tile it writes is deleted again, not left behind."""
    with runtime_on("sqlite", tmp_path, request) as r:
        A, B, Am, Bm = gemm_inputs(seed=7)
        job, C = submit_gemm(Am, Bm, executors=0)
        paused, release, held = threading.Event(), threading.Event(), []

        def hold(task):
            if not held and any(m == "C" for m, _ in job.bound.writes(task)):
                held.append(task)
                job.queue.send(sealed(job, [task.to_json()]))  # the other executor runs this task from the copy
                paused.set()
                assert release.wait(WAIT)

        stale = InProcess(r.urls, job, hooks={"start": hold})
        assert paused.wait(WAIT)
        other = InProcess(r.urls, job)
        job.wait(timeout=WAIT)
        other.join()
        assert np.allclose(C.numpy(), A @ B)
        C.delete()
        assert r.store.list(f"{C.name}/") == []
        release.set()
        stale.join()
        assert r.store.list(f"{C.name}/") == [], f"{held[0]} left an output tile of the deleted matrix"


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_completion_reports_the_job_status_and_an_ended_job_gets_no_children(tmp_path, request, kind):
    with runtime_on(kind, tmp_path, request) as r:
        r.state.create_job("j", "{}")
        q = r.queue("j")
        q.send(["a", "b"])
        ma, mb = q.receive(2, lease=30)
        assert r.state.complete_with_status("j", ma.body, [("c", 2)]) == ([], "running", 1)
        assert r.state.ledger(q).finish("j", "x", [("y", 1, 0)], ma.receipt) == (["y"], "running", 2)
        assert q.depth() == 2  # b leased, y enqueued (a acknowledged)
        assert r.state.set_status("j", "done")
        q.purge()
        assert r.state.complete_with_status("j", mb.body, [("c", 2)]) == (["c"], "done", 3)
        assert r.state.ledger(q).finish("j", "z", [("w", 1, 0)], mb.receipt) == (["w"], "done", 4)
        assert q.depth() == 0, "children of a task completed after the job ended are not enqueued"
        assert r.state.complete_with_status("gone", "t", []).status is None
