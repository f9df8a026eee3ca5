"""Singular values of an upper band matrix: the second stage of the band SVD (``npw.svd``, method "band").

``band_reduction`` leaves B = Qᵀ A P upper banded with bandwidth b, the tile size (entries B[i, j] with
0 ≤ j − i ≤ b).  Its singular values come in three steps, all orthogonal (so backward stable):

1. **bandwidth halving** (``reduce_bandwidth``), level-3 BLAS: while b > ``SMALL_BAND``, B becomes upper
   banded with bandwidth d = ⌈b/2⌉ by bulge chasing with blocks.  Sweep r (rows r..r+d−1): an LQ of the
   entries of those rows beyond the new band (columns r+d..r+d+b−1, compact WY ``geqrt`` on the
   transpose) leaves a lower triangle; applied from the right to the rows below it fills the b×b block
   under the diagonal (the bulge), which a QR removes; that QR, applied from the left, fills the block to
   the right beyond the band, which an LQ removes, whose application fills the next diagonal block: the
   bulge moves down b rows per QR/LQ pair until it leaves the matrix.  Each pass costs about 11·n²·b
   flops in b×b blocks; all passes together about 22·n²·b for the first b.
2. **band → bidiagonal** with LAPACK ``dgbbrd`` (Givens rotations, O(n²·b) flops but level-1 and slow
   beyond narrow bands, hence step 1), called through scipy's ``cython_lapack`` function table.
3. **bidiagonal → singular values** with LAPACK ``dbdsqr`` (no vectors: the dqds algorithm, high relative
   accuracy for the bidiagonal).

The whole computation is in float64 (a float32 band is converted).  The dense working copy is n×n.
The kernels at the end gather the band's tiles into LAPACK band storage and run the three steps as one
task (``programs.band_singular_values``).
"""

from __future__ import annotations

import ctypes

import numpy as np
import scipy.linalg
from scipy.linalg import cython_lapack, eig_banded

import lambdapack as lp

from .qr import _gemqrt, _geqrt

SMALL_BAND = 32
"""Bandwidth below which ``dgbbrd`` takes over from the blocked halving passes (it is fast on narrow bands:
measured on this machine n = 2048, one thread: 0.44 s at bandwidth 32, 3.8 s at 128, 43 s at 512)."""


def _capsule_pointer(capsule) -> int:
    api = ctypes.pythonapi
    api.PyCapsule_GetName.restype = ctypes.c_char_p
    api.PyCapsule_GetName.argtypes = [ctypes.py_object]
    api.PyCapsule_GetPointer.restype = ctypes.c_void_p
    api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    return api.PyCapsule_GetPointer(capsule, api.PyCapsule_GetName(capsule))


_ROUTINES: dict[str, ctypes._CFuncPtr] = {}


def _routine(name: str, nargs: int):
    """A LAPACK routine of scipy's ``cython_lapack`` as a ctypes function of ``nargs`` pointers (Fortran
    convention: every argument by reference)."""
    if name not in _ROUTINES:
        ptr = _capsule_pointer(cython_lapack.__pyx_capi__[name])
        _ROUTINES[name] = ctypes.CFUNCTYPE(None, *([ctypes.c_void_p] * nargs))(ptr)
    return _ROUTINES[name]


def _int(x: int):
    return ctypes.byref(ctypes.c_int(int(x)))


def _ptr(a: np.ndarray):
    return a.ctypes.data_as(ctypes.c_void_p)


def upper_band_storage(a: np.ndarray, ku: int) -> np.ndarray:
    """LAPACK's band storage of an upper band matrix: ``ab[ku + i − j, j] = a[i, j]`` for 0 ≤ j − i ≤ ku,
    Fortran order (as ``dgbbrd`` takes it with kl = 0)."""
    n = a.shape[0]
    ab = np.zeros((ku + 1, n), dtype=np.float64, order="F")
    for off in range(min(ku, n - 1) + 1):
        ab[ku - off, off:] = np.diagonal(a, off)
    return ab


def bidiagonal_of_band(ab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The upper bidiagonal (d, e) orthogonally equivalent to the upper band matrix in band storage ``ab``
    ((ku+1)×n, ``upper_band_storage``): LAPACK ``dgbbrd`` without vectors."""
    ab = np.asfortranarray(ab, dtype=np.float64).copy(order="F")
    ku, n = ab.shape[0] - 1, ab.shape[1]
    d, e = np.zeros(n), np.zeros(max(n - 1, 1))
    work, unused, info = np.zeros(2 * n), np.zeros(1), ctypes.c_int(0)
    _routine("dgbbrd", 18)(ctypes.c_char_p(b"N"), _int(n), _int(n), _int(0), _int(0), _int(ku), _ptr(ab),
                           _int(ku + 1), _ptr(d), _ptr(e), _ptr(unused), _int(1), _ptr(unused), _int(1), _ptr(unused),
                           _int(1), _ptr(work), ctypes.byref(info))
    if info.value != 0:
        raise ValueError(f"dgbbrd: LAPACK reported illegal argument {-info.value}")
    return d, e[:n - 1]


def bidiagonal_singular_values(d: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Singular values of the upper bidiagonal with diagonal d and superdiagonal e, decreasing: LAPACK
    ``dbdsqr`` without vectors (dqds)."""
    n = d.size
    d = np.array(d, dtype=np.float64)
    e = np.concatenate([np.asarray(e, dtype=np.float64), [0.0]])
    work, unused, info = np.zeros(4 * n), np.zeros(1), ctypes.c_int(0)
    _routine("dbdsqr", 15)(ctypes.c_char_p(b"U"), _int(n), _int(0), _int(0), _int(0), _ptr(d), _ptr(e), _ptr(unused),
                           _int(1), _ptr(unused), _int(1), _ptr(unused), _int(1), _ptr(work), ctypes.byref(info))
    if info.value < 0:
        raise ValueError(f"dbdsqr: LAPACK reported illegal argument {-info.value}")
    if info.value > 0:
        raise np.linalg.LinAlgError(f"dbdsqr: the bidiagonal SVD did not converge ({info.value} superdiagonal "
                                    "entries did not reach zero)")
    return np.sort(np.abs(d))[::-1]


def _accumulate(q: np.ndarray | None, idx: slice, v: np.ndarray, t: np.ndarray) -> None:
    """``q[:, idx] = q[:, idx] Q`` for the Q = I − V T Vᵀ of a ``geqrt`` (nothing without ``q``)."""
    if q is not None:
        q[:, idx] = _gemqrt(v, t, np.ascontiguousarray(q[:, idx].T), "T").T


def _right_lq(a: np.ndarray, rows: slice, cols: slice, below: slice, acc: np.ndarray | None = None) -> None:
    """Make ``a[rows, cols]`` lower trapezoidal by an orthogonal Q on those columns from the right (the QR of
    its transpose), and apply the same Q to ``a[below, cols]`` (and to ``acc[:, cols]``, with ``acc``)."""
    x = a[rows, cols]
    v, t, r = _geqrt(np.ascontiguousarray(x.T))      # xᵀ = Q r, so x Q = rᵀ
    k = r.shape[0]
    x[...] = 0.0
    x[:, :k] = r.T
    blk = a[below, cols]
    if blk.size:
        blk[...] = _gemqrt(v, t, np.ascontiguousarray(blk.T), "T").T
    _accumulate(acc, cols, v, t)


def _left_qr(a: np.ndarray, rows: slice, cols: slice, right: slice, acc: np.ndarray | None = None) -> None:
    """Make ``a[rows, cols]`` upper trapezoidal by an orthogonal Qᵀ on those rows from the left, and apply
    the same Qᵀ to ``a[rows, right]`` (with ``acc``: ``acc[:, rows] ← acc[:, rows] Q``)."""
    x = a[rows, cols]
    v, t, r = _geqrt(np.ascontiguousarray(x))
    k = r.shape[0]
    x[...] = 0.0
    x[:k] = r
    blk = a[rows, right]
    if blk.size:
        blk[...] = _gemqrt(v, t, np.ascontiguousarray(blk), "T")
    _accumulate(acc, rows, v, t)


def reduce_bandwidth(a: np.ndarray, b: int, d: int, left: np.ndarray | None = None,
                     right: np.ndarray | None = None) -> None:
    """In place: the n×n upper band matrix ``a`` of bandwidth ``b`` becomes upper banded with bandwidth
    ``d`` < b, by orthogonal transformations from both sides (singular values kept); module docstring.

    With ``left`` and ``right`` (n×n, float64) the transformations a ← Qᵀ a P are accumulated as
    left ← left Q and right ← right P, so that left a rightᵀ is unchanged."""
    n = a.shape[0]
    for r in range(0, n - 1, d):
        r1 = min(r + d, n)
        q = min(r1 + b, n)            # rows r..r1-1 reach column r1 - 1 + b at most
        if q <= r1:
            break
        _right_lq(a, slice(r, r1), slice(r1, q), slice(r1, q), right)
        p = r1
        while True:                   # the bulge: a[p:q, p:q] is dense below its diagonal
            e = min(q + b, n)         # rows p..q-1 reach column q - 1 + b at most
            _left_qr(a, slice(p, q), slice(p, q), slice(q, e), left)
            if e <= q:
                break
            _right_lq(a, slice(p, q), slice(q, e), slice(q, e), right)
            p, q = q, e


def band_singular_values(a: np.ndarray, b: int) -> np.ndarray:
    """All singular values, decreasing, of the n×n upper band matrix ``a`` (bandwidth ``b``; dense array,
    overwritten): halving passes down to ``SMALL_BAND``, ``dgbbrd``, ``dbdsqr`` (module docstring)."""
    n = a.shape[0]
    b = max(0, min(b, n - 1))
    while b > SMALL_BAND:
        d = (b + 1) // 2
        reduce_bandwidth(a, b, d)
        b = d
    d, e = bidiagonal_of_band(upper_band_storage(a, max(b, 1)))
    return bidiagonal_singular_values(d, e)


def dense_of_upper_band_storage(ab: np.ndarray) -> np.ndarray:
    """The n×n float64 matrix of the upper band storage ``ab`` ((ku+1)×n, ``ab[ku + i − j, j] = a[i, j]``)."""
    ku, n = ab.shape[0] - 1, ab.shape[1]
    a = np.zeros((n, n))
    for off in range(min(ku, n - 1) + 1):
        i = np.arange(n - off)
        a[i, i + off] = ab[ku - off, off:]
    return a


# ------------------------------------------------------------------ kernels: the band gathered, its singular values

@lp.kernel(flops=lambda r, bs: 0)
def upper_band_columns(r: np.ndarray, bs: int) -> np.ndarray:
    """Band storage ((bs+1)×h, kl = 0, ku = bs) of the first tile column of an upper band matrix: its
    diagonal tile ``r`` (upper triangular, h×h)."""
    h = r.shape[1]
    ab = np.zeros((bs + 1, h), dtype=r.dtype)
    for off in range(min(bs, h - 1) + 1):
        ab[bs - off, off:] = np.diagonal(r, off)
    return ab


@lp.kernel(flops=lambda l, r, bs: 0)
def upper_band_columns_after(l: np.ndarray, r: np.ndarray, bs: int) -> np.ndarray:
    """Band storage ((bs+1)×h) of tile column k ≥ 1 of an upper band matrix of bandwidth ``bs`` (the tile
    size): ``l`` the tile above the diagonal (B[k−1, k], lower triangular, bs×h), ``r`` the diagonal
    tile (B[k, k], upper triangular, h×h)."""
    ab = upper_band_columns.fn(r, bs)
    for off in range(l.shape[0]):  # entry (q + off, q) of l is band row off, column q
        diag = np.diagonal(l, -off)
        ab[off, :diag.size] = diag
    return ab


@lp.kernel(flops=lambda a, b: 0)
def hstack(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``[a, b]``: band storage of consecutive column ranges put together up a binary tree."""
    return np.hstack([a, b])


@lp.kernel(flops=lambda ab: 22.0 * ab.shape[1] ** 2 * (ab.shape[0] - 1))
def upper_band_singular_values(ab: np.ndarray) -> np.ndarray:
    """All singular values (a 1×n row, decreasing, in ``ab``'s dtype) of the upper band matrix in band
    storage ``ab`` ((ku+1)×n): ``band_singular_values`` on its dense n×n float64 copy."""
    s = band_singular_values(dense_of_upper_band_storage(ab), ab.shape[0] - 1)
    return s[None, :].astype(ab.dtype)


# ------------------------------------------------------------------ the symmetric band: eigenvalues

def _two_sided(a: np.ndarray, idx: slice, v: np.ndarray, t: np.ndarray) -> None:
    """``a[idx, idx] = Qᵀ a[idx, idx] Q`` (kept exactly symmetric) for the Q = I − V T Vᵀ of a ``geqrt``."""
    x = _gemqrt(v, t, np.ascontiguousarray(a[idx, idx]), "T")
    x = _gemqrt(v, t, np.ascontiguousarray(x.T), "T")   # (Qᵀ (Qᵀ A)ᵀ) = Qᵀ A Q for a symmetric A
    a[idx, idx] = (x + x.T) / 2


def _set_lower_block(a: np.ndarray, rows: slice, cols: slice, x: np.ndarray) -> None:
    a[rows, cols] = x
    a[cols, rows] = x.T


def reduce_symmetric_bandwidth(a: np.ndarray, b: int, d: int, acc: np.ndarray | None = None) -> None:
    """In place: the n×n symmetric band matrix ``a`` (both triangles stored) of half-bandwidth ``b`` becomes
    one of half-bandwidth ``d`` < b by orthogonal similarity transformations (eigenvalues kept).

    Sweep r (columns r..r+d−1): a QR of the panel below the new band (rows r+d..r+d+b−1) leaves a triangle;
    its Q applied to both sides of the diagonal block and to the block below it fills that block (the
    bulge), which the next QR removes, whose Q fills the next block below: b rows per step to the end.

    With ``acc`` (n×n, float64) every similarity a ← Qᵀ a Q is accumulated into it as acc ← acc Q, so
    that acc a accᵀ is unchanged.
    """
    n = a.shape[0]
    for r in range(0, n - 1, d):
        r1 = min(r + d, n)
        q = min(r1 + b, n)            # columns r..r1-1 reach row r1 - 1 + b at most
        if q <= r1:
            break
        rows, cols = slice(r1, q), slice(r, r1)
        v, t, rr = _geqrt(np.ascontiguousarray(a[rows, cols]))
        x = np.zeros((q - r1, r1 - r))
        x[:rr.shape[0]] = rr
        _set_lower_block(a, rows, cols, x)
        _two_sided(a, rows, v, t)
        _accumulate(acc, rows, v, t)
        p = r1
        while True:
            e = min(q + b, n)         # columns p..q-1 reach row q - 1 + b at most
            if e <= q:
                break
            below, cols = slice(q, e), slice(p, q)
            blk = _gemqrt(v, t, np.ascontiguousarray(a[below, cols].T), "T").T   # a[below, cols] Q
            v, t, rr = _geqrt(np.ascontiguousarray(blk))
            x = np.zeros(blk.shape)
            x[:rr.shape[0]] = rr
            _set_lower_block(a, below, cols, x)
            _two_sided(a, below, v, t)
            _accumulate(acc, below, v, t)
            p, q = q, e


def symmetric_band_eigenvalues(a: np.ndarray, b: int) -> np.ndarray:
    """All eigenvalues, ascending, of the n×n symmetric band matrix ``a`` (half-bandwidth ``b``, both
    triangles stored; overwritten): halving passes down to ``SMALL_BAND``, then LAPACK ``sbevd`` (band →
    tridiagonal ``sbtrd``, then the tridiagonal eigenvalues) on the narrow band."""
    n = a.shape[0]
    b = max(0, min(b, n - 1))
    while b > SMALL_BAND:
        d = (b + 1) // 2
        reduce_symmetric_bandwidth(a, b, d)
        b = d
    ab = np.zeros((b + 1, n))
    for off in range(b + 1):
        ab[off, :n - off] = np.diagonal(a, -off)
    return eig_banded(ab, lower=True, eigvals_only=True, check_finite=False)


def dense_of_lower_band_storage(ab: np.ndarray) -> np.ndarray:
    """The n×n float64 symmetric matrix of the lower band storage ``ab`` ((kd+1)×n, ``ab[i − j, j] = a[i, j]``)."""
    kd, n = ab.shape[0] - 1, ab.shape[1]
    a = np.zeros((n, n))
    for off in range(min(kd, n - 1) + 1):
        i = np.arange(n - off)
        a[i + off, i] = ab[off, :n - off]
        a[i, i + off] = ab[off, :n - off]
    return a


@lp.kernel(flops=lambda d, bs: 0)
def lower_band_columns(d: np.ndarray, bs: int) -> np.ndarray:
    """Lower band storage ((bs+1)×h, ``ab[i − j, j]``) of the last tile column of a symmetric band matrix: its
    diagonal tile ``d`` (h×h, the lower triangle is read)."""
    h = d.shape[1]
    ab = np.zeros((bs + 1, h), dtype=d.dtype)
    for off in range(min(bs, h - 1) + 1):
        ab[off, :h - off] = np.diagonal(d, -off)
    return ab


@lp.kernel(flops=lambda d, r, bs: 0)
def lower_band_columns_before(d: np.ndarray, r: np.ndarray, bs: int) -> np.ndarray:
    """Lower band storage ((bs+1)×bs) of tile column k < N − 1 of a symmetric band matrix of half-bandwidth
    ``bs`` (the tile size): ``d`` the diagonal tile B[k, k], ``r`` the tile below it B[k + 1, k] (upper
    triangular, h×bs)."""
    ab = lower_band_columns.fn(d, bs)
    for off in range(bs):  # entry (p, p + off) of r is band row bs − off, column p + off
        diag = np.diagonal(r, off)
        ab[bs - off, off:off + diag.size] = diag
    return ab


@lp.kernel(flops=lambda ab: 22.0 * ab.shape[1] ** 2 * (ab.shape[0] - 1))
def symmetric_band_eigenvalues_of(ab: np.ndarray) -> np.ndarray:
    """All eigenvalues (a 1×n row, ascending, in ``ab``'s dtype) of the symmetric band matrix in lower band
    storage ``ab``: ``symmetric_band_eigenvalues`` on its dense n×n float64 copy."""
    w = symmetric_band_eigenvalues(dense_of_lower_band_storage(ab), ab.shape[0] - 1)
    return w[None, :].astype(ab.dtype)


# ------------------------------------------------------------------ the symmetric band: eigenvectors

def band_to_tridiagonal(a: np.ndarray, b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(d, e, q) with a = q T qᵀ, T the symmetric tridiagonal of diagonal d and off-diagonal e, for the n×n
    symmetric band matrix ``a`` (half-bandwidth ``b``, both triangles, float64; overwritten).

    The halving passes of ``reduce_symmetric_bandwidth`` accumulate their transforms into q (level-3 BLAS,
    about 8·n³ flops a pass), then LAPACK ``dsbtrd`` (vect = 'U') reduces the narrow band to tridiagonal
    form and multiplies its rotations into q.
    """
    n = a.shape[0]
    b = max(0, min(b, n - 1))
    q = np.eye(n)
    while b > SMALL_BAND:
        d = (b + 1) // 2
        reduce_symmetric_bandwidth(a, b, d, q)
        b = d
    kd = max(b, 1)
    ab = np.zeros((kd + 1, n), order="F")
    for off in range(min(kd, n - 1) + 1):
        ab[off, :n - off] = np.diagonal(a, -off)
    qf = np.asfortranarray(q)
    d, e = np.zeros(n), np.zeros(max(n - 1, 1))
    work, info = np.zeros(max(n, 1)), ctypes.c_int(0)
    _routine("dsbtrd", 12)(ctypes.c_char_p(b"U"), ctypes.c_char_p(b"L"), _int(n), _int(kd), _ptr(ab), _int(kd + 1),
                           _ptr(d), _ptr(e), _ptr(qf), _int(n), _ptr(work), ctypes.byref(info))
    if info.value != 0:
        raise ValueError(f"dsbtrd: LAPACK reported illegal argument {-info.value}")
    return d, e[:n - 1], np.ascontiguousarray(qf)


@lp.kernel(flops=lambda ab: 30.0 * ab.shape[1] ** 3)
def symmetric_band_tridiagonal_of(ab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, Q): the tridiagonal T (2×n: the diagonal, then the off-diagonal with a trailing 0) and the n×n
    orthogonal Q with B = Q T Qᵀ, of the symmetric band B in lower band storage ``ab``
    (``band_to_tridiagonal`` in float64; both results in ``ab``'s dtype)."""
    n = ab.shape[1]
    d, e, q = band_to_tridiagonal(dense_of_lower_band_storage(ab), ab.shape[0] - 1)
    t = np.zeros((2, n), dtype=ab.dtype)
    t[0], t[1, :n - 1] = d, e
    return t, q.astype(ab.dtype, copy=False)


@lp.kernel(flops=lambda q, i, bs: 0)
def row_block(q: np.ndarray, i: int, bs: int) -> np.ndarray:
    """Rows i·bs .. (i+1)·bs − 1 of ``q`` (fewer in the last block)."""
    return np.ascontiguousarray(q[i * bs:(i + 1) * bs])


def tridiagonal_eigenpairs(t: np.ndarray, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues lo..hi (0-based, ascending, both included) and their eigenvectors of the symmetric
    tridiagonal in ``t`` (2×n as ``symmetric_band_tridiagonal_of`` writes it), in float64.

    LAPACK bisection and inverse iteration (``stebz``/``stein``).  Inverse iteration keeps vectors of close
    eigenvalues (gaps ≤ 10⁻³‖T‖₁, LAPACK's clusters) orthogonal only within one call, so a cluster cut by
    lo or hi is computed whole by a call of its own: the same call, with the same result, in the task of
    the range on either side.  Vectors of separate ranges are then orthogonal to working accuracy.
    """
    n = t.shape[1]
    d, e = t[0].astype(np.float64), t[1, :n - 1].astype(np.float64)
    if n == 1:
        return d.copy(), np.ones((1, 1))
    w = scipy.linalg.eigh_tridiagonal(d, e, eigvals_only=True, check_finite=False)
    tol = 1e-3 * float(np.max(np.abs(d) + np.r_[np.abs(e), 0.0] + np.r_[0.0, np.abs(e)]))
    close = np.diff(w) <= tol                  # close[k]: w[k] and w[k + 1] in one cluster

    def cluster(k: int) -> tuple[int, int]:
        a, b = k, k
        while a > 0 and close[a - 1]:
            a -= 1
        while b < n - 1 and close[b]:
            b += 1
        return a, b

    pieces, k = [], lo
    while k <= hi:
        a, b = cluster(k)
        if a < k or b > hi:                    # a cluster cut by the range: computed whole
            pieces.append((a, b, k, min(b, hi)))
            k = min(b, hi) + 1
            continue
        end = k                                # the longest run from k of clusters inside lo..hi
        while end < hi and cluster(end + 1)[1] <= hi:
            end = cluster(end + 1)[1]
        pieces.append((k, end, k, end))
        k = end + 1
    ws, zs = [], []
    for a, b, u, v in pieces:
        wp, zp = scipy.linalg.eigh_tridiagonal(d, e, select="i", select_range=(a, b), check_finite=False,
                                               lapack_driver="stebz")
        ws.append(wp[u - a:v - a + 1])
        zs.append(zp[:, u - a:v - a + 1])
    return np.concatenate(ws), np.hstack(zs)


@lp.kernel(flops=lambda t, j, lo, r, bs: 4.0 * t.shape[1] * min(bs, r - j * bs) ** 2 + 30.0 * t.shape[1] * bs)
def tridiagonal_eigenvectors(t: np.ndarray, j: int, lo: int, r: int, bs: int) -> tuple[np.ndarray, np.ndarray]:
    """(w, Z): block j of the r eigenpairs of indices lo .. lo + r − 1 of the tridiagonal ``t``, the pairs
    lo + j·bs .. lo + min((j+1)·bs, r) − 1: w a 1×c row, Z n×c (``tridiagonal_eigenpairs``; ``t``'s dtype)."""
    first, last = lo + j * bs, lo + min((j + 1) * bs, r) - 1
    w, z = tridiagonal_eigenpairs(t, first, last)
    return w[None, :].astype(t.dtype), z.astype(t.dtype)


# ------------------------------------------------------------------ the upper band: singular vectors

def band_to_bidiagonal(a: np.ndarray, b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(d, e, left, right) with a = left · Bd · rightᵀ, Bd the upper bidiagonal of diagonal d and
    superdiagonal e, for the n×n upper band matrix ``a`` (bandwidth ``b``, float64; overwritten).

    The halving passes of ``reduce_bandwidth`` accumulate their transforms (level-3 BLAS), then LAPACK
    ``dgbbrd`` (vect = 'B') reduces the narrow band and forms its own Q and Pᵀ, multiplied in after.
    """
    n = a.shape[0]
    b = max(0, min(b, n - 1))
    left, right = np.eye(n), np.eye(n)
    while b > SMALL_BAND:
        d = (b + 1) // 2
        reduce_bandwidth(a, b, d, left, right)
        b = d
    ku = max(b, 1)
    ab = upper_band_storage(a, ku)
    d, e = np.zeros(n), np.zeros(max(n - 1, 1))
    q, pt = np.zeros((n, n), order="F"), np.zeros((n, n), order="F")
    work, unused, info = np.zeros(2 * n), np.zeros(1), ctypes.c_int(0)
    _routine("dgbbrd", 18)(ctypes.c_char_p(b"B"), _int(n), _int(n), _int(0), _int(0), _int(ku), _ptr(ab),
                           _int(ku + 1), _ptr(d), _ptr(e), _ptr(q), _int(n), _ptr(pt), _int(n), _ptr(unused),
                           _int(1), _ptr(work), ctypes.byref(info))
    if info.value != 0:
        raise ValueError(f"dgbbrd: LAPACK reported illegal argument {-info.value}")
    return d, e[:n - 1], left @ q, right @ pt.T


@lp.kernel(flops=lambda ab: 40.0 * ab.shape[1] ** 3)
def upper_band_bidiagonal_of(ab: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(T, L, R): the bidiagonal (2×n: the diagonal, then the superdiagonal with a trailing 0) and the n×n
    orthogonal L and R with B = L Bd Rᵀ, of the upper band B in band storage ``ab`` ((ku+1)×n)
    (``band_to_bidiagonal`` in float64; the results in ``ab``'s dtype)."""
    n = ab.shape[1]
    d, e, left, right = band_to_bidiagonal(dense_of_upper_band_storage(ab), ab.shape[0] - 1)
    t = np.zeros((2, n), dtype=ab.dtype)
    t[0], t[1, :n - 1] = d, e
    return t, left.astype(ab.dtype, copy=False), right.astype(ab.dtype, copy=False)


def bidiagonal_singular_triplets(t: np.ndarray, first: int, last: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Singular values first..last (0-based, decreasing) and their left and right vectors (n×c each) of the
    upper bidiagonal in ``t`` (2×n), in float64, as LAPACK ``bdsvdx`` does: eigenpairs of the Golub–Kahan
    tridiagonal of order 2n (zero diagonal, off-diagonal d₁, e₁, d₂, …, dₙ; its eigenvalue +σ has the
    eigenvector (v₁, u₁, v₂, u₂, …)/√2) by ``tridiagonal_eigenpairs``.

    Singular values so small that +σ and −σ fall into one cluster (gaps ≤ 10⁻³‖B‖) mix the two
    eigenvectors; that cluster (±σ of the k smallest) is computed whole, the spans of its odd and even
    entries are the k-dimensional spaces of the v's and the u's (orthonormal bases from SVDs), and the
    SVD of B projected onto them (k×k) gives the triplets: the same computation in every task that needs one.
    """
    n = t.shape[1]
    d, e = t[0].astype(np.float64), t[1, :n - 1].astype(np.float64)
    off = np.zeros(2 * n - 1)
    off[0::2], off[1::2] = d, e
    zero = np.zeros(2 * n)
    w_all = scipy.linalg.eigh_tridiagonal(zero, off, eigvals_only=True, check_finite=False)
    tol = 1e-3 * float(np.max(np.abs(np.r_[off, 0.0]) + np.abs(np.r_[0.0, off])))
    k = 0                                        # the k smallest singular values mix with their negatives
    if w_all[n] - w_all[n - 1] <= tol:
        k = 1
        while k < n and w_all[n + k] - w_all[n + k - 1] <= tol:
            k += 1
    ss, us, vs = [], [], []
    lo_idx = 2 * n - 1 - last                    # ascending eigenvalue indices of the triplets wanted
    hi_idx = 2 * n - 1 - first
    top_lo = max(lo_idx, n + k)                  # the part above the zero cluster: ordinary eigenpairs
    if top_lo <= hi_idx:
        w, z = tridiagonal_eigenpairs(np.vstack([zero, np.r_[off, 0.0]]), top_lo, hi_idx)
        w, z = w[::-1], z[:, ::-1]
        v, u = z[0::2], z[1::2]
        ss.append(np.maximum(w, 0.0))
        us.append(u / np.linalg.norm(u, axis=0))
        vs.append(v / np.linalg.norm(v, axis=0))
    if lo_idx < n + k:                           # some of the k smallest: the cluster whole
        _, z = scipy.linalg.eigh_tridiagonal(zero, off, select="i", select_range=(n - k, n + k - 1),
                                             check_finite=False, lapack_driver="stebz")
        vb = np.linalg.svd(z[0::2], full_matrices=False)[0][:, :k]
        ub = np.linalg.svd(z[1::2], full_matrices=False)[0][:, :k]
        bv = d[:, None] * vb
        bv[:-1] += e[:, None] * vb[1:]           # B vb, B upper bidiagonal
        x, sk, yt = np.linalg.svd(ub.T @ bv)
        take = slice(max(lo_idx, n) - n, hi_idx - n + 1)   # ascending indices n..n+k-1 = σ increasing
        order = np.arange(k)[::-1][take][::-1]  # positions in sk (decreasing) of the wanted ones, decreasing σ
        ss.append(sk[order])
        us.append((ub @ x)[:, order])
        vs.append((vb @ yt.T)[:, order])
    return np.concatenate(ss), np.hstack(us), np.hstack(vs)


@lp.kernel(flops=lambda t, j, r, cols, bs: 16.0 * t.shape[1] * min(bs, r - j * bs) ** 2 + 60.0 * t.shape[1] * bs)
def bidiagonal_vectors(t: np.ndarray, j: int, r: int, cols: int, bs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(s, U, V): block j of the leading r singular triplets of the bidiagonal ``t``, triplets
    j·bs .. min((j+1)·bs, r) − 1: s a 1×c row, V n×c, and U n×w, w = min(bs, cols − j·bs) ≥ c, its columns
    beyond the c vectors zero (the columns of a full U beyond r) (``bidiagonal_singular_triplets``)."""
    n = t.shape[1]
    first, last = j * bs, min((j + 1) * bs, r) - 1
    s, u, v = bidiagonal_singular_triplets(t, first, last)
    c, width = last - first + 1, min(bs, cols - j * bs)
    uu = np.zeros((n, width), dtype=t.dtype)
    uu[:, :c] = u
    return s[None, :].astype(t.dtype), uu, v.astype(t.dtype)


@lp.kernel(flops=lambda t, j, cols, bs: 0)
def zero_columns(t: np.ndarray, j: int, cols: int, bs: int) -> np.ndarray:
    """n × min(bs, cols − j·bs) zeros, n = t's number of columns (a column block of a full U beyond r)."""
    return np.zeros((t.shape[1], min(bs, cols - j * bs)), dtype=t.dtype)


@lp.kernel(flops=lambda q, i, bs, m: 0)
def padded_row_block(q: np.ndarray, i: int, bs: int, m: int) -> np.ndarray:
    """Rows i·bs .. min((i+1)·bs, m) − 1 of [q; 0], q n×n padded with zero rows to m ≥ n rows."""
    lo, hi = i * bs, min((i + 1) * bs, m)
    out = np.zeros((hi - lo, q.shape[1]), dtype=q.dtype)
    top = q[lo:min(hi, q.shape[0])]
    out[:top.shape[0]] = top
    return out


@lp.kernel(flops=lambda q, z, i, j, n, bs: 2.0 * q.shape[0] * q.shape[1] * z.shape[1])
def embedded_product(q: np.ndarray, z: np.ndarray, i: int, j: int, n: int, bs: int) -> np.ndarray:
    """Tile (i, j) of [[L Z], [0 0]] + [[0, 0], [0, I]] (the identity on the rows and columns ≥ n):
    ``q @ z`` with ones where the global row i·bs + p ≥ n equals the global column j·bs + c."""
    out = q @ z
    for p in range(out.shape[0]):
        c = i * bs + p - j * bs
        if i * bs + p >= n and 0 <= c < out.shape[1]:
            out[p, c] = 1.0
    return out
