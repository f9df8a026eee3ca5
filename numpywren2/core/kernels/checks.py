"""Checks of a matrix argument run in the executors: symmetry (npw.solve and npw.inv with assume_a='pos')."""

from __future__ import annotations

import numpy as np

import lambdapack as lp

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
