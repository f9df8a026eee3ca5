"""The numpy/scipy-style user API: each call runs LAmbdaPACK programs on the current runtime.

Every function here follows the same rules, kept in one place (``numpywren2.client.call.Call`` and
``numpywren2.client.arguments``): matrix arguments are numpy arrays (uploaded for the call and deleted
when it returns or raises) or BigMatrix; real dtypes only (complex and object arrays are a
``TypeError``, integers become float64); ``check_finite=True`` (scipy's default) rejects infs
and NaNs with a ``ValueError`` — on the client for numpy arguments, in the executors for
BigMatrix ones; ``block_size`` is an int or a ``(rows, cols)`` pair, must match the tiling of a
BigMatrix argument, and must be square where the algorithm says so; intermediate matrices are
deleted when the call ends.

Which solver a square system gets is decided in one place, ``_structure`` and ``_solve_general``:
``assume_a`` None (scipy's default: a general matrix), "gen", "sym", "her", ... go to the tiled
LU with tournament pivoting (``numpywren2.client.lu``); "pos" to Cholesky after an in-executor symmetry
check. Least squares, the pseudo-inverse and the rank go through the SVD (``numpywren2.client.least_squares``).
"""

from __future__ import annotations

import numpy as np

from ..core import programs
from ..core.deprecation import renamed_options
from ..core.programs.gemm import gemm_program
from ..core.tiling import grid_shape
from . import lu as _lu
from .arguments import block_size_arg
from .call import Call
from .matrix import BigMatrix

LinAlgError = np.linalg.LinAlgError

# Why an algorithm needs square tiles, for the message that rejects a (rows, cols) block_size.
_CHOLESKY_TILES = "the factorization pairs tile row k with tile column k"
_QR_TILES = "the tiled QR keeps triangular factors in its diagonal tiles"
_SUBSTITUTION_TILES = "the substitution solves with the diagonal tiles"

_GENERAL, _POSITIVE, _UPPER, _LOWER = "general", "positive definite", "upper triangular", "lower triangular"
_STRUCTURES = {
    None: _GENERAL, "gen": _GENERAL, "general": _GENERAL, "sym": _GENERAL, "symmetric": _GENERAL,
    "her": _GENERAL, "hermitian": _GENERAL, "diagonal": _GENERAL, "tridiagonal": _GENERAL, "banded": _GENERAL,
    "pos": _POSITIVE, "positive definite": _POSITIVE, "upper triangular": _UPPER, "lower triangular": _LOWER,
}


@renamed_options(workers="executors")
def cholesky(A, lower: bool = True, block_size: int | tuple[int, int] | None = None, executors: int | None = None,
             check_finite: bool = True, progress: bool | None = None) -> BigMatrix:
    """Cholesky factor of a symmetric positive definite matrix.

    Parameters
    ----------
    A : (n, n) array_like or BigMatrix
        Only its lower triangle is read (as ``numpy.linalg.cholesky``; symmetry is not checked).
    lower : bool
        Return L with ``A = L @ L.T`` (default) or, if False, the upper factor ``U = L.T``
        (transposed tile by tile in the executors).
    block_size : int or (int, int), optional
        Tile size when ``A`` is a numpy array; square tiles only. For a BigMatrix, leave it out
        or give its own tiling.  Without it, a numpy ``A`` of order below ``IN_PROCESS_MAX_N`` is
        factorized by LAPACK in this process (no job: the runtime's fixed cost would exceed what its
        parallelism saves) and the factor returned as a BigMatrix of the default tiling.
    executors : int, optional
        Executors for this job (default: the runtime's).
    check_finite : bool
        Reject an ``A`` holding infs or NaNs (default, as scipy); False skips the check.
    progress : bool, optional
        Show a live progress bar of each job on stderr when it is a terminal (default:
        ``npw.config.progress``).

    Returns
    -------
    BigMatrix

    Raises
    ------
    numpy.linalg.LinAlgError
        If the matrix is not positive definite (naming the failing task and line).
    ValueError
        For a non-square matrix or tiles, a ``block_size`` that is not that of a BigMatrix ``A``,
        or infs and NaNs (naming the tile for a BigMatrix).
    TypeError
        For a complex or non-numeric ``A`` or a malformed ``block_size``.

    Examples
    --------
    >>> import numpy as np, numpywren2 as npw
    >>> X = np.array([[4.0, 2.0], [2.0, 5.0]])
    >>> npw.cholesky(X, block_size=1).numpy()
    array([[2., 0.],
           [1., 2.]])
    """
    with Call("cholesky", check_finite, executors, progress) as call:
        if block_size is None and not isinstance(A, BigMatrix):
            X = call.argument(A, "A")
            if X.shape[0] == X.shape[1] and X.shape[0] < IN_PROCESS_MAX_N:
                return _cholesky_in_process(X, lower)
        A = call.matrix(A, "A", block_size, square=_CHOLESKY_TILES)
        _require_square(A, "cholesky", "A")
        N = A.grid[0]
        L = call.empty(A.shape, A.block_size, A.dtype)
        call.run(programs.cholesky, A=A, L=L, N=N, errors={LinAlgError: "A is not positive definite: "})
        if lower:
            return call.keep(L)
        U = call.empty(A.shape, A.block_size, A.dtype)
        call.run(programs.transpose_lower, L=L, U=U, N=N)
        return call.keep(U)


# Below this order a numpy-in Cholesky with the default tiling runs LAPACK in this process: the runtime's
# fixed cost (a job, its executors, the tiles' round trip) is more than the time parallelism saves.
# Measured with bench/cholesky.py --crossover (bench/RESULTS.md; docs/runtime.md, "Performance design").
IN_PROCESS_MAX_N = 4096


def _cholesky_in_process(X: np.ndarray, lower: bool) -> BigMatrix:
    """``cholesky`` of a small numpy matrix: LAPACK's potrf here, with this process's BLAS threads; the factor
    is stored as a BigMatrix of the default tiling, as the runtime would have returned it.  Only the lower
    triangle of ``X`` is read (potrf on the upper triangle of the Fortran-ordered transpose, no copy in)."""
    from scipy.linalg import get_lapack_funcs

    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    potrf = get_lapack_funcs("potrf", (X,))
    U, info = potrf(X.T, lower=False, clean=True, overwrite_a=False)
    if info > 0:
        raise LinAlgError(f"cholesky: A is not positive definite: its leading minor of order {info} is not "
                          "positive (computed in this process: below the in-process size, no job runs)")
    if info < 0:
        raise ValueError(f"cholesky: LAPACK potrf rejected argument {-info}")
    return BigMatrix.from_numpy(U.T if lower else U)  # U.T: L, C-ordered, without a copy


@renamed_options(workers="executors")
def matmul(A, B, block_size: int | tuple[int, int] | None = None, executors: int | None = None,
           check_finite: bool = True, progress: bool | None = None) -> BigMatrix:
    """``A @ B`` for 2-D matrices (numpy arrays or BigMatrix; a BigMatrix ``B`` whose row tiles are not ``A``'s
    column tiles is retiled by a job first, and tiles nobody wrote, as in a triangular factor, are zeros).

    Parameters
    ----------
    A : (m, k) array_like or BigMatrix
    B : (k, n) array_like or BigMatrix
    block_size : int or (int, int), optional
        The tiles of ``A`` (rows, cols) when it is a numpy array (default: about 4 tiles per
        dimension, or ``B``'s row tiles); a numpy ``B`` is then tiled (cols, cols), so that the
        result is tiled like ``A``. For a BigMatrix ``A``, leave it out or give its own tiling.
    executors : int, optional
        Executors for this job (default: the runtime's).
    check_finite : bool
        Reject inputs holding infs or NaNs (default); False skips the check.
    progress : bool, optional
        Show a live progress bar of each job on stderr when it is a terminal (default:
        ``npw.config.progress``).

    Returns
    -------
    BigMatrix
        (m, n), tiled (A's row tiles, B's column tiles), of dtype ``result_type(A, B)``.

    Notes
    -----
    The job is ``programs.gemm.gemm_program(M, N, K, executors)``: with at least two output tiles per
    executor, ``gemm_chain`` (each output tile accumulated along the inner dimension, K tasks and
    half the tile traffic of the tree); otherwise ``gemm`` (the K products of a tile at once, summed
    by a binary tree of adds).

    Examples
    --------
    >>> import numpy as np, numpywren2 as npw
    >>> A, B = np.arange(6.0).reshape(2, 3), np.ones((3, 2))
    >>> npw.matmul(A, B, block_size=(1, 2)).numpy()
    array([[ 3.,  3.],
           [12., 12.]])
    """
    with Call("matmul", check_finite, executors, progress) as call:
        a, b = call.argument(A, "A"), call.argument(B, "B")
        if a.shape[1] != b.shape[0]:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} are not aligned")
        bs = block_size_arg(block_size, "matmul")
        default = None
        if bs is None and isinstance(b, BigMatrix):
            default = (b.block_size[0], b.block_size[0])
        elif bs is None:
            side = max(a.shape[0], a.shape[1], b.shape[1]) // 4 or 1
            default = (side, side)
        A = call.matrix(a, "A", bs, default_block=default)
        B = call.matrix(b, "B", None if isinstance(b, BigMatrix) else
                        (A.block_size[1], bs[1] if bs is not None else A.block_size[1]))
        if A.block_size[1] != B.block_size[0]:  # B retiled by a job so that its row tiles are A's column tiles
            B = call.retiled(B, (A.block_size[1], B.block_size[1]))
        A, B = call.dense(A), call.dense(B)  # tiles nobody wrote (a triangular factor's) as zero tiles
        C = call.empty((A.shape[0], B.shape[1]), (A.block_size[0], B.block_size[1]), np.result_type(A.dtype, B.dtype))
        M, N, K = A.grid[0], B.grid[1], A.grid[1]
        call.run(gemm_program(M, N, K, call.job_executors()), A=A, B=B, C=C, M=M, N=N, K=K)
        return call.keep(C)


gemm = matmul


@renamed_options(workers="executors")
def tsqr(A, block_size: int | tuple[int, int] | None = None, executors: int | None = None,
         check_finite: bool = True, progress: bool | None = None) -> tuple[BigMatrix, BigMatrix]:
    """Reduced QR of a tall-skinny matrix by a TSQR tree: ``(Q, R)`` like ``numpy.linalg.qr``.

    Parameters
    ----------
    A : (m, n) array_like or BigMatrix
        Tiled in row blocks and a single block column.
    block_size : int or (int, int), optional
        Tiles ``(rows, cols)`` of a numpy ``A``, with ``cols >= n`` (an int b means (b, b)).
        Default: ``(max(n, ceil(m / 8)), n)``. For a BigMatrix, leave it out or give its own tiling.
    executors : int, optional
        Executors for this job (default: the runtime's).
    check_finite : bool
        Reject an ``A`` holding infs or NaNs (default); False skips the check.
    progress : bool, optional
        Show a live progress bar of each job on stderr when it is a terminal (default:
        ``npw.config.progress``).

    Returns
    -------
    Q : BigMatrix, (m, k)
    R : BigMatrix, (k, n), k = min(m, n)

    Examples
    --------
    >>> import numpy as np, numpywren2 as npw
    >>> X = np.random.default_rng(0).standard_normal((40, 3))
    >>> Q, R = npw.tsqr(X, block_size=(10, 3))
    >>> bool(np.allclose(Q.numpy() @ R.numpy(), X))
    True
    """
    with Call("tsqr", check_finite, executors, progress) as call:
        X = call.argument(A, "A")
        m, n = X.shape
        if isinstance(X, BigMatrix):
            X = call.matrix(X, "A", block_size)
            bs, tiling = X.block_size, f"{X.name} is tiled {X.block_size}"
        else:
            bs = block_size_arg(block_size, "tsqr") or (max(n, -(-m // 8)), max(1, n))
            tiling = f"block_size={block_size!r}"
        if grid_shape((m, n), bs)[1] != 1:
            raise ValueError(f"tsqr factors a single block column: {tiling}, which cuts the {n} columns into "
                             f"{grid_shape((m, n), bs)[1]} tile columns; give tiles of at least {n} columns, e.g. "
                             f"block_size=({bs[0]}, {n}), or use npw.qr")
        A = call.matrix(X, "A", bs)
        k = min(m, n)
        Q = call.empty((m, k), (A.block_size[0], max(k, 1)), A.dtype)
        R = call.empty((k, n), (max(k, 1), max(n, 1)), A.dtype)
        call.run(programs.tsqr, A=A, Q=Q, R=R, N=A.grid[0])
        return call.keep(Q, R)


# --- QR, triangular solves, general and SPD solves and inverses, least squares

def _require_square(A: BigMatrix, what: str, name: str = "a") -> None:
    if A.shape[0] != A.shape[1]:
        raise ValueError(f"{what} needs a square matrix {name}, got shape {A.shape}")


def _block_from_rhs(a, b, block_size):
    """A numpy ``a`` with a BigMatrix ``b`` and no block size: tile ``a`` like ``b``'s rows."""
    if block_size is None and not isinstance(a, BigMatrix) and isinstance(b, BigMatrix):
        return b.block_size[0]
    return block_size


def _arguments(call: Call, a, b) -> tuple[BigMatrix | np.ndarray, BigMatrix | np.ndarray, bool]:
    """``a`` and the right-hand side ``b``, both checked before anything is uploaded; and whether ``b`` is a
    vector (the result is then returned as one)."""
    a = call.argument(a, "a")
    B, vector = call.vector_or_matrix(b, "b")
    return a, B, vector


def _right_hand_side(call: Call, B, rows: int, row_block: int) -> BigMatrix:
    """The right-hand side ``B`` (from ``_arguments``, ``rows`` rows) as a BigMatrix tiled in ``row_block`` rows."""
    what = call.what
    if B.shape[0] != rows:
        raise ValueError(f"{what}: b has {B.shape[0]} rows, the matrix has {rows}")
    if isinstance(B, BigMatrix):
        if B.block_size[0] != row_block:  # retiled by a job so that its row tiles are the matrix's
            return call.retiled(B, (row_block, B.block_size[1]))
        return B
    return call.matrix(B, "b", (row_block, row_block))


def _as_returned(call: Call, X: BigMatrix, vector: bool) -> BigMatrix | np.ndarray:
    """The solution: a numpy vector for a vector right-hand side (X is then deleted), else X kept."""
    if vector:
        return X.numpy()[:, 0]
    return call.keep(X)


def _trans_code(trans) -> int:
    codes = {0: 0, "N": 0, "n": 0, 1: 1, "T": 1, "t": 1, 2: 1, "C": 1, "c": 1}
    try:
        return codes[trans]
    except (KeyError, TypeError):
        raise ValueError(f"trans must be 0, 1, 2, 'N', 'T' or 'C', not {trans!r}") from None


def _structure(assume_a, what: str) -> str:
    """The solver family for scipy's ``assume_a`` (one place: a later general solver swaps in here)."""
    try:
        return _STRUCTURES[assume_a]
    except (KeyError, TypeError):
        names = ", ".join(repr(k) for k in _STRUCTURES)
        raise ValueError(f"{what}: assume_a={assume_a!r} is not a recognized matrix structure; use one of "
                         f"{names}") from None


def _solve_general(call: Call, A: BigMatrix, B: BigMatrix) -> BigMatrix:
    """X with A X = B for a general square A (the route of assume_a None, "gen", "sym", ...): the tiled LU
    with tournament pivoting, then the substitutions. An exactly singular A raises ``LinAlgError`` naming
    the column whose pivot is zero."""
    return _lu.solve_general(call, A, B)


def _require_symmetric(call: Call, A: BigMatrix, name: str = "a") -> None:
    """The in-executor symmetry check of ``assume_a="pos"`` (program ``check_symmetric``): a separate job, so
    that the factorization never starts on an asymmetric matrix (its error would race with this one)."""
    call.run(programs.check_symmetric, {LinAlgError: f"{name} is not symmetric, as assume_a='pos' requires "
                                                     "(symmetrize it, e.g. (a + a.T) / 2, or leave assume_a out "
                                                     "for a general solve): "},
             A=A, N=A.grid[0], BS=A.block_size[0])


_QR_MODES = {"reduced": "reduced", "economic": "reduced", "complete": "complete", "full": "complete", "r": "r",
             "raw": "raw"}


@renamed_options(workers="executors")
def qr(A, mode: str = "reduced", block_size: int | tuple[int, int] | None = None, executors: int | None = None,
       check_finite: bool = True, pivoting: bool = False, progress: bool | None = None):
    """QR factorization of a general matrix by the tiled communication-avoiding algorithm.

    Each tile column is factored by a TSQR tree (Householder QR of every tile, R factors
    merged pairwise) and the trailing matrix is updated along the same tree (program ``qr_factor``);
    a second job forms Q from the kept reflectors (``qr_form_q``). See ``numpywren2.core.programs.qr``
    and ``docs/algorithms.md``.

    With ``pivoting=True`` (scipy's), ``A P = Q R`` with ``|R_kk|`` non-increasing, as LAPACK ``geqp3``:
    the tiled QR gives ``A = Q0 R0``, then one task runs ``geqp3`` on the k×n triangular factor,
    ``R0 P = Q1 R`` (program ``pivoted_qr_of``; the column norms of ``A`` and of ``R0`` are the same, so this
    is the pivoting of ``geqp3`` on ``A`` itself), and ``Q = Q0 Q1`` is a ``gemm`` job.

    Parameters
    ----------
    A : (m, n) array_like or BigMatrix
        Any shape: tall, square or wide. A BigMatrix must have square tiles.
    mode : {"reduced", "complete", "r", "raw", "economic", "full"}
        numpy's modes: ``(Q, R)`` with Q m×k and R k×n, k = min(m, n) ("reduced", default); Q m×m and
        R m×n ("complete"); R alone, k×n ("r", the Householder reflectors are not applied to the
        identity, which saves about half of the work); ``(h, tau)`` ("raw": numpy arrays in LAPACK
        ``geqrf``'s layout, h of shape (n, m) as numpy returns it, its transpose holding R above the
        diagonal and the Householder vectors below; see ``householder_of``). scipy's names:
        "economic" is "reduced", "full" is "complete" (scipy's "r" returns an m×n R; here it is
        numpy's k×n).
    block_size : int or (int, int), optional
        Tile size when ``A`` is a numpy array; square tiles only.
    executors : int, optional
        Executors for this job (default: the runtime's).
    check_finite : bool
        Reject an ``A`` holding infs or NaNs (default); False skips the check.
    pivoting : bool
        scipy's: also return the column permutation P (an int array of n column indices) with
        ``A[:, P] = Q @ R`` and ``|R_kk|`` non-increasing (not with mode "raw").
    progress : bool, optional
        Show a live progress bar of each job on stderr when it is a terminal (default:
        ``npw.config.progress``).

    Returns
    -------
    Q : BigMatrix
        Orthonormal columns (not for ``mode="r"``).
    R : BigMatrix
        Upper trapezoidal. The signs of its rows (and of Q's columns) may differ from
        ``numpy.linalg.qr``'s; ``Q @ R`` is the same.
    P : numpy.ndarray
        With ``pivoting=True`` only: ``(Q, R, P)``, or ``(R, P)`` for mode "r".
    h, tau : numpy.ndarray
        For mode "raw" only.

    Examples
    --------
    >>> import numpy as np, numpywren2 as npw
    >>> a = np.array([[1.0, 0.0, 0.0], [1.0, 1e-3, 5.0], [1.0, 0.0, 1.0]])
    >>> Q, R, P = npw.qr(a, pivoting=True, block_size=2)
    >>> P, bool(np.allclose(Q.numpy() @ R.numpy(), a[:, P]))
    (array([2, 0, 1]), True)
    >>> d = np.abs(np.diag(R.numpy()))      # |R_kk| non-increasing, as LAPACK geqp3
    >>> bool(np.all(d[1:] <= d[:-1])), round(float(d[0]), 3)
    (True, 5.099)
    """
    if mode not in _QR_MODES:
        raise ValueError(f"qr: mode must be one of 'reduced', 'complete', 'r', 'raw' (numpy's) or 'economic', "
                         f"'full' (scipy's), not {mode!r}")
    mode = _QR_MODES[mode]
    if pivoting and mode == "raw":
        raise ValueError("qr: mode='raw' returns LAPACK's geqrf reflectors, which have no pivoting; use another "
                         "mode with pivoting=True")
    with Call("qr", check_finite, executors, progress) as call:
        A = call.matrix(A, "A", block_size, square=_QR_TILES)
        m, n = A.shape
        bs = A.block_size[0]
        M, N = A.grid
        k = min(m, n)
        q_cols = m if mode == "complete" else k
        R = call.empty((k, n), A.block_size, A.dtype)
        # the reflectors (V, T) outlive the factorization when Q is formed by a second job
        keep = {} if mode == "r" else {"V": call.tile_space(), "T": call.tile_space()}
        # no right-hand sides (C = 0): B is never read, but submit wants every input tile space bound
        call.run(programs.qr_factor, A=A, B=A, R=R, M=M, N=N, C=0, **keep)
        Q = None
        if mode != "r":
            Q = call.empty((m, q_cols), A.block_size, A.dtype)
            call.run(programs.qr_form_q, Q=Q, M=M, N=N, ROWS=m, BS=bs, QC=-(-q_cols // bs), QCOLS=q_cols,
                     SINGLE=int(A.dtype == np.float32), **keep)
            call.delete(*keep.values())
        if mode == "raw":
            return householder_of(call, Q, R)
        perm = None
        if pivoting:
            Q, R, perm = _pivoted(call, Q, R, complete=mode == "complete")
        if mode == "complete" and k < m:
            R = _pad_rows(call, R, m)
        out = (R,) if mode == "r" else (Q, R)
        call.keep(*out)
        return (*out, perm) if pivoting else out[0] if mode == "r" else out


def _pivoted(call: Call, Q0: BigMatrix | None, R0: BigMatrix, complete: bool):
    """``(Q, R, P)`` with A P = Q R, |R_kk| non-increasing, from A = Q0 R0 (``qr``'s pivoting; Q0 None for mode
    "r", m×m for ``complete``): ``geqp3`` of R0 in one task, then Q = Q0 Q1 by a ``gemm`` job."""
    k, n = R0.shape
    bs = R0.block_size
    whole = call.retiled(R0, (k, n))  # one k×n tile (the tiles below R0's diagonal written as zeros)
    Q1 = call.empty((k, k), (k, k), R0.dtype)
    Rp = call.empty((k, n), (k, n), R0.dtype)
    P = call.empty((1, n), (1, n), R0.dtype)
    call.run(programs.pivoted_qr_of, R=whole, Q=Q1, Rp=Rp, P=P)
    perm = P.numpy()[0].astype(np.intp)
    R = call.retiled(Rp, bs)
    if Q0 is None:
        return None, R, perm
    if complete and Q0.shape[1] > k:  # Q0 m×m: Q = Q0 diag(Q1, I)
        m = Q0.shape[1]
        D = np.eye(m, dtype=R0.dtype)
        D[:k, :k] = Q1.numpy()
        Q1b = call.upload(D, bs)
    else:
        Q1b = call.retiled(Q1, bs)
    Q = call.empty((Q0.shape[0], Q1b.shape[1]), bs, R0.dtype)
    M, N, K = Q0.grid[0], Q1b.grid[1], Q0.grid[1]
    call.run(gemm_program(M, N, K, call.job_executors()), A=Q0, B=Q1b, C=Q, M=M, N=N, K=K)
    return Q, R, perm


def _pad_rows(call: Call, R: BigMatrix, rows: int) -> BigMatrix:
    """``R`` with zero rows appended (the R of a complete QR); tiles are copied through the client."""
    out = call.empty((rows, R.shape[1]), R.block_size, R.dtype)
    gr, gc = R.grid
    for i in range(gr):
        for j in range(i, gc):
            t = R.get_tile(i, j)
            want = out.tile_shape(i, j)
            if t.shape != want:
                t = np.vstack([t, np.zeros((want[0] - t.shape[0], want[1]), t.dtype)])
            out.put_tile(i, j, t)
    call.delete(R)
    return out


@renamed_options(workers="executors")
def solve_triangular(a, b, trans: int | str = 0, lower: bool = False, unit_diagonal: bool = False,
                     block_size: int | tuple[int, int] | None = None, executors: int | None = None,
                     check_finite: bool = True, progress: bool | None = None) -> BigMatrix | np.ndarray:
    """Solve ``op(a) x = b`` for a triangular matrix ``a``, as ``scipy.linalg.solve_triangular``.

    Parameters
    ----------
    a : (n, n) array_like or BigMatrix
        Triangular; only the triangle selected by ``lower`` is read.
    b : (n,) or (n, k) array_like, or (n, k) BigMatrix
        Right-hand side(s). A BigMatrix must be tiled in the same number of rows as ``a``.
    trans : {0, 1, 2, 'N', 'T', 'C'}
        ``a x = b`` (0, 'N'), ``aᵀ x = b`` (1, 'T'; 2 and 'C' are the same for real matrices).
    lower : bool
        Use the lower (True) or the upper (False, scipy's default) triangle of ``a``.
    unit_diagonal : bool
        Take the diagonal of ``a`` as ones (it is not read).
    block_size : int or (int, int), optional
        Tile size when ``a`` is a numpy array, square tiles only (default: ``b``'s row tiles if
        ``b`` is a BigMatrix, else about 4 tiles per dimension); a numpy ``b`` is tiled to match.
    executors : int, optional
        Executors for this job (default: the runtime's).
    check_finite : bool
        Reject inputs holding infs or NaNs (default, as scipy); False skips the check.
    progress : bool, optional
        Show a live progress bar of each job on stderr when it is a terminal (default:
        ``npw.config.progress``).

    Returns
    -------
    x : BigMatrix, or numpy.ndarray of shape (n,) when ``b`` is a vector

    Raises
    ------
    numpy.linalg.LinAlgError
        If ``a`` has a zero on its diagonal (the message names the diagonal tile and the row).
    ValueError
        For a non-square ``a``, mismatched shapes or tilings, a bad ``trans``, or infs and NaNs.
    """
    code = _trans_code(trans)
    with Call("solve_triangular", check_finite, executors, progress) as call:
        a, b, vector = _arguments(call, a, b)
        T = call.matrix(a, "a", _block_from_rhs(a, b, block_size), square=_SUBSTITUTION_TILES)
        _require_square(T, "solve_triangular")
        bs = T.block_size[0]
        B = _right_hand_side(call, b, T.shape[0], bs)
        forward = bool(lower) != bool(code)  # op(a) lower triangular: forward substitution
        X = call.empty(B.shape, B.block_size, np.result_type(T.dtype, B.dtype))
        program = programs.trsm_forward if forward else programs.trsm_backward
        call.run(program, T=T, B=B, X=X, N=T.grid[0], C=B.grid[1], TRANS=code, UNIT=int(bool(unit_diagonal)), BS=bs)
        return _as_returned(call, X, vector)


@renamed_options(workers="executors")
def solve(a, b, assume_a: str | None = None, block_size: int | tuple[int, int] | None = None,
          executors: int | None = None, check_finite: bool = True,
          progress: bool | None = None) -> BigMatrix | np.ndarray:
    """Solve ``a x = b`` for a square ``a``, as ``scipy.linalg.solve``.

    A general ``a`` (``assume_a`` None, the default, or "gen", "sym", ...) is factored by the tiled
    LU with tournament pivoting (``numpywren2.core.programs.lu``), then ``b`` is permuted and
    substituted (``programs.lu_solve``). ``assume_a="pos"`` first verifies in the executors that
    ``a`` is symmetric, tile pair by tile pair, then factors ``a = L Lᵀ`` and substitutes in one
    job (``numpywren2.core.programs.posv``), about 3 times fewer flops.

    Parameters
    ----------
    a : (n, n) array_like or BigMatrix
    b : (n,) or (n, k) array_like, or (n, k) BigMatrix
        Right-hand side(s), tiled in the same number of rows as ``a`` if a BigMatrix.
    assume_a : str, optional
        scipy's names. None (default), "gen"/"general", "sym"/"symmetric", "her"/"hermitian",
        "diagonal", "tridiagonal", "banded": the general (LU) solver, which is correct for all of
        them (unlike scipy, None does not look for structure). "pos"/"positive definite":
        Cholesky, after checking that ``a`` is symmetric: ``|a_ij - a_ji| <= rtol (max(|a_ij|,
        |a_ji|) + sqrt(|a_ii a_jj|))`` with rtol = 100·eps of the dtype (see
        ``numpywren2.core.kernels.asymmetry``). "upper triangular"/"lower triangular": ``solve_triangular``.
    block_size : int or (int, int), optional
        Tile size when ``a`` is a numpy array; square tiles only.
    executors : int, optional
        Executors for these jobs (default: the runtime's).
    check_finite : bool
        Reject inputs holding infs or NaNs (default, as scipy); False skips the check.
    progress : bool, optional
        Show a live progress bar of each job on stderr when it is a terminal (default:
        ``npw.config.progress``).

    Returns
    -------
    x : BigMatrix, or numpy.ndarray of shape (n,) when ``b`` is a vector

    Raises
    ------
    numpy.linalg.LinAlgError
        A general ``a`` that is exactly singular (a zero pivot of its LU factorization: the
        message names the column); with ``assume_a="pos"``, an ``a`` that is not symmetric (naming
        the first asymmetric tile pair by tile column) or not positive definite (naming the task).
        A nearly singular ``a`` is not detected (scipy warns; the solution may then be inaccurate).
    ValueError
        For a non-square ``a``, mismatched shapes or tilings, an unknown ``assume_a``, or infs and
        NaNs.

    Examples
    --------
    >>> import numpy as np, numpywren2 as npw
    >>> a = np.array([[3.0, 2.0, 0.0], [1.0, -1.0, 0.0], [0.0, 5.0, 1.0]])
    >>> npw.solve(a, np.array([2.0, 4.0, -1.0]), block_size=2).round(12)
    array([ 2., -2.,  9.])
    """
    structure = _structure(assume_a, "solve")
    if structure in (_UPPER, _LOWER):
        return solve_triangular(a, b, lower=structure == _LOWER, block_size=block_size, executors=executors,
                                check_finite=check_finite)
    square = _CHOLESKY_TILES if structure == _POSITIVE else _QR_TILES
    with Call("solve", check_finite, executors, progress) as call:
        a, b, vector = _arguments(call, a, b)
        A = call.matrix(a, "a", _block_from_rhs(a, b, block_size), square=square)
        _require_square(A, "solve")
        bs = A.block_size[0]
        B = _right_hand_side(call, b, A.shape[0], bs)
        if structure == _GENERAL:
            return _as_returned(call, _solve_general(call, A, B), vector)
        _require_symmetric(call, A)
        X = call.empty(B.shape, B.block_size, np.result_type(A.dtype, B.dtype))
        call.run(programs.posv, {LinAlgError: "a is not positive definite: "}, A=A, B=B, X=X, N=A.grid[0],
                 C=B.grid[1], BS=bs)
        return _as_returned(call, X, vector)


@renamed_options(workers="executors")
def inv(a, assume_a: str | None = None, block_size: int | tuple[int, int] | None = None,
        executors: int | None = None, check_finite: bool = True, progress: bool | None = None) -> BigMatrix:
    """Inverse of a square matrix.

    A general ``a`` (``assume_a`` None, the default): the identity is generated in the executors
    (``programs.eye``) and ``a X = I`` is solved by the tiled LU (``solve``'s general route; about
    8n³/3 flops). ``assume_a="pos"``: after the symmetry check of ``solve``, LAPACK's
    potrf + potri, tiled (``a = L Lᵀ``, ``W = L⁻¹``, ``a⁻¹ = Wᵀ W`` in one job,
    ``numpywren2.core.programs.spd_inverse``, about n³ flops).

    Parameters
    ----------
    a : (n, n) array_like or BigMatrix
    assume_a : str, optional
        As for ``solve``: None (general, default) or "pos" are the two routes; the other names of
        ``solve`` take the general one.
    block_size : int or (int, int), optional
        Tile size when ``a`` is a numpy array; square tiles only.
    executors : int, optional
        Executors for these jobs (default: the runtime's).
    check_finite : bool
        Reject an ``a`` holding infs or NaNs (default, as scipy); False skips the check.
    progress : bool, optional
        Show a live progress bar of each job on stderr when it is a terminal (default:
        ``npw.config.progress``).

    Returns
    -------
    BigMatrix
        The inverse, tiled like ``a``.

    Raises
    ------
    numpy.linalg.LinAlgError
        As for ``solve``: an exactly singular ``a``; with "pos", an asymmetric or not positive
        definite one.

    Examples
    --------
    >>> import numpy as np, numpywren2 as npw
    >>> a = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> npw.inv(a, block_size=1).numpy().round(12)
    array([[-2. ,  1. ],
           [ 1.5, -0.5]])
    """
    structure = _structure(assume_a, "inv")
    square = _CHOLESKY_TILES if structure == _POSITIVE else _QR_TILES
    with Call("inv", check_finite, executors, progress) as call:
        A = call.matrix(a, "a", block_size, square=square)
        _require_square(A, "inv")
        n, bs = A.shape[0], A.block_size[0]
        if structure == _POSITIVE:
            _require_symmetric(call, A)
            X = call.empty(A.shape, A.block_size, A.dtype)
            call.run(programs.spd_inverse, {LinAlgError: "a is not positive definite: "}, A=A, X=X, N=A.grid[0],
                     BS=bs)
            return call.keep(X)
        eye = call.empty(A.shape, A.block_size, A.dtype)
        call.run(programs.eye, X=eye, N=n, B=bs, SINGLE=int(A.dtype == np.float32))
        return call.keep(_solve_general(call, A, eye))


def householder_of(call: Call, Q: BigMatrix, R: BigMatrix) -> tuple[np.ndarray, np.ndarray]:
    """numpy's ``qr(mode="raw")`` ``(h, tau)`` from the Q (m×k) and R (k×n) of the tiled QR: the LU without
    pivoting of ``Q − S`` by a job (``programs.householder_lu``, the Householder reconstruction) gives the
    vectors (L) and ``tau = −s·diag(U)``; ``S R`` is geqrf's R. h (n×m) and tau are put together on the
    client, which returns them as numpy arrays (O(mn) entries copied, no flops beyond the scaling)."""
    m, k = Q.shape
    n = R.shape[1]
    LU = call.empty(Q.shape, Q.block_size, Q.dtype)
    S = call.empty((k, 1), (Q.block_size[0], 1), Q.dtype)
    call.run(programs.householder_lu, Q=Q, LU=LU, S=S, M=Q.grid[0], K=Q.grid[1])
    lu, s = LU.numpy(), S.numpy()[:, 0]
    a = np.zeros((m, n), Q.dtype)
    a[:, :k] = np.tril(lu, -1)
    a[:k] += s[:, None] * np.triu(R.numpy())
    return a.T, -s * np.diagonal(lu)[:k]
