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


@lp.kernel(flops=lambda a: a.shape[0] ** 3 / 3)
def chol(a: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of an SPD tile (only its lower triangle is read)."""
    potrf = _lapack("potrf", a)
    c, info = potrf(a, lower=1, clean=1, overwrite_a=0)
    if info > 0:
        raise np.linalg.LinAlgError(
            f"tile is not positive definite (leading minor of order {info} is not positive)")
    if info < 0:
        raise ValueError(f"potrf: illegal value in argument {-info}")
    return c


@lp.kernel(flops=lambda l_kk, a: a.shape[0] * a.shape[1] ** 2)
def trsm(l_kk: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``a @ inv(l_kk).T``: the panel tile of a Cholesky factor."""
    f = _blas("trsm", l_kk, a)
    return f(1.0, l_kk, a, side=1, lower=1, trans_a=1)


@lp.kernel(flops=lambda c, a: c.shape[0] * c.shape[0] * a.shape[1])
def syrk(c: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``c - a @ a.T`` for a diagonal tile (the full symmetric tile is returned)."""
    f = _blas("syrk", c, a)
    lower = f(-1.0, a, beta=1.0, c=c, lower=1)
    return np.tril(lower) + np.tril(lower, -1).T


@lp.kernel(flops=lambda c, a, b: 2 * c.shape[0] * c.shape[1] * a.shape[1])
def gemm_nt(c: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``c - a @ b.T``: the trailing update of a Cholesky factorization."""
    f = _blas("gemm", c, a, b)
    return f(-1.0, a, b, beta=1.0, c=c, trans_b=1)


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
def normal_tile(i: int, j: int, rows: int, cols: int, seed: int) -> np.ndarray:
    """Tile (i, j) of a standard normal matrix; a function of (seed, i, j) only."""
    return np.random.default_rng([seed, i, j]).standard_normal((rows, cols))


@lp.kernel
def spd_tile(i: int, j: int, rows: int, cols: int, n: int, seed: int) -> np.ndarray:
    """Tile (i, j) of a symmetric, strictly diagonally dominant (hence SPD) n×n matrix.

    Entries are uniform in [-1, 1), drawn from (seed, min(i, j), max(i, j)) so that tile
    (j, i) is the transpose of tile (i, j); n is added on the diagonal.
    """
    lo, hi = min(i, j), max(i, j)
    shape = (rows, cols) if i >= j else (cols, rows)
    t = np.random.default_rng([seed, hi, lo, 1]).uniform(-1.0, 1.0, shape)
    if i == j:
        t = np.tril(t) + np.tril(t, -1).T + n * np.eye(rows)
    return t if i >= j else t.T.copy()


BUILTIN = {name: obj for name, obj in globals().items() if isinstance(obj, lp.Kernel)}


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


@lp.kernel(flops=lambda a: 0)
def transposed_tile(a: np.ndarray) -> np.ndarray:
    """``aᵀ``."""
    return a.T.copy()


@lp.kernel(flops=lambda a, b: 2 * a.shape[0] * a.shape[1] * b.shape[1])
def transposed_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``aᵀ @ b``."""
    return a.T @ b


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


BUILTIN.update({name: obj for name, obj in globals().items() if isinstance(obj, lp.Kernel)})
