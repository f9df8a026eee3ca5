"""Built-in kernels: thin wrappers over scipy's BLAS/LAPACK, in one place.

Every kernel takes and returns numpy tiles (2-D arrays) and works for float32
and float64.  Edge tiles may be smaller than the block size, and the TSQR
kernels accept tiles with fewer rows than columns.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import blas, lapack

import lambdapack as lp


def _blas(name: str, *arrays):
    return blas.get_blas_funcs(name, arrays)


def _lapack(name: str, *arrays):
    return lapack.get_lapack_funcs(name, arrays)


# The BLAS/LAPACK kernels below work on C-ordered tiles through their transposes, which are
# Fortran-ordered views of the same memory: BLAS then reads and writes the tiles in place,
# with no layout conversion (f2py would otherwise copy every C-ordered operand to Fortran
# order and hand back a Fortran-ordered result, which costs about half the kernel time at
# 1024×1024).  Each kernel copies its updated operand once, into the C-ordered result.


@lp.kernel(flops=lambda a: a.shape[0] ** 3 / 3)
def chol(a: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of an SPD tile (only its lower triangle is read).

    >>> a = np.array([[4.0, 0.0], [2.0, 5.0]])  # upper triangle ignored
    >>> chol(a)
    array([[2., 0.],
           [1., 2.]])
    """
    out = np.array(a, order="C", copy=True)
    potrf = _lapack("potrf", out)
    # out.T is Fortran-ordered; its upper triangle is a's lower one: U with out.T = UᵀU is Lᵀ.
    _, info = potrf(out.T, lower=0, clean=1, overwrite_a=1)
    if info > 0:
        raise np.linalg.LinAlgError(
            f"tile is not positive definite (leading minor of order {info} is not positive)")
    if info < 0:
        raise ValueError(f"potrf: illegal value in argument {-info}")
    return out


@lp.kernel(flops=lambda l_kk, a: a.shape[0] * a.shape[1] ** 2)
def trsm(l_kk: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``a @ inv(l_kk).T``: the panel tile of a Cholesky factor."""
    out = np.array(a, order="C", copy=True)
    f = _blas("trsm", l_kk, out)
    # out.T := inv(L) @ out.T, with L = (l_kk.T)ᵀ given as the Fortran view l_kk.T (upper, transposed).
    f(1.0, np.asarray(l_kk).T, out.T, side=0, lower=0, trans_a=1, overwrite_b=1)
    return out


@lp.kernel(flops=lambda c, a: c.shape[0] * c.shape[0] * a.shape[1])
def syrk(c: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``c - a @ a.T`` for a diagonal tile; only the lower triangle is computed (and read from ``c``).

    The strict upper triangle of the result is ``c``'s, unchanged: the consumers of a diagonal
    tile (``chol`` and the next ``syrk``) read its lower triangle only.
    """
    out = np.array(c, order="C", copy=True)
    f = _blas("syrk", out, a)
    # out.T's upper triangle is out's lower one; (a.T)ᵀ a.T = a aᵀ.
    f(-1.0, np.asarray(a).T, beta=1.0, c=out.T, trans=1, lower=0, overwrite_c=1)
    return out


@lp.kernel(flops=lambda c, a, b: 2 * c.shape[0] * c.shape[1] * a.shape[1])
def gemm_nt(c: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``c - a @ b.T``: the trailing update of a Cholesky factorization."""
    out = np.array(c, order="C", copy=True)
    f = _blas("gemm", out, a, b)
    # out.T := out.T - b @ a.T, with b given as (b.T)ᵀ and a.T as the Fortran view of a.
    f(-1.0, np.asarray(b).T, np.asarray(a).T, beta=1.0, c=out.T, trans_a=1, overwrite_c=1)
    return out


@lp.kernel(flops=lambda a, b: 2 * a.shape[0] * a.shape[1] * b.shape[1])
def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b``."""
    return a @ b


@lp.kernel(flops=lambda a, b: a.size)
def add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a + b``."""
    return a + b


@lp.kernel(flops=lambda a: 0)
def copy(a: np.ndarray) -> np.ndarray:
    """The same tile (moves a tile up a reduction tree unchanged)."""
    return a.copy()


@lp.kernel
def identity(r: np.ndarray) -> np.ndarray:
    """A square identity with as many rows as ``r`` (the root of a Q reconstruction)."""
    return np.eye(r.shape[0], dtype=r.dtype)


@lp.kernel(flops=lambda a: 2 * a.shape[0] * a.shape[1] ** 2)
def qr_factor(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reduced QR of one tile: ``(Q, R)`` with ``Q`` m×k, ``R`` k×n, k = min(m, n)."""
    q, r = np.linalg.qr(a, mode="reduced")
    return q, r


@lp.kernel(flops=lambda r1, r2: 2 * (r1.shape[0] + r2.shape[0]) * r1.shape[1] ** 2)
def qr_pair(r1: np.ndarray, r2: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """QR of two stacked R factors: ``(Q_top, Q_bottom, R)`` with ``[r1; r2] = [Q_top; Q_bottom] @ R``."""
    q, r = np.linalg.qr(np.vstack([r1, r2]), mode="reduced")
    k = r1.shape[0]
    return q[:k].copy(), q[k:].copy(), r




@lp.kernel
def normal_tile(i: int, j: int, rows: int, cols: int, seed: int, single: int = 0) -> np.ndarray:
    """Tile (i, j) of a standard normal matrix; a function of (seed, i, j) only (float32 if ``single``,
    rounded from the same float64 values)."""
    t = np.random.default_rng([seed, i, j]).standard_normal((rows, cols))
    return t.astype(np.float32) if single else t


@lp.kernel
def spd_tile(i: int, j: int, rows: int, cols: int, n: int, seed: int, single: int = 0) -> np.ndarray:
    """Tile (i, j) of a symmetric, strictly diagonally dominant (hence SPD) n×n matrix.

    Entries are uniform in [-1, 1), drawn from (seed, min(i, j), max(i, j)) so that tile
    (j, i) is the transpose of tile (i, j); n is added on the diagonal.
    """
    lo, hi = min(i, j), max(i, j)
    shape = (rows, cols) if i >= j else (cols, rows)
    t = np.random.default_rng([seed, hi, lo, 1]).uniform(-1.0, 1.0, shape)
    if i == j:
        t = np.tril(t) + np.tril(t, -1).T + n * np.eye(rows)
    t = t if i >= j else t.T.copy()
    return t.astype(np.float32) if single else t


BUILTIN = {name: obj for name, obj in globals().items() if isinstance(obj, lp.Kernel)}


# --- QR and triangular solves
#
# Householder QR of tiles in LAPACK's compact WY form: a factorization returns the
# reflectors V (unit lower trapezoidal, LAPACK's layout) and the block factors T, so that
# Q = I - V T Vᵀ (blocked in column groups of QR_INNER_BLOCK).  ``geqrt`` factors one
# tile; ``ttqrt`` factors an upper-triangular R stacked on an upper-trapezoidal R (the
# merge step of a TSQR tree, LAPACK's triangular-pentagonal tpqrt with the pentagon a
# trapezoid).  ``gemqrt``/``ttmqrt`` apply the same Q (trans=0) or Qᵀ (trans=1) to tiles.

QR_INNER_BLOCK = 32
"""Inner block size of the T factors (LAPACK's nb of geqrt/tpqrt)."""


def _inner_block(k: int) -> int:
    return max(1, min(QR_INNER_BLOCK, k))


def _check_info(name: str, info: int) -> None:
    """LAPACK's info < 0: an illegal argument (a bug here, not bad data)."""
    if info < 0:
        raise ValueError(f"{name}: LAPACK reported illegal argument {-info}")


@lp.kernel(flops=lambda a: 2 * a.shape[0] * a.shape[1] * min(a.shape) - 2 * min(a.shape) ** 3 / 3)
def geqrt(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Householder QR of one m×n tile: ``(V, T, R)``.

    ``V`` is m×k (k = min(m, n)) with the reflectors below its diagonal (the part on and
    above the diagonal is not used), ``T`` the block factors, ``R`` the k×n upper
    trapezoidal factor.
    """
    k = min(a.shape)
    out, t, info = _lapack("geqrt", a)(_inner_block(k), a)
    _check_info("geqrt", info)
    return out[:, :k].copy(), t, np.triu(out[:k])


@lp.kernel(flops=lambda v, t, c, trans: 4 * c.shape[0] * c.shape[1] * v.shape[1])
def gemqrt(v: np.ndarray, t: np.ndarray, c: np.ndarray, trans: int) -> np.ndarray:
    """``Q @ c`` (trans=0) or ``Q.T @ c`` (trans=1), Q the full m×m factor of a ``geqrt``."""
    out, info = _lapack("gemqrt", v, t, c)(v, t, c, side="L", trans="T" if trans else "N")
    _check_info("gemqrt", info)
    return out


@lp.kernel(flops=lambda r1, r2: 2 * r1.shape[1] * r1.shape[1] * r2.shape[0])
def ttqrt(r1: np.ndarray, r2: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """QR of ``[r1; r2]``: r1 n×n upper triangular, r2 m×n upper trapezoidal (m ≤ n).

    Returns ``(V, T, R)``: the m×n lower part of the reflectors (the upper part is the
    identity, implicit), the block factors and the new n×n R.
    """
    n, m = r1.shape[1], r2.shape[0]
    if r1.shape[0] != n or m > n or r2.shape[1] != n:
        raise ValueError(f"ttqrt: needs an n×n and an m×n (m ≤ n) R factor, got {r1.shape} and {r2.shape}")
    r, v, t, info = _lapack("tpqrt", r1, r2)(m, _inner_block(n), np.triu(r1), np.triu(r2))
    _check_info("tpqrt", info)
    return v, t, np.triu(r)


@lp.kernel(flops=lambda v, t, c1, c2, trans: 4 * v.shape[0] * v.shape[1] * c1.shape[1])
def ttmqrt(v: np.ndarray, t: np.ndarray, c1: np.ndarray, c2: np.ndarray, trans: int) -> tuple[np.ndarray, np.ndarray]:
    """Apply the Q of a ``ttqrt`` (trans=0) or its transpose (trans=1) to a pair of tiles.

    The Q acts on the first n rows of ``c1`` and the first m rows of ``c2`` (n×n and m×n
    are the shapes the ``ttqrt`` factored, ``v`` is m×n); further rows are returned
    unchanged.  Returns the new ``(c1, c2)``.
    """
    m, n = v.shape
    top, bottom = c1[:n], c2[:m]
    a, b, info = _lapack("tpmqrt", v, t, top, bottom)(m, v, t, top, bottom, side="L", trans="T" if trans else "N")
    _check_info("tpmqrt", info)
    out1, out2 = c1.copy(), c2.copy()
    out1[:n], out2[:m] = a, b
    return out1, out2


@lp.kernel
def eye_tile(i: int, j: int, rows: int, cols: int, single: int) -> np.ndarray:
    """Tile (i, j) of a rectangular identity: ``eye(rows, cols)`` on the diagonal, zeros elsewhere."""
    dtype = np.float32 if single else np.float64
    return np.eye(rows, cols, dtype=dtype) if i == j else np.zeros((rows, cols), dtype)


def _singular_tile(t: np.ndarray, tile: int, row0: int, name: str = "triangular matrix") -> None:
    zeros = np.flatnonzero(np.diagonal(t) == 0)
    if zeros.size:
        p = int(zeros[0])
        raise np.linalg.LinAlgError(
            f"the {name} is singular: diagonal tile ({tile}, {tile}) has a zero at its diagonal position {p} "
            f"(row {row0 + p} of the matrix)")


@lp.kernel(flops=lambda t, b, lower, trans, unit, tile, row0: t.shape[0] ** 2 * b.shape[1])
def trsm_left(t: np.ndarray, b: np.ndarray, lower: int, trans: int, unit: int, tile: int, row0: int) -> np.ndarray:
    """``op(t)⁻¹ @ b`` for a triangular diagonal tile (op = transpose when trans=1).

    Only the lower (lower=1) or upper triangle of ``t`` is read; unit=1 takes its diagonal
    as ones.  ``b`` may have more rows than ``t``: the first ``t.shape[1]`` are solved for
    (the rows of a least-squares right-hand side below the R factor).  A zero on the
    diagonal raises ``LinAlgError`` naming the tile (``tile``) and the matrix row
    (``row0`` is the tile's first row).
    """
    if not unit:
        _singular_tile(t, tile, row0)
    rhs = b[:t.shape[1]]
    f = _blas("trsm", t, rhs)
    return f(1.0, t, rhs, side=0, lower=lower, trans_a=trans, diag=unit)


@lp.kernel(flops=lambda c, a, x, trans: 2 * c.shape[0] * c.shape[1] * x.shape[0])
def gemm_update(c: np.ndarray, a: np.ndarray, x: np.ndarray, trans: int) -> np.ndarray:
    """``c - a @ x`` (trans=0) or ``c - a.T @ x`` (trans=1): a substitution update."""
    f = _blas("gemm", c, a, x)
    return f(-1.0, a, x, beta=1.0, c=c, trans_a=trans)


@lp.kernel(flops=lambda a, x: 2 * a.shape[0] * a.shape[1] * x.shape[1])
def neg_matmul(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``-a @ x``: the first update of a substitution whose right-hand side tile is zero."""
    return -(a @ x)


@lp.kernel(flops=lambda a, b: 2 * a.shape[0] * a.shape[1] * b.shape[1])
def matmul_tn(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a.T @ b``."""
    return a.T @ b


@lp.kernel(flops=lambda c, a, b: 2 * a.shape[0] * a.shape[1] * b.shape[1])
def gemm_tn_add(c: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``c + a.T @ b``."""
    f = _blas("gemm", c, a, b)
    return f(1.0, a, b, beta=1.0, c=c, trans_a=1)


@lp.kernel(flops=lambda l, tile, row0: l.shape[0] ** 3 / 3)
def trtri_lower(l: np.ndarray, tile: int, row0: int) -> np.ndarray:
    """Inverse of a lower-triangular diagonal tile (its upper triangle is not read; zeros returned there)."""
    _singular_tile(l, tile, row0, "Cholesky factor")  # trtri's own info > 0 means the same zero pivot
    inv, info = _lapack("trtri", l)(l, lower=1)
    _check_info("trtri", info)
    return np.tril(inv)


@lp.kernel(flops=lambda a: 0)
def transpose(a: np.ndarray) -> np.ndarray:
    """``a.T`` (a contiguous copy)."""
    return np.ascontiguousarray(a.T)


# --- SVD: Householder QR/LQ tree kernels for the band reduction, and the tree-merged and randomized SVD
#
# A Householder factorization travels as one tile.  Leaves: LAPACK's geqrf output (reflectors below the
# diagonal) with one extra last row holding tau.  Tree nodes merge a square upper triangle R1 (c×c) with an
# upper trapezoidal R2 (k2×c, k2 ≤ c) by the structured triangle-on-triangle QR (tpqrt); their tile is
# [V; T; nb] with V the k2×c trapezoidal reflectors, T the nb×c block-reflector factors, and nb in the
# first entry of the last row.  The LQ kernels are the QR kernels on transposed tiles: the LQ of a row
# panel P is the QR of Pᵀ, and applying it from the right to C is applying Qᵀ to Cᵀ from the left.

_TPQRT_BLOCK = 64  # inner block size of the triangle-on-triangle kernels (nb of tpqrt/tpmqrt)


def _geqrf(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(packed reflectors with tau as the last row, R)`` of a matrix with at least one row and column."""
    geqrf = _lapack("geqrf", a)
    qr, tau, _work, info = geqrf(np.array(a, order="F"))
    if info != 0:
        raise ValueError(f"geqrf: illegal value in argument {-info}")
    k = min(a.shape)
    packed = np.zeros((a.shape[0] + 1, a.shape[1]), dtype=qr.dtype)
    packed[:-1] = qr
    packed[-1, :k] = tau
    return packed, np.triu(qr[:k])


def _ormqr(packed: np.ndarray, c: np.ndarray, trans: str) -> np.ndarray:
    """``Qᵀ c`` (trans="T") or ``Q c`` (trans="N") for the Q of a packed factorization; c has Q's rows."""
    qr = packed[:-1]
    k = min(qr.shape)
    if c.shape[0] != qr.shape[0]:
        raise ValueError(f"cannot apply a reflector block of {qr.shape[0]} rows to a tile of {c.shape[0]} rows")
    if c.shape[1] == 0 or k == 0:
        return np.array(c, copy=True)
    ormqr = _lapack("ormqr", qr, c)
    out, _work, info = ormqr("L", trans, np.array(qr[:, :k], order="F"), packed[-1, :k].copy(),
                             np.array(c, order="F"), max(1, c.shape[1]) * 64)
    if info != 0:
        raise ValueError(f"ormqr: illegal value in argument {-info}")
    return out


def _tpqrt(r1: np.ndarray, r2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(packed node reflectors, R)`` of ``[r1; r2]``: r1 c×c upper triangular, r2 k2×c upper trapezoidal."""
    c = r1.shape[1]
    if r1.shape != (c, c) or r2.shape[1] != c or r2.shape[0] > c:
        raise ValueError(f"a tree node merges a square triangle with a trapezoid below it, not {r1.shape} "
                         f"and {r2.shape}")
    k2 = r2.shape[0]
    nb = max(1, min(_TPQRT_BLOCK, c))
    tpqrt = _lapack("tpqrt", r1, r2)
    r, v, t, info = tpqrt(k2, nb, np.array(r1, order="F"), np.array(r2, order="F"))
    if info != 0:
        raise ValueError(f"tpqrt: illegal value in argument {-info}")
    packed = np.zeros((k2 + nb + 1, c), dtype=r.dtype)
    packed[:k2] = v
    packed[k2:k2 + nb] = t
    packed[-1, 0] = nb
    return packed, np.triu(r)


def _tpmqrt(packed: np.ndarray, c1: np.ndarray, c2: np.ndarray, trans: str) -> tuple[np.ndarray, np.ndarray]:
    """Apply a tree node's ``Q`` (trans="N") or ``Qᵀ`` (trans="T") to ``[c1[:c]; c2[:k2]]``."""
    c = packed.shape[1]
    nb = int(packed[-1, 0])
    k2 = packed.shape[0] - nb - 1
    if c1.shape[0] < c or min(c2.shape[0], c) != k2 or c1.shape[1] != c2.shape[1]:
        raise ValueError(f"tree node reflectors for {c} + {k2} rows cannot be applied to tiles of shapes "
                         f"{c1.shape} and {c2.shape}")
    out1, out2 = np.array(c1, copy=True), np.array(c2, copy=True)
    if c1.shape[1] == 0 or k2 == 0:
        return out1, out2
    tpmqrt = _lapack("tpmqrt", packed, c1, c2)
    top, bottom, info = tpmqrt(k2, np.array(packed[:k2], order="F"), np.array(packed[k2:k2 + nb], order="F"),
                               np.array(c1[:c], order="F"), np.array(c2[:k2], order="F"), side="L", trans=trans)
    if info != 0:
        raise ValueError(f"tpmqrt: illegal value in argument {-info}")
    out1[:c], out2[:k2] = top, bottom
    return out1, out2


@lp.kernel(flops=lambda a: 2 * a.shape[0] * a.shape[1] ** 2)
def householder_qr(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Leaf of a TSQR tree: ``(reflectors, R)``; R is min(m, n)×n upper triangular."""
    return _geqrf(a)


@lp.kernel(flops=lambda r1, r2: 2 * r2.shape[0] * r1.shape[1] ** 2)
def householder_qr_pair(r1: np.ndarray, r2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Node of a TSQR tree: ``(reflectors, R)`` of the stacked triangles ``[r1; r2]`` (tpqrt).

    The rows of two tiles that take part in the node are the first c of the upper one (it always has at
    least c rows: only the last tile row can be shorter, and it is never an upper partner) and the first
    min(rows, c) of the lower one.
    """
    return _tpqrt(r1, r2)


@lp.kernel(flops=lambda v, c: 4 * c.shape[0] * c.shape[1] * v.shape[1])
def apply_qt(v: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``Qᵀ c`` for the leaf factorization ``v`` of the tile in the same tile row."""
    return _ormqr(v, c, "T")


@lp.kernel(flops=lambda v, c1, c2: 2 * v.shape[1] ** 2 * c1.shape[1])
def apply_qt_pair(v: np.ndarray, c1: np.ndarray, c2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``Qᵀ`` of a tree node applied to the active rows of two tiles (rows beyond the panel width stay)."""
    return _tpmqrt(v, c1, c2, "T")


@lp.kernel(flops=lambda v, c: 4 * c.shape[0] * c.shape[1] * v.shape[1])
def apply_q(v: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``Q c`` for a leaf factorization (the back-transformation of singular vectors)."""
    return _ormqr(v, c, "N")


@lp.kernel(flops=lambda v, c: 4 * c.shape[0] * c.shape[1] * v.shape[1])
def apply_q_transposed(v: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``(Q c)ᵀ``: the last leaf of a back-transformation whose result is wanted transposed."""
    return _ormqr(v, c, "N").T.copy()


@lp.kernel(flops=lambda v, c1, c2: 2 * v.shape[1] ** 2 * c1.shape[1])
def apply_q_pair(v: np.ndarray, c1: np.ndarray, c2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``Q`` of a tree node applied to the active rows of two tiles."""
    return _tpmqrt(v, c1, c2, "N")


@lp.kernel(flops=lambda a: 2 * a.shape[1] * a.shape[0] ** 2)
def householder_lq(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Leaf of an LQ tree along a tile row: ``(reflectors of aᵀ, L)``; L is m×min(m, n) lower triangular."""
    v, r = _geqrf(a.T)
    return v, r.T.copy()


@lp.kernel(flops=lambda l1, l2: 2 * l2.shape[1] * l1.shape[0] ** 2)
def householder_lq_pair(l1: np.ndarray, l2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Node of an LQ tree: ``(reflectors, L)`` of the triangles side by side ``[l1, l2]``."""
    v, r = _tpqrt(l1.T, l2.T)
    return v, r.T.copy()


@lp.kernel(flops=lambda v, c: 4 * c.shape[0] * c.shape[1] * v.shape[1])
def apply_lq_right(v: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``c Q`` for the leaf LQ factorization of the tile in the same tile column."""
    return _ormqr(v, c.T, "T").T.copy()


@lp.kernel(flops=lambda v, c1, c2: 2 * v.shape[1] ** 2 * c1.shape[0])
def apply_lq_right_pair(v: np.ndarray, c1: np.ndarray, c2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An LQ tree node applied from the right to the active columns of two tiles of one tile row."""
    t1, t2 = _tpmqrt(v, c1.T, c2.T, "T")
    return t1.T.copy(), t2.T.copy()


@lp.kernel(flops=lambda a, b: 2 * a.shape[0] * a.shape[1] * b.shape[0])
def matmul_nt(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ bᵀ``."""
    return a @ b.T


@lp.kernel(flops=lambda a, b: 0)
def vstack(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``[a; b]``: assembles a column panel from its tiles up a binary tree."""
    return np.vstack([a, b])


def _scaled_left_vectors(x: np.ndarray, rank: int) -> np.ndarray:
    u, s, _vt = np.linalg.svd(x, full_matrices=False)
    r = min(rank, s.size)
    return u[:, :r] * s[:r]


@lp.kernel(flops=lambda a, rank: 4 * a.shape[0] * a.shape[1] ** 2)
def truncated_left_svd(a: np.ndarray, rank: int) -> np.ndarray:
    """``U_r diag(s_r)``: the leading ``rank`` left singular vectors of a column block, scaled."""
    return _scaled_left_vectors(a, rank)


@lp.kernel(flops=lambda a, b, rank: 4 * a.shape[0] * (a.shape[1] + b.shape[1]) ** 2)
def merge_left_svd(a: np.ndarray, b: np.ndarray, rank: int) -> np.ndarray:
    """Merge of two scaled truncated SVDs: ``U_r diag(s_r)`` of ``[a, b]``."""
    return _scaled_left_vectors(np.hstack([a, b]), rank)


@lp.kernel(flops=lambda us, k: 0)
def singular_values_of(us: np.ndarray, k: int) -> np.ndarray:
    """The first ``k`` singular values (a 1×k row) from ``U diag(s)``: its column norms."""
    return np.linalg.norm(us[:, :k], axis=0)[None, :]


@lp.kernel(flops=lambda us, start, rows, k: 0)
def left_vectors_of(us: np.ndarray, start: int, rows: int, k: int) -> np.ndarray:
    """Rows ``start:start+rows`` of the first ``k`` left singular vectors, from ``U diag(s)``."""
    s = np.linalg.norm(us[:, :k], axis=0)
    return us[start:start + rows, :k] / np.where(s > 0, s, 1.0)


@lp.kernel(flops=lambda us, a, k: 2 * us.shape[0] * a.shape[1] * k)
def right_vectors_of(us: np.ndarray, a: np.ndarray, k: int) -> np.ndarray:
    """``Vᵀ`` of the columns ``a`` for the first ``k`` triplets: ``diag(s)⁻² (U diag(s))ᵀ a``."""
    s = np.linalg.norm(us[:, :k], axis=0)
    return (us[:, :k].T @ a) / np.where(s > 0, s * s, 1.0)[:, None]


@lp.kernel(flops=lambda a: a.size)
def column_sums(a: np.ndarray) -> np.ndarray:
    """Column sums of a tile (a 1×n row)."""
    return a.sum(axis=0, keepdims=True)


@lp.kernel(flops=lambda a, rows: a.size)
def column_means(a: np.ndarray, rows: int) -> np.ndarray:
    """Column sums divided by ``rows`` (the number of rows of the whole matrix)."""
    return a.sum(axis=0, keepdims=True) / rows


@lp.kernel(flops=lambda a, b, rows: a.size)
def add_and_divide(a: np.ndarray, b: np.ndarray, rows: int) -> np.ndarray:
    """``(a + b) / rows``: the root of a column-mean reduction."""
    return (a + b) / rows


@lp.kernel(flops=lambda a, mean: 3 * a.size)
def center_tile(a: np.ndarray, mean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(a - mean, column sums of squares of a - mean)`` for a tile and its columns' mean (1×n)."""
    c = a - mean
    return c, np.einsum("ij,ij->j", c, c)[None, :]




# --- checks of a matrix argument, run in the executors (npw.solve and npw.inv with assume_a="pos")

SYMMETRY_RTOL = 100
"""The symmetry tolerance of ``asymmetry``, in units of the dtype's machine epsilon."""

REPORT = ("bad", "tile_row", "tile_col", "row", "col", "a_row_col", "a_col_row", "tolerance")
"""The fields of an asymmetry report: a 1×8 float64 tile, ``bad`` = 0 when the tile pair is symmetric."""


@lp.kernel(flops=lambda a: 0)
def diagonal_of(a: np.ndarray) -> np.ndarray:
    """The diagonal of a diagonal tile as a 1×r tile.

    >>> diagonal_of(np.array([[1.0, 2.0], [3.0, 4.0]]))
    array([[1., 4.]])
    """
    return np.ascontiguousarray(np.diagonal(a))[None, :]


@lp.kernel(flops=lambda a, at, di, dj, i, j, bs: 6 * a.size)
def asymmetry(a: np.ndarray, at: np.ndarray, di: np.ndarray, dj: np.ndarray, i: int, j: int, bs: int) -> np.ndarray:
    """The worst violation of symmetry between tile (i, j), ``a``, and tile (j, i), ``at``.

    Entry (r, c) of ``a`` is symmetric enough when
    ``|a[r, c] - at[c, r]| <= rtol * (max(|a[r, c]|, |at[c, r]|) + sqrt(|d_r| |d_c|))``, with
    ``rtol = SYMMETRY_RTOL * eps`` of the tile's dtype and d_r, d_c the matrix's diagonal entries of
    that row and that column (``di``, ``dj``: 1×r tiles of ``diagonal_of``): elementwise as
    ``numpy.isclose``, with an absolute part on the scale that bounds the entries of a positive
    definite matrix (|a_rc| ≤ sqrt(a_rr a_cc)) and the rounding errors of computing one. NaNs and
    infs are not reported here (``check_finite`` reports them). Returns a report (``REPORT``), ``bs`` being
    the block size (for the matrix's row and column numbers).

    >>> a = np.array([[2.0, 1.0], [1.0, 2.0]]); d = diagonal_of(a)
    >>> asymmetry(a, a, d, d, 0, 0, 2)[0, 0]
    np.float64(0.0)
    >>> b = a.copy(); b[1, 0] = 1.5
    >>> asymmetry(b, b, d, d, 0, 0, 2)[0].tolist()
    [1.0, 0.0, 0.0, 1.0, 0.0, 1.5, 1.0, 7.771561172376097e-14]
    """
    b = np.asarray(at).T
    if a.shape != b.shape or di.shape[1] != a.shape[0] or dj.shape[1] != a.shape[1]:
        raise ValueError(f"asymmetry: tiles ({i}, {j}) {a.shape} and ({j}, {i}) {at.shape} with diagonals "
                         f"{di.shape} and {dj.shape} are not mirror images (square tiles of a square matrix needed)")
    out = np.zeros((1, len(REPORT)))
    rows, cols = np.nonzero(a != b)  # one pass; exactly symmetric (the usual case): nothing more to do
    if i == j:
        keep = rows > cols  # a diagonal tile: each pair once, from its lower triangle
        rows, cols = rows[keep], cols[keep]
    if not rows.size:
        return out
    rtol = SYMMETRY_RTOL * float(np.finfo(a.dtype).eps)
    x, y = a[rows, cols].astype(np.float64), b[rows, cols].astype(np.float64)
    scale = np.sqrt(np.abs(di[0, rows].astype(np.float64))) * np.sqrt(np.abs(dj[0, cols].astype(np.float64)))
    with np.errstate(over="ignore", invalid="ignore"):
        tol = rtol * (np.maximum(np.abs(x), np.abs(y)) + scale)
        excess = np.abs(x - y) - tol
        bad = excess > 0  # False for NaN (and for inf, whose tolerance is inf)
    if bad.any():
        k = int(np.argmax(np.where(bad, excess, -np.inf)))
        r, c = int(rows[k]), int(cols[k])
        out[0] = [1, i, j, i * bs + r, j * bs + c, x[k], y[k], tol[k]]
    return out


@lp.kernel(flops=lambda r1, r2: 0)
def first_asymmetry(r1: np.ndarray, r2: np.ndarray) -> np.ndarray:
    """Of two asymmetry reports, the one of the first bad tile pair in column-major order (tile column,
    then tile row), else a symmetric report."""
    bad = [r for r in (r1, r2) if r[0, 0]]
    if not bad:
        return np.array(r1, dtype=np.float64)
    return np.array(min(bad, key=lambda r: (r[0, 2], r[0, 1])), dtype=np.float64)


@lp.kernel(flops=lambda report: 0)
def require_symmetric(report: np.ndarray) -> np.ndarray:
    """Raise ``LinAlgError`` describing the asymmetric tile pair of a report; a 1×1 zero tile if there is none.

    >>> require_symmetric(np.zeros((1, 8)))
    array([[0.]])
    >>> require_symmetric(np.array([[1, 2, 0, 21, 3, 0.5, 0.25, 1e-14]]))
    Traceback (most recent call last):
    ...
    numpy.linalg.LinAlgError: the matrix is not symmetric: tile (2, 0) is not the transpose of tile (0, 2) \
(the first such tile pair, by tile column): entry [21, 3] is 0.5 but entry [3, 21] is 0.25 (tolerance 1e-14)
    """
    bad, i, j, r, c = (int(v) for v in report[0, :5])
    if not bad:
        return np.zeros((1, 1))
    a, b, tol = (float(v) for v in report[0, 5:])
    pair = f"diagonal tile ({i}, {i}) is not symmetric" if i == j else \
        f"tile ({i}, {j}) is not the transpose of tile ({j}, {i})"
    raise np.linalg.LinAlgError(
        f"the matrix is not symmetric: {pair} (the first such tile pair, by tile column): entry [{r}, {c}] is "
        f"{a:.17g} but entry [{c}, {r}] is {b:.17g} (tolerance {tol:.3g})")


BUILTIN.update({name: obj for name, obj in globals().items() if isinstance(obj, lp.Kernel)})
