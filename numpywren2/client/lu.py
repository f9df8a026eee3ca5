"""LU and Cholesky factorizations with scipy's interface: ``lu``, ``lu_factor``/``lu_solve``,
``cho_factor``/``cho_solve``, ``det``, ``slogdet``; and the general square solve that ``npw.solve`` and
``npw.inv`` use.

The factorization is ``numpywren2.core.programs.lu`` (tiled, tournament pivoting; the algorithm and its
accuracy: ``docs/algorithms.md``), run by the executors. The client handles O(n) data only: the row
permutation (one 2×n tile row of the job: the rows each step moves and U's diagonal), from which it
derives scipy's pivot indices, the permutation's sign and the determinant. Conventions as
``numpywren2.client.linalg``: numpy or BigMatrix arguments, matrices returned as BigMatrix, vectors
(pivots, the solution of a vector right-hand side) as numpy arrays, scalars as numpy scalars.

``lu`` and ``lu_factor`` accept rectangular M×N matrices as scipy does (P M×M, L M×K, U K×N, K = min(M,
N)). Unlike scipy, which returns factors with an exactly zero pivot (and warns in ``lu_factor``), an
exactly singular square matrix is a ``numpy.linalg.LinAlgError`` naming the column whose pivot is zero
(``det`` returns 0 and ``slogdet`` (0, -inf) for it, as numpy); a rectangular one is factored as
scipy does, the zero pivot kept in U (``lu_factor`` warns as scipy, ``LinAlgWarning``).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.linalg import LinAlgWarning

from ..core import programs
from ..core.deprecation import renamed_options
from ..core.kernels.lu import step_swaps
from .call import Call
from .matrix import BigMatrix

LinAlgError = np.linalg.LinAlgError

_LU_TILES = "the factorization pairs tile row k with tile column k"
_MAX_FLOAT32_ROWS = 2**24  # row numbers travel in tiles of the matrix's dtype (exact in float32 below this)


class Factorization:
    """The result of one LU job: the packed factors (kept by the caller or not), the permutation of A's
    rows (``A[perm] = L @ U``) and U's diagonal (min(M, N) numbers)."""

    def __init__(self, LU: BigMatrix, perm: np.ndarray, diagonal: np.ndarray):
        self.LU, self.perm, self.diagonal = LU, perm, diagonal

    @property
    def inverse(self) -> np.ndarray:
        """``p`` with ``A = L[p] @ U`` (``perm`` has ``A[perm] = L @ U``)."""
        inv = np.empty_like(self.perm)
        inv[self.perm] = np.arange(self.perm.size)
        return inv

    def sign(self) -> int:
        """The sign (±1) of the permutation."""
        return permutation_sign(self.perm)


def permutation_sign(perm: np.ndarray) -> int:
    """+1 or -1: the sign of a permutation, from its cycles.

    >>> permutation_sign(np.array([1, 0, 2])), permutation_sign(np.array([1, 2, 0]))
    (-1, 1)
    """
    seen = np.zeros(perm.size, dtype=bool)
    swaps = 0
    for start in range(perm.size):
        length = 0
        i = start
        while not seen[i]:
            seen[i] = True
            i = perm[i]
            length += 1
        swaps += max(length - 1, 0)
    return -1 if swaps % 2 else 1


def permutation_of_steps(winners: np.ndarray, bs: int, rows: int | None = None) -> np.ndarray:
    """``perm`` with ``A[perm] = L @ U`` (over ``rows`` rows, default ``winners.size``) from each step's
    winners (global rows of the current matrix, in the order they enter tile row k, min(bs, ...) per step;
    each step interchanges rows as LAPACK's getrf does: ``numpywren2.core.kernels.lu.step_swaps``).

    >>> permutation_of_steps(np.array([2, 0, 2]), 2)  # step 0 moves rows 2, 0 up; step 1 keeps row 2
    array([2, 0, 1])
    >>> permutation_of_steps(np.array([3]), 2, 4)  # a 4×1 matrix: row 3 is the pivot
    array([3, 1, 2, 0])
    """
    perm = np.arange(winners.size if rows is None else rows)
    for top0 in range(0, winners.size, bs):
        for a, b in step_swaps(winners[top0:top0 + bs], top0):
            perm[[a, b]] = perm[[b, a]]
    return perm


def pivots_of(perm: np.ndarray, count: int | None = None) -> np.ndarray:
    """LAPACK's pivot indices (0-based, as ``scipy.linalg.lu_factor``): row i was interchanged with row
    piv[i], in order, for the permutation ``perm`` (``A[perm] = L @ U``); the first ``count`` of them
    (default all: an M×N matrix has min(M, N)).

    >>> pivots_of(np.array([2, 0, 1]))
    array([2, 2, 2], dtype=int32)
    """
    n = perm.size
    count = n if count is None else count
    order = np.arange(n)     # order[r]: the row of A now at position r
    where = np.arange(n)     # where[row]: its position
    piv = np.empty(count, dtype=np.int32)
    for r in range(count):
        p = where[perm[r]]
        piv[r] = p
        a, b = order[r], order[p]
        order[r], order[p] = b, a
        where[a], where[b] = p, r
    return piv


def permutation_of_pivots(piv, n: int) -> np.ndarray:
    """``perm`` (``A[perm] = L @ U``) from LAPACK-style pivot indices, as ``lu_factor`` returns them.

    >>> permutation_of_pivots(np.array([2, 2, 2]), 3)
    array([2, 0, 1])
    """
    piv = np.asarray(piv)
    if piv.shape != (n,) or piv.dtype.kind not in "iu":
        raise ValueError(f"piv must be {n} integer pivot indices, got an array of shape {piv.shape} and dtype "
                         f"{piv.dtype}")
    perm = np.arange(n)
    for r, p in enumerate(piv.tolist()):
        if not r <= p < n:
            raise ValueError(f"piv[{r}] = {p} is not a row index in [{r}, {n}) (0-based LAPACK pivots)")
        perm[[r, p]] = perm[[p, r]]
    return perm


def factor(call: Call, A: BigMatrix, what: str = "a", zero_pivots: bool = False) -> Factorization:
    """One job of ``programs.lu`` on an M×N BigMatrix with square tiles; the packed factors belong to ``call``.

    An exactly zero pivot raises ``LinAlgError`` naming its column, or with ``zero_pivots`` is kept (a
    zero on U's diagonal, as getrf).
    """
    if A.block_size[0] != A.block_size[1]:
        raise ValueError(f"{call.what}: {what} ({A.name}) must have square tiles ({_LU_TILES}), got "
                         f"{A.block_size}")
    if A.dtype == np.float32 and A.shape[0] >= _MAX_FLOAT32_ROWS:
        raise ValueError(f"{call.what}: a float32 matrix of {A.shape[0]} rows is too large for the LU's row "
                         f"numbers (at most {_MAX_FLOAT32_ROWS - 1}); use float64")
    bs, (MT, NT) = A.block_size[0], A.grid
    LU = call.empty(A.shape, A.block_size, A.dtype)
    P = call.empty((2, min(A.shape)), (2, bs), np.float64)
    call.run(programs.lu, {LinAlgError: f"{what} is singular: "}, A=A, LU=LU, P=P, MT=MT, NT=NT, BS=bs,
             ZERO_PIVOTS=int(zero_pivots))
    steps = P.numpy()
    call.delete(P)
    perm = permutation_of_steps(steps[0].astype(np.int64), bs, A.shape[0])
    return Factorization(LU, perm, steps[1].astype(A.dtype))


def _rectangular_factor(call: Call, A: BigMatrix) -> Factorization:
    """``factor`` with this module's rule for exactly zero pivots (its docstring): a square ``A`` raises
    ``LinAlgError``, a rectangular one keeps them, as scipy does."""
    return factor(call, A, zero_pivots=A.shape[0] != A.shape[1])


def _any_matrix(call: Call, a, block_size) -> BigMatrix:
    return call.matrix(a, "a", block_size, square=_LU_TILES)


def _square_matrix(call: Call, a, block_size, name: str = "a") -> BigMatrix:
    A = call.matrix(a, name, block_size, square=_LU_TILES)
    if A.shape[0] != A.shape[1]:
        raise ValueError(f"{call.what} needs a square matrix {name}, got shape {A.shape} (the tiled LU factors "
                         "square matrices only)")
    return A


def _rows_of(call: Call, B, rows: int, row_block: int) -> BigMatrix:
    """A right-hand side as a BigMatrix tiled in ``row_block`` rows (a numpy one uploaded so)."""
    if B.shape[0] != rows:
        raise ValueError(f"{call.what}: b has {B.shape[0]} rows, the matrix has {rows}")
    if isinstance(B, BigMatrix):
        if B.block_size[0] != row_block:
            raise ValueError(f"{call.what}: b ({B.name}) is tiled in {B.block_size[0]} rows, the matrix in "
                             f"{row_block}; they must agree")
        return B
    return call.matrix(B, "b", (row_block, row_block))


def _returned(call: Call, X: BigMatrix, vector: bool):
    return X.numpy()[:, 0] if vector else call.keep(X)


def _trans(trans) -> int:
    codes = {0: 0, "N": 0, "n": 0, 1: 1, "T": 1, "t": 1, 2: 1, "C": 1, "c": 1}
    try:
        return codes[trans]
    except (KeyError, TypeError):
        raise ValueError(f"trans must be 0, 1, 2, 'N', 'T' or 'C', not {trans!r}") from None


def substitute(call: Call, LU: BigMatrix, perm: np.ndarray, B: BigMatrix, trans: int = 0) -> BigMatrix:
    """X with ``A X = B`` (trans=0) or ``Aᵀ X = B`` from the packed factors of ``A[perm] = L U``: one job of
    ``programs.lu_solve``. X belongs to ``call``."""
    n, bs = LU.shape[0], LU.block_size[0]
    inv = np.empty_like(perm)
    inv[perm] = np.arange(n)
    rows = call.upload((perm if trans == 0 else inv)[None, :].astype(np.float64), (1, bs))
    X = call.empty(B.shape, B.block_size, np.result_type(LU.dtype, B.dtype))
    call.run(programs.lu_solve, LU=LU, B=B, Perm=rows, X=X, N=LU.grid[0], C=B.grid[1], TRANS=trans, BS=bs)
    call.delete(rows)
    return X


def solve_general(call: Call, A: BigMatrix, B: BigMatrix) -> BigMatrix:
    """X with A X = B for a general square A (``npw.solve``'s and ``npw.inv``'s general route): LU with
    tournament pivoting, then the substitutions. Intermediates belong to ``call``."""
    f = factor(call, A)
    X = substitute(call, f.LU, f.perm, B)
    call.delete(f.LU)
    return X


# --- the user API

@renamed_options(workers="executors")
def lu_factor(a, block_size: int | None = None, executors: int | None = None, check_finite: bool = True,
              overwrite_a: bool = False, progress: bool | None = None) -> tuple[BigMatrix, np.ndarray]:
    """LU factorization with partial (tournament) pivoting, as ``scipy.linalg.lu_factor``.

    Parameters
    ----------
    a : (m, n) array_like or BigMatrix
        Square or rectangular (``lu_solve`` needs a square one).
    block_size : int, optional
        Tile size when ``a`` is a numpy array; square tiles only.
    executors : int, optional
        Executors for this job (default: the runtime's).
    check_finite : bool
        Reject an ``a`` holding infs or NaNs (default, as scipy); False skips the check.
    overwrite_a : bool
        Accepted for scipy's signature; ``a`` is never overwritten.

    Returns
    -------
    lu : BigMatrix, (m, n)
        L (unit lower, its diagonal not stored) and U packed as LAPACK's getrf does, tiled like ``a``.
    piv : numpy.ndarray of int32, (min(m, n),)
        Pivot indices: row i was interchanged with row ``piv[i]`` (0-based), in order.

    Raises
    ------
    numpy.linalg.LinAlgError
        If a square ``a`` is exactly singular; the message names the column whose pivot is zero (scipy
        warns and returns the factors instead).
    ValueError
        For non-square tiles, or infs and NaNs.

    Warns
    -----
    scipy.linalg.LinAlgWarning
        For a rectangular ``a`` with an exactly zero pivot, as scipy: the factors are returned, U with a
        zero on its diagonal.

    Examples
    --------
    >>> import numpy as np, numpywren2 as npw
    >>> lu, piv = npw.lu_factor(np.array([[1.0, 2.0], [4.0, 2.0]]), block_size=1)
    >>> lu.numpy(), piv
    (array([[4.  , 2.  ],
           [0.25, 1.5 ]]), array([1, 1], dtype=int32))
    """
    del overwrite_a
    with Call("lu_factor", check_finite, executors, progress) as call:
        f = _rectangular_factor(call, _any_matrix(call, a, block_size))
        zeros = np.flatnonzero(f.diagonal == 0)
        if zeros.size:  # only a rectangular a gets here with a zero pivot
            warnings.warn(f"Diagonal number {zeros[0] + 1} is exactly zero. Singular matrix.", LinAlgWarning,
                          stacklevel=3)
        return call.keep(f.LU), pivots_of(f.perm, f.diagonal.size)


@renamed_options(workers="executors")
def lu_solve(lu_and_piv, b, trans: int | str = 0, block_size: int | None = None, executors: int | None = None,
             check_finite: bool = True, overwrite_b: bool = False,
             progress: bool | None = None) -> BigMatrix | np.ndarray:
    """Solve ``a x = b`` (or ``aᵀ x = b``) from ``lu_factor``'s result, as ``scipy.linalg.lu_solve``.

    Parameters
    ----------
    lu_and_piv : (lu, piv)
        From ``lu_factor`` (``lu`` a BigMatrix or a numpy array in LAPACK's packed form).
    b : (n,) or (n, k) array_like, or (n, k) BigMatrix
        Right-hand side(s); a BigMatrix tiled in the rows of ``lu``'s tiles.
    trans : {0, 1, 2, 'N', 'T', 'C'}
        ``a x = b`` (0) or ``aᵀ x = b`` (1, 2: real matrices).
    block_size : int, optional
        Tile size of a numpy ``lu``.
    executors : int, optional
        Executors for this job (default: the runtime's).
    check_finite : bool
        Reject inputs holding infs or NaNs (default); False skips the check.
    overwrite_b : bool
        Accepted for scipy's signature; ``b`` is never overwritten.

    Returns
    -------
    x : BigMatrix, or numpy.ndarray of shape (n,) when ``b`` is a vector

    Examples
    --------
    >>> import numpy as np, numpywren2 as npw
    >>> a = np.array([[3.0, 2.0, 0.0], [1.0, -1.0, 0.0], [0.0, 5.0, 1.0]])
    >>> f = npw.lu_factor(a, block_size=2)
    >>> npw.lu_solve(f, np.array([2.0, 4.0, -1.0])).round(12)
    array([ 2., -2.,  9.])
    """
    del overwrite_b
    code = _trans(trans)
    try:
        packed, piv = lu_and_piv
    except (TypeError, ValueError):
        raise TypeError("lu_solve: lu_and_piv must be the pair (lu, piv) that lu_factor returns") from None
    with Call("lu_solve", check_finite, executors, progress) as call:
        B, vector = call.vector_or_matrix(b, "b")
        if block_size is None and not isinstance(packed, BigMatrix) and isinstance(B, BigMatrix):
            block_size = B.block_size[0]
        LU = _square_matrix(call, packed, block_size, "lu")
        perm = permutation_of_pivots(piv, LU.shape[0])
        B = _rows_of(call, B, LU.shape[0], LU.block_size[0])
        return _returned(call, substitute(call, LU, perm, B, code), vector)


@renamed_options(workers="executors")
def lu(a, permute_l: bool = False, overwrite_a: bool = False, check_finite: bool = True, p_indices: bool = False,
       block_size: int | None = None, executors: int | None = None, progress: bool | None = None):
    """LU decomposition with partial (tournament) pivoting, as ``scipy.linalg.lu``: ``a = P @ L @ U``.

    Parameters
    ----------
    a : (m, n) array_like or BigMatrix
        Square or rectangular.
    permute_l : bool
        Return ``(P @ L, U)`` (the rows of L permuted by the executors).
    overwrite_a : bool
        Accepted for scipy's signature; ``a`` is never overwritten.
    check_finite : bool
        Reject an ``a`` holding infs or NaNs (default); False skips the check.
    p_indices : bool
        Return the permutation as row indices ``p`` (``a == L[p] @ U``) instead of the matrix P.
    block_size : int, optional
        Tile size when ``a`` is a numpy array; square tiles only.
    executors : int, optional
        Executors for these jobs (default: the runtime's).

    Returns
    -------
    (P, L, U), (p, L, U) or (PL, U)
        P an (m, m) BigMatrix permutation matrix, p a numpy int array of m row indices; L (m, k) unit
        lower triangular (trapezoidal) and U (k, n) upper triangular BigMatrices, k = min(m, n), tiled
        like ``a``.

    Raises
    ------
    numpy.linalg.LinAlgError
        If a square ``a`` is exactly singular, naming the column whose pivot is zero (scipy returns a U
        with a zero on its diagonal; for a rectangular ``a`` so does this function).

    Examples
    --------
    >>> import numpy as np, numpywren2 as npw
    >>> p, L, U = npw.lu(np.array([[1.0, 2.0], [4.0, 2.0]]), p_indices=True, block_size=1)
    >>> p, L.numpy(), U.numpy()
    (array([1, 0]), array([[1.  , 0.  ],
           [0.25, 1.  ]]), array([[4. , 2. ],
           [0. , 1.5]]))
    >>> p, L, U = npw.lu(np.array([[1.0, 2.0], [4.0, 2.0], [2.0, 0.0]]), p_indices=True, block_size=1)
    >>> p, L.shape, U.shape  # a tall matrix: L is 3×2, U 2×2, as scipy's
    (array([1, 0, 2]), (3, 2), (2, 2))
    """
    del overwrite_a
    with Call("lu", check_finite, executors, progress) as call:
        A = _any_matrix(call, a, block_size)
        f = _rectangular_factor(call, A)
        (m, n), bs, (MT, NT) = A.shape, A.block_size[0], A.grid
        k = min(m, n)
        L = call.empty((m, k), A.block_size, A.dtype)
        U = call.empty((k, n), A.block_size, A.dtype)
        call.run(programs.lu_split, LU=f.LU, L=L, U=U, MT=MT, NT=NT, K=k, BS=bs)
        call.delete(f.LU)
        p = f.inverse
        if permute_l:
            rows = call.upload(p[None, :].astype(np.float64), (1, bs))
            PL = call.empty(L.shape, A.block_size, A.dtype)
            call.run(programs.permute_rows, B=L, Perm=rows, X=PL, N=MT, C=L.grid[1], BS=bs)
            return call.keep(PL, U)
        if p_indices:
            return p, *call.keep(L, U)
        P = BigMatrix.from_numpy(np.eye(m, dtype=A.dtype)[p], A.block_size)
        return P, *call.keep(L, U)


@renamed_options(workers="executors")
def slogdet(a, block_size: int | None = None, executors: int | None = None,
            check_finite: bool = True, progress: bool | None = None) -> tuple[np.floating, np.floating]:
    """Sign and natural logarithm of the absolute determinant, as ``numpy.linalg.slogdet``.

    From the LU factorization: the product of U's diagonal and the sign of the row permutation. An
    exactly singular ``a`` gives ``(0.0, -inf)``.

    Examples
    --------
    >>> import numpy as np, numpywren2 as npw
    >>> sign, logdet = npw.slogdet(np.array([[1.0, 2.0], [3.0, 4.0]]), block_size=1)
    >>> float(sign), round(float(np.exp(logdet)), 12)
    (-1.0, 2.0)
    """
    with Call("slogdet", check_finite, executors, progress) as call:
        A = _square_matrix(call, a, block_size)
        try:
            f = factor(call, A)
        except LinAlgError:
            return A.dtype.type(0.0), A.dtype.type(-np.inf)
        d = f.diagonal.astype(np.float64)
        sign = f.sign() * (-1.0 if np.count_nonzero(d < 0) % 2 else 1.0)
        return A.dtype.type(sign), A.dtype.type(np.sum(np.log(np.abs(d))))


@renamed_options(workers="executors")
def det(a, block_size: int | None = None, executors: int | None = None, check_finite: bool = True,
        progress: bool | None = None) -> np.floating:
    """Determinant of a square matrix, as ``scipy.linalg.det``: the product of U's diagonal of its LU
    factorization times the sign of the row permutation (0.0 for an exactly singular matrix).

    Examples
    --------
    >>> import numpy as np, numpywren2 as npw
    >>> round(float(npw.det(np.array([[1.0, 2.0], [3.0, 4.0]]), block_size=1)), 12)
    -2.0
    """
    with Call("det", check_finite, executors, progress) as call:
        A = _square_matrix(call, a, block_size)
        try:
            f = factor(call, A)
        except LinAlgError:
            return A.dtype.type(0.0)
        return A.dtype.type(f.sign() * np.prod(f.diagonal.astype(np.float64)))


@renamed_options(workers="executors")
def cho_factor(a, lower: bool = False, overwrite_a: bool = False, check_finite: bool = True,
               block_size: int | None = None, executors: int | None = None,
               progress: bool | None = None) -> tuple[BigMatrix, bool]:
    """Cholesky factorization for ``cho_solve``, as ``scipy.linalg.cho_factor``.

    Parameters
    ----------
    a : (n, n) array_like or BigMatrix
        Symmetric positive definite; only its lower triangle is read (symmetry is not checked).
    lower : bool
        Return the lower factor L (``a = L Lᵀ``) or the upper one U = Lᵀ (False, scipy's default).
    overwrite_a, check_finite, block_size, executors
        As for ``npw.cholesky`` (``overwrite_a`` is accepted and ignored).

    Returns
    -------
    c : BigMatrix
        The factor, in the triangle ``lower`` says; the other triangle is zero (scipy leaves whatever
        ``a`` held there).
    lower : bool

    Raises
    ------
    numpy.linalg.LinAlgError
        If ``a`` is not positive definite.
    """
    del overwrite_a
    with Call("cho_factor", check_finite, executors, progress) as call:
        A = _square_matrix(call, a, block_size, "a")
        L = call.empty(A.shape, A.block_size, A.dtype)
        call.run(programs.cholesky, {LinAlgError: "a is not positive definite: "}, A=A, L=L, N=A.grid[0])
        if lower:
            return call.keep(L), True
        U = call.empty(A.shape, A.block_size, A.dtype)
        call.run(programs.transpose_lower, L=L, U=U, N=A.grid[0])
        return call.keep(U), False


@renamed_options(workers="executors")
def cho_solve(c_and_lower, b, overwrite_b: bool = False, check_finite: bool = True, block_size: int | None = None,
              executors: int | None = None, progress: bool | None = None) -> BigMatrix | np.ndarray:
    """Solve ``a x = b`` from ``cho_factor``'s result, as ``scipy.linalg.cho_solve``.

    Parameters
    ----------
    c_and_lower : (c, lower)
        From ``cho_factor`` (``c`` a BigMatrix or numpy array: only the triangle ``lower`` says is read).
    b : (n,) or (n, k) array_like, or (n, k) BigMatrix
        Right-hand side(s), tiled in the rows of ``c``'s tiles if a BigMatrix.
    overwrite_b, check_finite, block_size, executors
        As for ``lu_solve``.

    Returns
    -------
    x : BigMatrix, or numpy.ndarray of shape (n,) when ``b`` is a vector

    Examples
    --------
    >>> import numpy as np, numpywren2 as npw
    >>> a = np.array([[4.0, 2.0], [2.0, 5.0]])
    >>> npw.cho_solve(npw.cho_factor(a, block_size=1), np.array([2.0, 1.0])).round(12)
    array([0.5, 0. ])
    """
    del overwrite_b
    try:
        c, lower = c_and_lower
    except (TypeError, ValueError):
        raise TypeError("cho_solve: c_and_lower must be the pair (c, lower) that cho_factor returns") from None
    with Call("cho_solve", check_finite, executors, progress) as call:
        B, vector = call.vector_or_matrix(b, "b")
        if block_size is None and not isinstance(c, BigMatrix) and isinstance(B, BigMatrix):
            block_size = B.block_size[0]
        T = _square_matrix(call, c, block_size, "c")
        bs, N = T.block_size[0], T.grid[0]
        B = _rows_of(call, B, T.shape[0], bs)
        dtype = np.result_type(T.dtype, B.dtype)
        Y, X = call.empty(B.shape, B.block_size, dtype), call.empty(B.shape, B.block_size, dtype)
        t = 0 if lower else 1  # lower: L y = b, Lᵀ x = y; upper: Uᵀ y = b, U x = y
        call.run(programs.trsm_forward, T=T, B=B, X=Y, N=N, C=B.grid[1], TRANS=t, UNIT=0, BS=bs)
        call.run(programs.trsm_backward, T=T, B=Y, X=X, N=N, C=B.grid[1], TRANS=1 - t, UNIT=0, BS=bs)
        return _returned(call, X, vector)
