"""Householder QR tile kernels, all in one encoding: LAPACK's compact WY form ``(V, T)``.

A tile's (or a tree node's) orthogonal factor is ``Q = I - V T Vᵀ``: ``V`` holds the Householder
vectors (unit lower trapezoidal: only the part below the diagonal is data, the unit diagonal and
the zeros above it are implied) and ``T`` the upper triangular block factors, ``nb`` rows at a time
(``QR_INNER_BLOCK``), exactly as ``xGEQRT`` and ``xTPQRT`` store them.  Q is never formed during a
factorization; it is applied with ``xGEMQRT`` / ``xTPMQRT`` (level-3 BLAS), or formed at the end by
applying it to the columns of an identity.  Why this encoding and not the others: docs/kernels.md.

Three shapes of V, by where the reflectors come from:

- a **leaf** (``geqrt``, ``gelqt``): the QR of one m×n tile; V is m×k, k = min(m, n);
- a **triangle on a trapezoid** (``ttqrt``, ``ttlqt``; the nodes of the tiled QR and of the band
  reduction): the QR of ``[r1; r2]``, r1 n×n upper triangular, r2 m×n (m ≤ n) upper trapezoidal;
  the top part of V is the identity and is not stored: V is m×n, r2's rows only;
- **two stacked trapezoids of any heights** (``stacked_qrt``; the nodes of TSQR, whose tiles may
  have fewer rows than columns): V is split by tile into its top rows (r1's) and bottom rows (r2's).
"""

from __future__ import annotations

import numpy as np

import lambdapack as lp

from ._lapack import _check_info, _lapack

QR_INNER_BLOCK = 32
"""Inner block size of the T factors (LAPACK's nb of geqrt/tpqrt)."""


def smallest(*xs):
    """``min(xs)`` for numbers, ``sympy.Min`` when any is a sympy expression (a flops formula evaluated on
    symbolic tiles by ``lambdapack.cost``, where the builtin's comparison has no truth value).

    >>> smallest(3, 2)
    2
    """
    if any(type(x).__module__.startswith("sympy") for x in xs):
        import sympy  # only the analysis gives symbolic shapes: executors never import sympy here

        return sympy.Min(*xs)
    return min(xs)


def _inner_block(k: int) -> int:
    return max(1, min(QR_INNER_BLOCK, k))


def _geqrt(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    k = min(a.shape)
    out, t, info = _lapack("geqrt", a)(_inner_block(k), a)
    _check_info("geqrt", info)
    return out[:, :k].copy(), t, np.triu(out[:k])


def _gemqrt(v: np.ndarray, t: np.ndarray, c: np.ndarray, trans: str) -> np.ndarray:
    if c.shape[0] != v.shape[0]:
        raise ValueError(f"reflectors of {v.shape[0]} rows cannot be applied to a tile of {c.shape[0]} rows")
    if c.shape[1] == 0:
        return np.array(c, copy=True)
    out, info = _lapack("gemqrt", v, t, c)(v, t, c, side="L", trans=trans)
    _check_info("gemqrt", info)
    return out


def _tpqrt(r1: np.ndarray, r2: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n, m = r1.shape[1], r2.shape[0]
    if r1.shape[0] != n or m > n or r2.shape[1] != n:
        raise ValueError(f"{what}: needs an n×n and an m×n (m ≤ n) triangle, got {r1.shape} and {r2.shape}")
    r, v, t, info = _lapack("tpqrt", r1, r2)(m, _inner_block(n), np.triu(r1), np.triu(r2))
    _check_info("tpqrt", info)
    return v, t, np.triu(r)


def _tpmqrt(v: np.ndarray, t: np.ndarray, c1: np.ndarray, c2: np.ndarray, trans: str) -> tuple[np.ndarray, np.ndarray]:
    m, n = v.shape
    if c1.shape[0] < n or c2.shape[0] < m or c1.shape[1] != c2.shape[1]:
        raise ValueError(f"reflectors of a node of {n} + {m} rows cannot be applied to tiles of shapes {c1.shape} "
                         f"and {c2.shape}")
    out1, out2 = c1.copy(), c2.copy()
    if c1.shape[1] == 0 or m == 0:
        return out1, out2
    a, b, info = _lapack("tpmqrt", v, t, c1, c2)(m, v, t, c1[:n], c2[:m], side="L", trans=trans)
    _check_info("tpmqrt", info)
    out1[:n], out2[:m] = a, b
    return out1, out2


def _pad_rows(c: np.ndarray, rows: int) -> np.ndarray:
    """``[c; 0]`` with ``rows`` rows in all."""
    if c.shape[0] == rows:
        return c
    return np.vstack([c, np.zeros((rows - c.shape[0], c.shape[1]), dtype=c.dtype)])


# ------------------------------------------------------------------ leaves and their application

@lp.kernel(flops=lambda a: 2 * a.shape[0] * a.shape[1] * smallest(*a.shape) - 2 * smallest(*a.shape) ** 3 / 3)
def geqrt(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Householder QR of one m×n tile: ``(V, T, R)``; V m×k (k = min(m, n)), R k×n upper trapezoidal."""
    return _geqrt(a)


@lp.kernel(flops=lambda v, t, c, trans: 4 * c.shape[0] * c.shape[1] * v.shape[1] - 2 * c.shape[1] * v.shape[1] ** 2)
def gemqrt(v: np.ndarray, t: np.ndarray, c: np.ndarray, trans: int) -> np.ndarray:
    """``Q @ c`` (trans=0) or ``Q.T @ c`` (trans=1), Q the m×m factor of a ``geqrt`` (c has m rows)."""
    return _gemqrt(v, t, c, "T" if trans else "N")


@lp.kernel(flops=lambda v, t, c: 4 * v.shape[0] * c.shape[1] * v.shape[1] - 2 * c.shape[1] * v.shape[1] ** 2)
def gemqrt_transposed(v: np.ndarray, t: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``(Q @ c)ᵀ``: the last step of a back-transformation whose result is wanted transposed."""
    return _gemqrt(v, t, c, "N").T.copy()


@lp.kernel(flops=lambda v, t, c: 4 * v.shape[0] * c.shape[1] * v.shape[1] - 2 * c.shape[1] * v.shape[1] ** 2)
def form_q(v: np.ndarray, t: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``Q @ [c; 0]``: a ``geqrt``'s Q (m×m) applied to c (k rows, k = V's columns) padded with zero rows.

    With ``c`` the identity this is the leaf's reduced Q; in TSQR's down-sweep c carries the tree above.
    """
    if c.shape[0] != v.shape[1]:
        raise ValueError(f"form_q: reflectors with {v.shape[1]} columns need a tile of {v.shape[1]} rows, "
                         f"got {c.shape[0]}")
    return _gemqrt(v, t, _pad_rows(c, v.shape[0]), "N")


@lp.kernel(flops=lambda a: 2 * a.shape[0] * a.shape[1] * smallest(*a.shape) - 2 * smallest(*a.shape) ** 3 / 3)
def gelqt(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LQ of one m×n tile as the QR of its transpose: ``(V, T, L)`` with ``aᵀ = Q Lᵀ``, L m×min(m, n)."""
    v, t, r = _geqrt(a.T)
    return v, t, r.T.copy()


@lp.kernel(flops=lambda v, t, c: 4 * c.shape[0] * c.shape[1] * v.shape[1] - 2 * c.shape[0] * v.shape[1] ** 2)
def gemlqt(v: np.ndarray, t: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``c @ Q`` for the Q of a ``gelqt`` (c has as many columns as the factored tile)."""
    return _gemqrt(v, t, c.T, "T").T.copy()


# ------------------------------------------------------------------ tree nodes: a triangle on a trapezoid

@lp.kernel(flops=lambda r1, r2: 2 * r1.shape[1] ** 2 * r2.shape[0])
def ttqrt(r1: np.ndarray, r2: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """QR of ``[r1; r2]``: r1 n×n upper triangular, r2 m×n upper trapezoidal (m ≤ n).

    Returns ``(V, T, R)``: the m×n lower part of the reflectors (the upper part is the identity,
    implicit), the block factors and the new n×n R.
    """
    return _tpqrt(r1, r2, "ttqrt")


@lp.kernel(flops=lambda v, t, c1, c2, trans: 4 * v.shape[0] * v.shape[1] * c1.shape[1])
def ttmqrt(v: np.ndarray, t: np.ndarray, c1: np.ndarray, c2: np.ndarray, trans: int) -> tuple[np.ndarray, np.ndarray]:
    """Apply the Q of a ``ttqrt`` (trans=0) or its transpose (trans=1) to a pair of tiles.

    The Q acts on the first n rows of ``c1`` and the first m rows of ``c2`` (n×n and m×n are the
    shapes the ``ttqrt`` factored, ``v`` is m×n); further rows are returned unchanged.  Returns the
    new ``(c1, c2)``.
    """
    return _tpmqrt(v, t, c1, c2, "T" if trans else "N")


@lp.kernel(flops=lambda l1, l2: 2 * l1.shape[0] ** 2 * l2.shape[1])
def ttlqt(l1: np.ndarray, l2: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LQ of ``[l1, l2]`` side by side (lower triangles): ``ttqrt`` of the transposes, ``(V, T, L)``."""
    v, t, r = _tpqrt(l1.T, l2.T, "ttlqt")
    return v, t, r.T.copy()


@lp.kernel(flops=lambda v, t, c1, c2: 4 * v.shape[0] * v.shape[1] * c1.shape[0])
def ttmlqt(v: np.ndarray, t: np.ndarray, c1: np.ndarray, c2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[c1, c2] @ Q`` for the Q of a ``ttlqt``, on the first n columns of c1 and m of c2 (``v`` m×n)."""
    a, b = _tpmqrt(v, t, c1.T, c2.T, "T")
    return a.T.copy(), b.T.copy()


# ------------------------------------------------------------------ tree nodes: two trapezoids of any heights

@lp.kernel(flops=lambda r1, r2: 2 * (r1.shape[0] + r2.shape[0]) * r1.shape[1] * smallest(r1.shape[0] + r2.shape[0],
                                                                                           r1.shape[1]))
def stacked_qrt(r1: np.ndarray, r2: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """QR of ``[r1; r2]`` for two R factors with n columns and any numbers of rows: ``(V1, V2, T, R)``.

    V = [V1; V2] are the reflectors of the stacked pair split by tile (V1 r1's rows, V2 r2's), T
    their block factors, R the min(rows, n)×n upper trapezoidal factor.  The node of TSQR, whose
    tiles may have fewer rows than columns (so that the top factor is not a square triangle).
    """
    if r1.shape[1] != r2.shape[1]:
        raise ValueError(f"stacked_qrt: the R factors have {r1.shape[1]} and {r2.shape[1]} columns")
    v, t, r = _geqrt(np.vstack([r1, r2]))
    k1 = r1.shape[0]
    return v[:k1].copy(), v[k1:].copy(), t, r


@lp.kernel(flops=lambda v1, v2, t, c: 4 * (v1.shape[0] + v2.shape[0]) * c.shape[1] * v1.shape[1])
def form_q_pair(v1: np.ndarray, v2: np.ndarray, t: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``Q @ [c; 0]`` for the Q of a ``stacked_qrt``, split as the pair was: ``(rows of r1, rows of r2)``.

    c has as many rows as the node's R (V's columns): TSQR's down-sweep from a node to its two children.
    """
    v = np.vstack([v1, v2])
    if c.shape[0] != v.shape[1]:
        raise ValueError(f"form_q_pair: reflectors with {v.shape[1]} columns need a tile of {v.shape[1]} rows, "
                         f"got {c.shape[0]}")
    out = _gemqrt(v, t, _pad_rows(c, v.shape[0]), "N")
    k1 = v1.shape[0]
    return out[:k1].copy(), out[k1:].copy()


@lp.kernel(flops=lambda r: 0)
def identity(r: np.ndarray) -> np.ndarray:
    """A square identity with as many rows as ``r`` (the root of a Q reconstruction)."""
    return np.eye(r.shape[0], dtype=r.dtype)
