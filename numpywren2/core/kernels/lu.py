"""LU tile kernels: tournament pivoting (TSLU) and the row swaps and updates of a tiled LU.

How a panel's row permutation is represented across tiles
--------------------------------------------------------
Step k of the factorization factors tile column k (the *panel*, w columns, tile rows k..M-1 of
the trailing matrix).  A tournament picks its p pivot rows (p = w but in a wide matrix's last step):
each tile of the panel offers the rows partial pivoting (LAPACK getrf) picks in it, pairs of offers
are merged by getrf on the stacked rows, and the root's getrf gives both the p winners, in pivot
order, and their factors L_kk, U_kk.

A **candidate tile** is c×(w+1): c rows of the panel (their current values) and, in the last
column, each row's global row number (exact in float32 up to 2**24 rows).

The **factor tile** D_k of step k is (p+1)×w, p = min(w, rows of the panel) pivots: rows 0..p-1
hold L_kk\\U_kk packed as LAPACK does (L unit lower p×p, below the diagonal; U p×w on and above),
row p the global numbers of the winners g_0..g_{p-1} in pivot order (then -1 where p < w).  It
defines the permutation π_k of step k (new row x = old row π_k(x)) on the rows of tile rows ≥ k;
T = t0..t0+p-1 are the first p rows of tile row k:

- π_k is LAPACK's: for r = 0..p-1 in order, row t0 + r is interchanged with the row where winner
  g_r is now (``step_swaps``, getrf's ipiv), so the first p rows of tile row k receive the winners in
  pivot order, the winners' old places after T receive rows of T (the rows of T that are not
  winners, and no other), and every other row stays.

So a tile below tile row k changes only where it held a winner (it receives a row of the old tile
row k: ``swap_rows``), and the first p rows of the new tile row k gather rows from any tile at or
below it (``pick_rows`` on each, summed up a tree: the picked rows are disjoint and the rest are
exact zeros).

For a square matrix on square tiles every tile row k has p = w rows.  A rectangular M×N matrix on
square tiles has one step where they differ, its last, K - 1 (K = min of the grid's dimensions):

- tall, the last tile column narrower than tile row K - 1 (h > w = p): the rows of tile row K - 1
  after the first p are permuted as the tiles below are (a winner's place receives a row of T), and
  they are rows of L (``lu_last_diagonal``, ``add_tail``, ``settled_rows``);
- wide, the last tile row lower than its tile column (h = p < w): the step is one tile, getrf of an
  h×w tile; L_kk is h×h and U's tiles of that row are L_kk⁻¹ times the permuted rows
  (``solve_settled_rows``).

An exactly zero pivot either raises (``zero_pivots`` = 0: ``LinAlgError`` naming the column) or is
kept as getrf keeps it (1: U has a zero on its diagonal, and the column of L below it is the
residual, not divided, as getrf leaves it).
"""

from __future__ import annotations

import numpy as np

import lambdapack as lp

from ._lapack import _check_info, _lapack, c_order, gemm_c, trsm_c


def _getrf(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """``(lu, order, info)``: LAPACK getrf of ``values`` (h×w), the rows in pivot order (a permutation of
    range(h)) and getrf's info (> 0: U[info - 1, info - 1] is exactly zero)."""
    lu, ipiv, info = _lapack("getrf", values)(values)
    _check_info("getrf", info)
    order = np.arange(values.shape[0])
    for r, p in enumerate(ipiv[:min(values.shape)]):
        order[[r, p]] = order[[p, r]]
    return lu, order, int(info)


def _select(candidates: np.ndarray) -> np.ndarray:
    """The rows of a stack of candidate rows that partial pivoting picks, in pivot order (at most w)."""
    w = candidates.shape[1] - 1
    _, order, _ = _getrf(np.array(candidates[:, :w], order="F"))
    return np.ascontiguousarray(candidates[order[:min(w, candidates.shape[0])]])


@lp.kernel(flops=lambda a, row0: a.shape[0] * a.shape[1] ** 2)
def tslu_leaf(a: np.ndarray, row0: int) -> np.ndarray:
    """The candidate tile of one panel tile (rows ``row0``..): the rows getrf pivots on, in pivot order.

    >>> tslu_leaf(np.array([[1.0, 2.0], [3.0, 1.0], [0.0, 5.0]]), 10)
    array([[ 3.,  1., 11.],
           [ 0.,  5., 12.]])
    """
    rows = np.arange(row0, row0 + a.shape[0], dtype=a.dtype)[:, None]
    return _select(np.hstack([a, rows]))


@lp.kernel(flops=lambda c1, c2: (c1.shape[0] + c2.shape[0]) * (c1.shape[1] - 1) ** 2)
def tslu_merge(c1: np.ndarray, c2: np.ndarray) -> np.ndarray:
    """One match of the tournament: the candidates partial pivoting picks from two stacked candidate tiles."""
    return _select(np.vstack([c1, c2]))


def _factor_tile(candidates: np.ndarray, col0: int, zero_pivots: int) -> np.ndarray:
    w = candidates.shape[1] - 1
    p = min(w, candidates.shape[0])
    lu, order, info = _getrf(np.array(candidates[:, :w], order="F"))
    if info > 0 and not zero_pivots:
        c = col0 + info - 1
        raise np.linalg.LinAlgError(
            f"the matrix is singular: the pivot of column {c} is exactly zero (column {c} is a linear "
            f"combination of the columns before it, in floating point)")
    out = np.full((p + 1, w), -1, dtype=candidates.dtype)
    out[:p] = lu[:p]
    out[p, :p] = candidates[order[:p], w]
    return out


@lp.kernel(flops=lambda c1, c2, col0, zero_pivots: (c1.shape[0] + c2.shape[0]) * (c1.shape[1] - 1) ** 2)
def tslu_root(c1: np.ndarray, c2: np.ndarray, col0: int, zero_pivots: int) -> np.ndarray:
    """The final match: the factor tile of the panel whose first column is ``col0`` (module docstring).

    A zero pivot raises ``LinAlgError`` naming the column of the matrix unless ``zero_pivots`` is 1:
    the winners span the panel's rows (every row offered is a combination of the rows picked), so a
    zero pivot here is one of the whole panel.
    """
    return _factor_tile(np.vstack([c1, c2]), col0, zero_pivots)


@lp.kernel(flops=lambda a, row0, col0, zero_pivots: 2 * min(a.shape) ** 2 * max(a.shape) / 3)
def tslu_tile(a: np.ndarray, row0: int, col0: int, zero_pivots: int) -> np.ndarray:
    """The factor tile of a panel of one tile (the last step): getrf of the tile (h×w: min(h, w) pivots).

    >>> tslu_tile(np.array([[1.0, 2.0], [4.0, 2.0]]), 6, 6, 0)
    array([[4.  , 2.  ],
           [0.25, 1.5 ],
           [7.  , 6.  ]])
    >>> tslu_tile(np.array([[1.0, 2.0, 3.0]]), 4, 4, 0)  # one row of a wide matrix: one pivot
    array([[ 1.,  2.,  3.],
           [ 4., -1., -1.]])
    """
    rows = np.arange(row0, row0 + a.shape[0], dtype=a.dtype)[:, None]
    return _factor_tile(np.hstack([a, rows]), col0, zero_pivots)


def _pivots(d: np.ndarray) -> int:
    """p: the number of pivots of a factor tile."""
    return d.shape[0] - 1


def _winners(d: np.ndarray) -> np.ndarray:
    return d[-1, :_pivots(d)].astype(np.int64)


def _unit_lower(d: np.ndarray) -> np.ndarray:
    p = _pivots(d)
    return np.array(d[:p, :p], order="C")


def _upper(d: np.ndarray) -> np.ndarray:
    """U_kk (p×p, the panel's first p columns) for a triangular solve: an exactly zero pivot (kept by
    ``zero_pivots``) is taken as 1, so that the column of L below it is getrf's undivided residual."""
    p = _pivots(d)
    u = np.array(d[:p, :p], order="C")
    diagonal = np.diagonal(u).copy()
    if not diagonal.all():
        u[np.diag_indices(p)] = np.where(diagonal == 0, 1, diagonal)
    return u


def step_swaps(winners, top0: int) -> list[tuple[int, int]]:
    """The row interchanges of one step, in order, as LAPACK's ipiv: for r = 0..p-1, position top0 + r is
    interchanged with the position ``b_r`` ≥ top0 + r where winner g_r is after the earlier interchanges
    (global positions; ``winners``: positions at the start of the step).

    >>> step_swaps([3, 0], 0)  # row 3 up to position 0; row 0, now at position 3, up to position 1
    [(0, 3), (1, 3)]
    """
    where: dict[int, int] = {}  # a row (by its position at the start of the step) -> where it is now
    at: dict[int, int] = {}     # a position -> the row now there
    swaps = []
    for r, g in enumerate(int(w) for w in winners):
        a, b = top0 + r, where.get(g, g)
        if b < a or at.get(b, b) != g:
            raise ValueError(f"factor tile of rows {top0}..: winners {list(winners)} are not distinct rows at or "
                             "below the panel")
        ra = at.get(a, a)
        at[a], at[b] = g, ra
        where[g], where[ra] = a, b
        swaps.append((a, b))
    return swaps


def _moves(d: np.ndarray, top0: int) -> tuple[np.ndarray, np.ndarray]:
    """``(targets, sources)``: the places at or after position top0 + p whose rows step k changes
    (targets, sorted) and the rows of the first p rows of tile row k they receive (sources), as global
    row numbers."""
    p = _pivots(d)
    at: dict[int, int] = {}
    for a, b in step_swaps(_winners(d), top0):
        at[a], at[b] = at.get(b, b), at.get(a, a)
    moved = sorted(x for x, row in at.items() if x >= top0 + p and row != x)
    return np.array(moved, dtype=np.int64), np.array([at[x] for x in moved], dtype=np.int64)


def _swapped(x: np.ndarray, xk: np.ndarray, d: np.ndarray, top0: int, row0: int) -> np.ndarray:
    """Tile ``x`` (rows ``row0``.., below tile row k whose tile in this column is ``xk``) after π_k."""
    targets, sources = _moves(d, top0)
    here = (targets >= row0) & (targets < row0 + x.shape[0])
    out = np.array(x, order="C", copy=True)
    out[targets[here] - row0] = xk[sources[here] - top0]
    return out


@lp.kernel(flops=lambda x, xk, d, top0, row0: 0)
def swap_rows(x: np.ndarray, xk: np.ndarray, d: np.ndarray, top0: int, row0: int) -> np.ndarray:
    """A tile below tile row k (rows ``row0``..) after the row permutation of step k: where it held a
    winner it receives a row of tile row k (``xk``, rows ``top0``..), as the module docstring says.

    >>> d = np.array([[9.0, 9.0], [9.0, 9.0], [3.0, 0.0]])  # winners: rows 3 and 0
    >>> swap_rows(np.array([[30.0], [40.0]]), np.array([[0.0], [10.0]]), d, 0, 2)
    array([[30.],
           [10.]])
    """
    return _swapped(x, xk, d, top0, row0)


@lp.kernel(flops=lambda x, d, top0, row0: 0)
def pick_rows(x: np.ndarray, d: np.ndarray, top0: int, row0: int) -> np.ndarray:
    """Tile row k's share from one tile (rows ``row0``..) of its column: row r holds winner g_r if tile
    ``x`` holds it, else zeros (the shares of a column's tiles add up to its new tile row k).

    >>> d = np.array([[9.0, 9.0], [9.0, 9.0], [3.0, 0.0]])
    >>> pick_rows(np.array([[30.0], [40.0]]), d, 0, 2)
    array([[40.],
           [ 0.]])
    """
    winners = _winners(d)
    out = np.zeros((winners.size, x.shape[1]), dtype=x.dtype)
    here = (winners >= row0) & (winners < row0 + x.shape[0])
    out[here] = x[winners[here] - row0]
    return out


@lp.kernel(flops=lambda a, b, d: a.shape[0] ** 2 * a.shape[1])
def add_solve_unit_lower(a: np.ndarray, b: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``L_kk⁻¹ (a + b)``: the last sum of a gathered tile row k, solved into a tile of U (L_kk unit lower,
    from the factor tile ``d``)."""
    return _solve_unit_lower(d, a + b)


def _solve_unit_lower(d: np.ndarray, y: np.ndarray) -> np.ndarray:
    return trsm_c(1.0, _unit_lower(d), c_order(y), side=0, lower=1, diag=1)


def _times_upper_inverse(d: np.ndarray, y: np.ndarray) -> np.ndarray:
    return trsm_c(1.0, _upper(d), c_order(y), side=1, lower=0)


@lp.kernel(flops=lambda x, xk, d, top0, row0: x.shape[0] * x.shape[1] ** 2)
def lu_panel(x: np.ndarray, xk: np.ndarray, d: np.ndarray, top0: int, row0: int) -> np.ndarray:
    """A tile of L below the diagonal: the panel tile after the row permutation, times U_kk⁻¹."""
    return _times_upper_inverse(d, _swapped(x, xk, d, top0, row0))


def _settled(x: np.ndarray, d: np.ndarray, top0: int) -> np.ndarray:
    """Tile row k (``x``, rows ``top0``..) after π_k when every winner is in it (a one-tile step)."""
    y = _swapped(x, x, d, top0, top0)
    y[:_pivots(d)] = x[_winners(d) - top0]
    return y


@lp.kernel(flops=lambda x, d, top0: 0)
def settled_rows(x: np.ndarray, d: np.ndarray, top0: int) -> np.ndarray:
    """A tile of tile row k left of the panel when the step is one tile (its last): the tile after π_k
    (all of L's rows; more rows than pivots in a tall matrix's last step).

    >>> d = np.array([[9.0], [2.0]])  # one pivot: row 2 wins
    >>> settled_rows(np.array([[0.0], [10.0], [20.0]]), d, 0)
    array([[20.],
           [10.],
           [ 0.]])
    """
    return _settled(x, d, top0)


@lp.kernel(flops=lambda x, d, top0: x.shape[0] ** 2 * x.shape[1])
def solve_settled_rows(x: np.ndarray, d: np.ndarray, top0: int) -> np.ndarray:
    """A tile of U right of the panel when the step is one tile (a wide matrix's last tile row):
    ``L_kk⁻¹`` times the tile after π_k."""
    return _solve_unit_lower(d, _settled(x, d, top0))


@lp.kernel(flops=lambda a, b, xk, d, top0: 0)
def add_tail(a: np.ndarray, b: np.ndarray, xk: np.ndarray, d: np.ndarray, top0: int) -> np.ndarray:
    """A tile of L in tile row k of the last step of a tall matrix: its first p rows gathered (``a + b``),
    the rest of tile row k (``xk``) permuted as the tiles below are."""
    return np.vstack([a + b, _swapped(xk, xk, d, top0, top0)[_pivots(d):]])


@lp.kernel(flops=lambda d, xk, top0: xk.shape[0] * xk.shape[1] ** 2)
def lu_last_diagonal(d: np.ndarray, xk: np.ndarray, top0: int) -> np.ndarray:
    """The diagonal tile (k, k) of the packed LU in the last tile column: L_kk\\U_kk, then (a tall
    matrix's tile row k having more rows than pivots) the rest of the tile as rows of L.

    >>> d = np.array([[4.0], [1.0]])  # one pivot, 4.0: row 1 of the tile wins
    >>> lu_last_diagonal(d, np.array([[2.0], [4.0], [1.0]]), 0)
    array([[4.  ],
           [0.5 ],
           [0.25]])
    """
    p = _pivots(d)
    if xk.shape[0] == p:
        return np.ascontiguousarray(d[:p])
    rest = _times_upper_inverse(d, _swapped(xk, xk, d, top0, top0)[p:])
    return np.vstack([d[:p], rest])


@lp.kernel(flops=lambda x, xk, d, lik, ukj, top0, row0: 2 * x.shape[0] * x.shape[1] * lik.shape[1])
def lu_update(x: np.ndarray, xk: np.ndarray, d: np.ndarray, lik: np.ndarray, ukj: np.ndarray, top0: int,
              row0: int) -> np.ndarray:
    """A trailing tile after step k: the row permutation of step k, then ``- L_ik U_kj``."""
    y = _swapped(x, xk, d, top0, row0)
    return gemm_c(-1.0, lik, ukj, 1.0, y)  # y: _swapped's own C-ordered copy


@lp.kernel(flops=lambda d: 0)
def lu_diagonal(d: np.ndarray) -> np.ndarray:
    """The diagonal tile of the packed LU (L_kk\\U_kk) from a factor tile."""
    return np.ascontiguousarray(d[:-1])


@lp.kernel(flops=lambda d: 0)
def lu_pivots(d: np.ndarray) -> np.ndarray:
    """A 2×p float64 tile: the winners' global row numbers (row 0) and U_kk's diagonal (row 1).

    >>> lu_pivots(np.array([[4.0, 2.0], [0.25, 1.5], [7.0, 6.0]]))
    array([[7. , 6. ],
           [4. , 1.5]])
    """
    return np.vstack([_winners(d), np.diagonal(d[:-1])]).astype(np.float64)


@lp.kernel(flops=lambda x, p, row0: 0)
def permuted_rows(x: np.ndarray, p: np.ndarray, row0: int) -> np.ndarray:
    """One tile's share of a tile of ``B[p]``: row r is ``B[p[r]]`` when tile ``x`` (rows ``row0``.. of
    ``B``) holds that row, else zeros (``p``: a 1×h float64 tile of source rows).

    >>> permuted_rows(np.array([[30.0], [40.0]]), np.array([[3.0, 0.0, 2.0]]), 2)
    array([[40.],
           [ 0.],
           [30.]])
    """
    src = p[0].astype(np.int64)
    out = np.zeros((src.size, x.shape[1]), dtype=x.dtype)
    here = (src >= row0) & (src < row0 + x.shape[0])
    out[here] = x[src[here] - row0]
    return out


@lp.kernel(flops=lambda a: 0)
def unit_lower_of(a: np.ndarray) -> np.ndarray:
    """L's diagonal tile from a diagonal tile of a packed LU: the unit lower triangle of its first
    min(h, w) columns (h×w: a rectangular matrix's last diagonal tile may be either way).

    >>> unit_lower_of(np.array([[4.0, 2.0, 7.0], [0.5, 3.0, 1.0]]))
    array([[1. , 0. ],
           [0.5, 1. ]])
    """
    out = np.tril(a[:, :min(a.shape)], -1)
    np.fill_diagonal(out, 1)
    return out


@lp.kernel(flops=lambda a: 0)
def upper_of(a: np.ndarray) -> np.ndarray:
    """U's diagonal tile from a diagonal tile of a packed LU: the upper triangle of its first min(h, w)
    rows."""
    return np.triu(a[:min(a.shape)])


@lp.kernel(flops=lambda a, rows, cols: 0)
def zeros_like(a: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """A zero tile of ``a``'s dtype and shape, cut to at most ``rows`` × ``cols`` (L's tiles above its
    diagonal, U's below; the last tile column of L or tile row of U may be narrower than LU's)."""
    return np.zeros((min(a.shape[0], rows), min(a.shape[1], cols)), dtype=a.dtype)
