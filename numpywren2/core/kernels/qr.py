"""Householder QR tile kernels: TSQR (explicit Q), tiled QR (compact WY V, T), the SVD's packed QR/LQ."""

from __future__ import annotations

import numpy as np

import lambdapack as lp

from ._lapack import _check_info, _lapack


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


QR_INNER_BLOCK = 32


"""Inner block size of the T factors (LAPACK's nb of geqrt/tpqrt)."""


def _inner_block(k: int) -> int:
    return max(1, min(QR_INNER_BLOCK, k))


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
