"""The numpy/scipy-style user API: each call runs a LAmbdaPACK program on the current runtime."""

from __future__ import annotations

import numpy as np

from . import programs
from .job import as_bigmatrix, submit
from .matrix import BigMatrix


def cholesky(A, lower: bool = True, block_size: int | None = None, workers: int | None = None) -> BigMatrix:
    """Cholesky factor of a symmetric positive definite matrix.

    Parameters
    ----------
    A : (n, n) array_like or BigMatrix
        Only its lower triangle is read.
    lower : bool
        Return L with ``A = L @ L.T`` (default) or, if False, the upper factor ``U = L.T``
        (computed from L on the client).
    block_size : int, optional
        Tile size when ``A`` is a numpy array.
    workers : int, optional
        Executors for this job (default: the runtime's).

    Returns
    -------
    BigMatrix

    Raises
    ------
    numpy.linalg.LinAlgError
        If the matrix is not positive definite (naming the failing task and line).
    """
    A = as_bigmatrix(A, block_size)
    n, m = A.shape
    if n != m:
        raise ValueError(f"cholesky needs a square matrix, got shape {A.shape}")
    if A.block_size[0] != A.block_size[1]:
        raise ValueError(f"cholesky needs square tiles, got block_size {A.block_size}")
    L = BigMatrix.empty(A.shape, A.block_size, A.dtype, store=A.store)
    submit(programs.cholesky, A=A, L=L, N=A.grid[0], workers=workers).wait()
    if lower:
        return L
    return BigMatrix.from_numpy(L.numpy().T, A.block_size, store=A.store)


def matmul(A, B, block_size: int | None = None, workers: int | None = None) -> BigMatrix:
    """``A @ B`` for 2-D matrices (numpy arrays or BigMatrix with compatible tiling)."""
    if not isinstance(A, BigMatrix) and not isinstance(B, BigMatrix) and block_size is None:
        block_size = max(np.shape(A)[0], np.shape(A)[1], np.shape(B)[1]) // 4 or 1
    A = as_bigmatrix(A, block_size)
    B = as_bigmatrix(B, block_size if block_size is not None else (A.block_size[1], A.block_size[1]))
    if A.shape[1] != B.shape[0]:
        raise ValueError(f"matmul: shapes {A.shape} and {B.shape} are not aligned")
    if A.block_size[1] != B.block_size[0]:
        raise ValueError(f"matmul: A's column tiles ({A.block_size[1]}) differ from B's row tiles "
                         f"({B.block_size[0]})")
    C = BigMatrix.empty((A.shape[0], B.shape[1]), (A.block_size[0], B.block_size[1]),
                        np.result_type(A.dtype, B.dtype), store=A.store)
    submit(programs.gemm, A=A, B=B, C=C, M=A.grid[0], N=B.grid[1], K=A.grid[1], workers=workers).wait()
    return C


gemm = matmul


def tsqr(A, block_size: int | None = None, workers: int | None = None) -> tuple[BigMatrix, BigMatrix]:
    """Reduced QR of a tall-skinny matrix by a TSQR tree: ``(Q, R)`` like ``numpy.linalg.qr``.

    ``A`` is tiled in row blocks of ``block_size`` rows and one block column.
    """
    if isinstance(A, BigMatrix):
        if A.grid[1] != 1:
            raise ValueError(f"tsqr needs a single block column; {A.name} has {A.grid[1]}")
    else:
        X = np.asarray(A)
        if X.ndim != 2:
            raise ValueError(f"tsqr needs a 2-D matrix, got shape {X.shape}")
        rows = block_size or max(X.shape[1], -(-X.shape[0] // 8))
        A = BigMatrix.from_numpy(X, (rows, max(1, X.shape[1])))
    m, n = A.shape
    k = min(m, n)
    Q = BigMatrix.empty((m, k), (A.block_size[0], max(k, 1)), A.dtype, store=A.store)
    R = BigMatrix.empty((k, n), (max(k, 1), max(n, 1)), A.dtype, store=A.store)
    submit(programs.tsqr, A=A, Q=Q, R=R, N=A.grid[0], workers=workers).wait()
    return Q, R


# --- QR, triangular solves, SPD solve and inverse, least squares

def _matrix(X, block_size: int | None, what: str, name: str = "a") -> BigMatrix:
    """A 2-D BigMatrix with square tiles (numpy input is tiled with ``block_size``)."""
    if not isinstance(X, BigMatrix):
        X = np.asarray(X)
        if X.ndim != 2:
            raise ValueError(f"{what}: {name} must be a 2-D matrix, got an array of shape {X.shape}")
        if X.size == 0:
            raise ValueError(f"{what}: {name} is empty (shape {X.shape})")
        if not np.all(np.isfinite(X)):
            raise ValueError(f"{what}: {name} contains infs or NaNs")
    elif block_size is not None and X.block_size != (block_size, block_size):
        raise ValueError(f"{what}: {name} ({X.name}) is tiled {X.block_size}, not block_size={block_size}; "
                         "give a BigMatrix tiled as wanted or leave block_size out")
    X = as_bigmatrix(X, block_size)
    if X.block_size[0] != X.block_size[1]:
        raise ValueError(f"{what} needs square tiles, got block_size {X.block_size} for {name} ({X.name})")
    if min(X.shape) == 0:
        raise ValueError(f"{what}: {name} is empty (shape {X.shape})")
    return X


def _block_from_rhs(a, b, block_size: int | None) -> int | None:
    """A numpy ``a`` with a BigMatrix ``b`` and no block size: tile ``a`` like ``b``'s rows."""
    if block_size is None and not isinstance(a, BigMatrix) and isinstance(b, BigMatrix):
        return b.block_size[0]
    return block_size


def _copies(*pairs) -> list[BigMatrix]:
    """The BigMatrix copies made here of numpy arguments: ``(BigMatrix, argument)`` pairs."""
    return [m for m, given in pairs if not isinstance(given, BigMatrix)]


def _run(program, copies: list[BigMatrix], **arguments) -> None:
    """Run one job to completion; the copies of numpy arguments are deleted whatever happens."""
    try:
        submit(program, **arguments).wait()
    finally:
        for m in copies:
            m.delete()


def _vector_or_matrix(X: BigMatrix, vector: bool) -> BigMatrix | np.ndarray:
    """A vector right-hand side gives a numpy vector (the one-column BigMatrix is deleted)."""
    if not vector:
        return X
    x = X.numpy()[:, 0]
    X.delete()
    return x


def _square(A: BigMatrix, what: str, name: str = "a") -> None:
    if A.shape[0] != A.shape[1]:
        raise ValueError(f"{what} needs a square matrix {name}, got shape {A.shape}")


def _right_hand_side(b, rows: int, row_block: int, what: str) -> tuple[BigMatrix, bool]:
    """``b`` (a vector or a matrix with ``rows`` rows) as a BigMatrix tiled in ``row_block`` rows.

    Returns the matrix and whether ``b`` was a vector (the result is then returned as one).
    """
    if isinstance(b, BigMatrix):
        if b.shape[0] != rows:
            raise ValueError(f"{what}: b has {b.shape[0]} rows, the matrix has {rows}")
        if b.block_size[0] != row_block:
            raise ValueError(f"{what}: b ({b.name}) is tiled in {b.block_size[0]} rows, the matrix in {row_block}; "
                             "they must agree")
        return b, False
    B = np.asarray(b)
    vector = B.ndim == 1
    if vector:
        B = B[:, None]
    if B.ndim != 2:
        raise ValueError(f"{what}: b must be a vector or a 2-D matrix, got an array of shape {np.shape(b)}")
    if B.shape[0] != rows:
        raise ValueError(f"{what}: b has {B.shape[0]} rows, the matrix has {rows} (shapes {np.shape(b)} and "
                         f"{rows} rows do not match)")
    if B.shape[1] == 0:
        raise ValueError(f"{what}: b has no columns")
    if not np.all(np.isfinite(B)):
        raise ValueError(f"{what}: b contains infs or NaNs")
    dtype = B.dtype if B.dtype in (np.float32, np.float64) else np.float64
    return BigMatrix.from_numpy(B, (row_block, row_block), dtype=dtype), vector


def _trans_code(trans) -> int:
    codes = {0: 0, "N": 0, "n": 0, 1: 1, "T": 1, "t": 1, 2: 1, "C": 1, "c": 1}
    try:
        return codes[trans]
    except (KeyError, TypeError):
        raise ValueError(f"trans must be 0, 1, 2, 'N', 'T' or 'C', not {trans!r}") from None


def qr(A, mode: str = "reduced", block_size: int | None = None,
       workers: int | None = None) -> tuple[BigMatrix, BigMatrix] | BigMatrix:
    """QR factorization of a general matrix by the tiled communication-avoiding algorithm.

    Each tile column is factored by a TSQR tree (Householder QR of every tile, R factors
    merged pairwise) and the trailing matrix is updated along the same tree; see
    ``numpywren2.programs.qr`` and ``docs/algorithms.md``.

    Parameters
    ----------
    A : (m, n) array_like or BigMatrix
        Any shape: tall, square or wide. A BigMatrix must have square tiles.
    mode : {"reduced", "r", "complete"}
        As ``numpy.linalg.qr``: ``(Q, R)`` with Q m×k and R k×n, k = min(m, n)
        ("reduced", default); R alone ("r", the Householder reflectors are not applied to
        the identity, which saves about half of the work); or Q m×m and R m×n ("complete").
    block_size : int, optional
        Tile size when ``A`` is a numpy array.
    workers : int, optional
        Executors for this job (default: the runtime's).

    Returns
    -------
    Q : BigMatrix
        Orthonormal columns (not for ``mode="r"``).
    R : BigMatrix
        Upper trapezoidal. The signs of its rows (and of Q's columns) may differ from
        ``numpy.linalg.qr``'s; ``Q @ R`` is the same.
    """
    if mode not in ("reduced", "r", "complete"):
        raise ValueError(f"qr: mode must be 'reduced', 'r' or 'complete', not {mode!r}")
    given = A
    A = _matrix(A, block_size, "qr", "A")
    m, n = A.shape
    bs = A.block_size[0]
    M, N = A.grid
    k = min(m, n)
    q_cols = m if mode == "complete" else k
    R = BigMatrix.empty((k, n), A.block_size, A.dtype, store=A.store)
    # no right-hand sides (C = 0): B is never read, but submit wants every input tile space bound
    args = dict(A=A, B=A, R=R, M=M, N=N, C=0, ROWS=m, COLS=n, BS=bs, QC=-(-q_cols // bs), QCOLS=q_cols,
                WANT_Q=int(mode != "r"), SINGLE=int(A.dtype == np.float32), SOLVE=0)
    if mode != "r":
        args["Q"] = Q = BigMatrix.empty((m, q_cols), A.block_size, A.dtype, store=A.store)
    _run(programs.qr, _copies((A, given)), workers=workers, **args)
    if mode == "r":
        return R
    if mode == "complete" and k < m:
        R = _pad_rows(R, m)
    return Q, R


def _pad_rows(R: BigMatrix, rows: int) -> BigMatrix:
    """``R`` with zero rows appended (the R of a complete QR); tiles are copied through the client."""
    out = BigMatrix.empty((rows, R.shape[1]), R.block_size, R.dtype, store=R.store)
    gr, gc = R.grid
    for i in range(gr):
        for j in range(i, gc):
            t = R.get_tile(i, j)
            want = out.tile_shape(i, j)
            if t.shape != want:
                t = np.vstack([t, np.zeros((want[0] - t.shape[0], want[1]), t.dtype)])
            out.put_tile(i, j, t)
    R.delete()
    return out


def solve_triangular(a, b, trans: int | str = 0, lower: bool = False, unit_diagonal: bool = False,
                     block_size: int | None = None, workers: int | None = None) -> BigMatrix | np.ndarray:
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
    block_size : int, optional
        Tile size when ``a`` is a numpy array (default: ``b``'s row tiles if ``b`` is a
        BigMatrix, else about 4 tiles per dimension); a numpy ``b`` is tiled to match.
    workers : int, optional
        Executors for this job (default: the runtime's).

    Returns
    -------
    x : BigMatrix, or numpy.ndarray of shape (n,) when ``b`` is a vector

    Raises
    ------
    numpy.linalg.LinAlgError
        If ``a`` has a zero on its diagonal (the message names the diagonal tile and the row).
    ValueError
        For a non-square ``a``, mismatched shapes or tilings, or a bad ``trans``.
    """
    code = _trans_code(trans)
    T = _matrix(a, _block_from_rhs(a, b, block_size), "solve_triangular")
    _square(T, "solve_triangular")
    bs = T.block_size[0]
    B, vector = _right_hand_side(b, T.shape[0], bs, "solve_triangular")
    forward = bool(lower) != bool(code)  # op(a) lower triangular: forward substitution
    X = BigMatrix.empty(B.shape, B.block_size, np.result_type(T.dtype, B.dtype), store=T.store)
    program = programs.trsm_forward if forward else programs.trsm_backward
    _run(program, _copies((T, a), (B, b)), T=T, B=B, X=X, N=T.grid[0], C=B.grid[1], TRANS=code,
         UNIT=int(bool(unit_diagonal)), BS=bs, workers=workers)
    return _vector_or_matrix(X, vector)


def _positive_definite_only(assume_a: str, what: str) -> None:
    if assume_a not in ("pos", "positive definite"):
        raise NotImplementedError(f"{what}: only assume_a='pos' (symmetric positive definite, through Cholesky) "
                                  f"is implemented, not {assume_a!r}; for a general matrix use npw.lstsq (QR)")


def solve(a, b, assume_a: str = "pos", block_size: int | None = None,
          workers: int | None = None) -> BigMatrix | np.ndarray:
    """Solve ``a x = b`` for a symmetric positive definite ``a``, through its Cholesky factor.

    One job factors ``a = L Lᵀ`` and runs the forward and backward substitutions
    (``numpywren2.programs.posv``); the substitutions start on each block row as soon as
    its tiles of L exist.

    Parameters
    ----------
    a : (n, n) array_like or BigMatrix
        Symmetric positive definite; only its lower triangle is read (scipy's ``lower=True``).
    b : (n,) or (n, k) array_like, or (n, k) BigMatrix
        Right-hand side(s), tiled in the same number of rows as ``a`` if a BigMatrix.
    assume_a : {"pos"}
        Only "pos" is implemented (scipy's default is "gen"; use ``lstsq`` for general
        square systems).
    block_size : int, optional
        Tile size when ``a`` is a numpy array.
    workers : int, optional
        Executors for this job (default: the runtime's).

    Returns
    -------
    x : BigMatrix, or numpy.ndarray of shape (n,) when ``b`` is a vector

    Raises
    ------
    numpy.linalg.LinAlgError
        If ``a`` is not positive definite (naming the failing Cholesky task).
    NotImplementedError
        For ``assume_a`` other than "pos".
    """
    _positive_definite_only(assume_a, "solve")
    A = _matrix(a, _block_from_rhs(a, b, block_size), "solve")
    _square(A, "solve")
    bs = A.block_size[0]
    B, vector = _right_hand_side(b, A.shape[0], bs, "solve")
    X = BigMatrix.empty(B.shape, B.block_size, np.result_type(A.dtype, B.dtype), store=A.store)
    _run(programs.posv, _copies((A, a), (B, b)), A=A, B=B, X=X, N=A.grid[0], C=B.grid[1], BS=bs, workers=workers)
    return _vector_or_matrix(X, vector)


def inv(a, assume_a: str = "pos", block_size: int | None = None, workers: int | None = None) -> BigMatrix:
    """Inverse of a symmetric positive definite matrix (LAPACK's potrf + potri, tiled).

    ``a = L Lᵀ``, ``W = L⁻¹``, ``a⁻¹ = Wᵀ W`` in one job (``numpywren2.programs.spd_inverse``),
    about n³ flops.

    Parameters
    ----------
    a : (n, n) array_like or BigMatrix
        Symmetric positive definite; only its lower triangle is read.
    assume_a : {"pos"}
        Only "pos" is implemented.
    block_size : int, optional
        Tile size when ``a`` is a numpy array.
    workers : int, optional
        Executors for this job (default: the runtime's).

    Returns
    -------
    BigMatrix
        The full (symmetric) inverse.

    Raises
    ------
    numpy.linalg.LinAlgError
        If ``a`` is not positive definite (naming the failing Cholesky task).
    """
    _positive_definite_only(assume_a, "inv")
    A = _matrix(a, block_size, "inv")
    _square(A, "inv")
    X = BigMatrix.empty(A.shape, A.block_size, A.dtype, store=A.store)
    _run(programs.spd_inverse, _copies((A, a)), A=A, X=X, N=A.grid[0], BS=A.block_size[0], workers=workers)
    return X


def lstsq(a, b, block_size: int | None = None,
          workers: int | None = None) -> tuple[BigMatrix | np.ndarray, np.ndarray, int, None]:
    """Least-squares solution of ``a x ≈ b`` through the tiled QR, like ``numpy.linalg.lstsq``.

    One job factors ``a = QR`` (TSQR trees per tile column) carrying ``b`` along as extra
    trailing columns, which yields ``Qᵀ b``, and solves ``R x = (Qᵀ b)[:n]`` by backward
    substitution (``numpywren2.programs.qr`` with ``SOLVE=1``); Q is never formed.

    Parameters
    ----------
    a : (m, n) array_like or BigMatrix
        m ≥ n and full column rank (QR without pivoting: the rank is not revealed).
    b : (m,) or (m, k) array_like, or (m, k) BigMatrix
        Right-hand side(s), tiled in the same number of rows as ``a`` if a BigMatrix.
    block_size : int, optional
        Tile size when ``a`` is a numpy array.
    workers : int, optional
        Executors for these jobs (default: the runtime's).

    Returns
    -------
    x : BigMatrix (n, k), or numpy.ndarray of shape (n,) when ``b`` is a vector
    residuals : numpy.ndarray
        Squared 2-norm of each column of ``b - a x``, shape (k,) ((1,) for a vector
        ``b``), from the rows of ``Qᵀ b`` below n; empty when m == n, as numpy.
    rank : int
        ``n``: the factorization assumes full column rank (an exactly zero diagonal of R
        raises; a numerically rank-deficient ``a`` is not detected).
    s : None
        The singular values of ``a`` are not computed (numpy returns them; use
        ``npw.svd(a, compute_uv=False)``).

    Raises
    ------
    numpy.linalg.LinAlgError
        If R has a zero on its diagonal (``a`` is rank deficient); the message names the tile.
    NotImplementedError
        For m < n (the minimum-norm solution of an underdetermined system is not implemented).
    """
    A = _matrix(a, _block_from_rhs(a, b, block_size), "lstsq")
    m, n = A.shape
    if m < n:
        raise NotImplementedError(f"lstsq: a has shape {A.shape}; only m >= n (overdetermined or square, full column "
                                  "rank) is implemented")
    bs = A.block_size[0]
    B, vector = _right_hand_side(b, m, bs, "lstsq")
    M, N = A.grid
    dtype = np.result_type(A.dtype, B.dtype)
    R = BigMatrix.empty((n, n), A.block_size, A.dtype, store=A.store)
    QtB = BigMatrix.empty(B.shape, B.block_size, dtype, store=A.store)
    X = BigMatrix.empty((n, B.shape[1]), B.block_size, dtype, store=A.store)
    try:
        _run(programs.qr, _copies((A, a), (B, b)) + [R], A=A, B=B, R=R, QtB=QtB, X=X, M=M, N=N, C=B.grid[1],
             ROWS=m, COLS=n, BS=bs, QC=0, QCOLS=0, WANT_Q=0, SINGLE=0, SOLVE=1, workers=workers)
    except np.linalg.LinAlgError as e:
        QtB.delete()
        X.delete()
        raise np.linalg.LinAlgError(f"lstsq: a is rank deficient (its R factor is singular): {e}") from None
    residuals = np.zeros(0, dtype)
    if m > n:  # the rows of Qᵀb below n: tile rows N - 1 (its part below row n) to M - 1
        sums = np.zeros(B.shape[1])
        cb = B.block_size[1]
        for i in range(N - 1, M):
            for j in range(QtB.grid[1]):
                below = QtB.get_tile(i, j)[max(0, n - i * bs):].astype(np.float64)
                sums[j * cb:j * cb + below.shape[1]] += np.einsum("ij,ij->j", below, below)
        residuals = sums.astype(dtype)
    QtB.delete()
    return _vector_or_matrix(X, vector), residuals, n, None
