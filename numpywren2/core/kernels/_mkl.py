"""MKL's one-thread BLAS and LAPACK for the tile kernels, when the ``mkl`` package is installed.

On one core of a Sapphire Rapids Xeon, MKL's ``potrf`` and ``trsm`` run 1.4-1.8x faster than OpenBLAS's on
1024-tiles and its ``gemm`` and ``syrk`` 1.05-1.2x (bench/RESULTS.md): the panel kernels are what bound a
tiled Cholesky.  numpy and scipy wheels bring OpenBLAS; MKL comes from the ``mkl`` package
(``pip install 'numpywren2[mkl]'``, part of the ``test`` extra on x86-64), found through its installed files
and loaded with ``ctypes`` into this process alone (``RTLD_LOCAL``: numpy's and scipy's OpenBLAS export
prefixed names, so nothing clashes), with its sequential threading layer (executors run one BLAS thread each).

``NPW_BLAS`` chooses: ``auto`` (the default: MKL when it is installed and the CPU is Intel's, else scipy's
OpenBLAS; on an AMD EPYC MKL's one-thread ``potrf``, ``trsm`` and ``syrk`` ran 5-15 % slower than OpenBLAS's),
``mkl`` (MKL, or an error at the first kernel saying how to install it), ``openblas`` (scipy's BLAS, even
with MKL installed).  Only C-ordered float32 and float64 operands of one dtype go through MKL; anything else
takes scipy's wrappers, as without MKL.  ``describe()`` names what the kernels use (the benchmarks print it).
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
import threading

import numpy as np

BLAS_ENV = "NPW_BLAS"
CHOICES = ("auto", "mkl", "openblas")
INTEL = "GenuineIntel"

# CBLAS's enumerations
ROW_MAJOR = 101
NO_TRANS, TRANS = 111, 112
UPPER, LOWER = 121, 122
NON_UNIT, UNIT = 131, 132
LEFT, RIGHT = 141, 142
SEQUENTIAL = 1  # MKL_THREADING_SEQUENTIAL

_lock = threading.Lock()
_loaded: dict = {}


def choice() -> str:
    """``NPW_BLAS`` (lower-cased; default ``auto``), or a ValueError naming the choices."""
    v = os.environ.get(BLAS_ENV, "auto").strip().lower() or "auto"
    if v not in CHOICES:
        raise ValueError(f"{BLAS_ENV}={v!r}: expected one of {', '.join(CHOICES)}")
    return v


@functools.cache
def cpu_vendor() -> str:
    """The CPU's vendor as the kernel reports it (``GenuineIntel``, ``AuthenticAMD``, ...); "" if unknown.
    Read once per process: ``library()`` asks at every kernel call."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("vendor_id"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return ""


def library_path() -> str | None:
    """The path of ``libmkl_rt`` from the installed ``mkl`` package; None if it is not installed."""
    from importlib import metadata

    try:
        files = metadata.distribution("mkl").files or []
    except metadata.PackageNotFoundError:
        return None
    found = sorted(str(f.locate()) for f in files if f.name.startswith("libmkl_rt.so"))
    return next((p for p in found if os.path.exists(p)), None)


def library() -> ctypes.CDLL | None:
    """MKL, loaded once per process with its sequential threading layer, when ``NPW_BLAS`` asks for it (or
    ``auto`` finds it on an Intel CPU); None for scipy's BLAS.  ``NPW_BLAS=mkl`` without MKL raises ``RuntimeError``."""
    want = choice()
    if want == "openblas" or (want == "auto" and cpu_vendor() != INTEL):
        return None
    with _lock:
        if "lib" not in _loaded:
            _loaded["lib"] = _load()
    lib = _loaded["lib"]
    if lib is None and want == "mkl":
        raise RuntimeError(f"{BLAS_ENV}=mkl but the mkl package is not installed in {sys.prefix}: "
                           f"pip install 'numpywren2[mkl]' (or mkl), or unset {BLAS_ENV}")
    return lib


def _load() -> ctypes.CDLL | None:
    path = library_path()
    if path is None:
        return None
    lib = ctypes.CDLL(path, mode=ctypes.RTLD_LOCAL)
    layer = lib.MKL_Set_Threading_Layer(ctypes.c_int(SEQUENTIAL))
    if layer != SEQUENTIAL:
        raise RuntimeError(f"MKL ({path}): its sequential threading layer could not be selected (got {layer})")
    _declare(lib)
    return lib


def _declare(lib: ctypes.CDLL) -> None:
    i, p = ctypes.c_int, ctypes.c_void_p
    for t, real in (("d", ctypes.c_double), ("s", ctypes.c_float)):
        f = getattr(lib, f"cblas_{t}gemm")
        f.argtypes = [i, i, i, i, i, i, real, p, i, p, i, real, p, i]
        f.restype = None
        f = getattr(lib, f"cblas_{t}trsm")
        f.argtypes = [i, i, i, i, i, i, i, real, p, i, p, i]
        f.restype = None
        f = getattr(lib, f"cblas_{t}syrk")
        f.argtypes = [i, i, i, i, i, real, p, i, real, p, i]
        f.restype = None
        f = getattr(lib, f"{t}potrf_")
        f.argtypes = [ctypes.c_char_p, ctypes.POINTER(i), p, ctypes.POINTER(i), ctypes.POINTER(i)]
        f.restype = None


def describe() -> str:
    """What the tile kernels use in this process, e.g. ``"MKL 2026.2.1 (one thread), libmkl_rt.so.3"``."""
    try:
        lib = library()
    except (RuntimeError, ValueError) as e:
        return f"unusable: {e}"
    if lib is None:
        why = ""
        if choice() == "auto":
            why = ("; mkl not installed" if library_path() is None else
                   f"; mkl installed, used on Intel CPUs only by default (this one: {cpu_vendor() or 'unknown'}; "
                   f"{BLAS_ENV}=mkl uses it)")
        return "scipy's BLAS (OpenBLAS)" + why
    from importlib import metadata

    return f"MKL {metadata.version('mkl')} (one thread), {os.path.basename(lib._name)}"


def warm() -> None:
    """Load MKL and run each routine once on tiny operands when MKL is in use (its first ``gemm`` costs about
    14 ms of dispatch and paging in): the executors' zygote calls it, so that forked executors start warm.
    Errors are left for the first kernel, which names its task."""
    try:
        lib = library()
    except (RuntimeError, ValueError, OSError):
        return
    if lib is None:
        return
    for dt in _PREFIX:
        t = _PREFIX[dt]
        a = np.eye(8, dtype=dt) * 2
        out = np.ones((8, 8), dtype=dt)
        gemm(lib, t, 1.0, a, a, 1.0, out, 0, 1)
        trsm(lib, t, 1.0, a, out, 1, 1, 1, 0)
        syrk_lower(lib, t, -1.0, a, 1.0, out)
        potrf_lower(lib, t, a.copy())


_PREFIX = {np.dtype(np.float64): "d", np.dtype(np.float32): "s"}


def routines(*arrays: np.ndarray) -> tuple[ctypes.CDLL, str] | None:
    """(MKL, its dtype letter) when MKL is in use and every array is C-ordered with one dtype of float32 or
    float64; None otherwise (the caller takes scipy's wrappers)."""
    lib = library()
    if lib is None:
        return None
    dt = arrays[0].dtype
    t = _PREFIX.get(dt)
    if t is None or any(a.dtype != dt or not a.flags.c_contiguous or a.ndim != 2 for a in arrays):
        return None
    return lib, t


def _ptr(a: np.ndarray) -> int:
    return a.ctypes.data


def _ld(a: np.ndarray) -> int:
    return max(1, a.shape[1])


def gemm(lib, t: str, alpha: float, a: np.ndarray, b: np.ndarray, beta: float, out: np.ndarray,
         trans_a: int, trans_b: int) -> np.ndarray:
    """``out := alpha op(a) op(b) + beta out``, row-major (``out`` written in place and returned)."""
    m, n = out.shape
    k = a.shape[0] if trans_a else a.shape[1]
    if (a.shape[1] if trans_a else a.shape[0]) != m or (b.shape[1] if trans_b else b.shape[0]) != k or \
            (b.shape[0] if trans_b else b.shape[1]) != n:
        raise ValueError(f"gemm: shapes {a.shape}{'ᵀ' if trans_a else ''} @ {b.shape}{'ᵀ' if trans_b else ''} "
                         f"do not give {out.shape}")
    if m and n:
        getattr(lib, f"cblas_{t}gemm")(ROW_MAJOR, TRANS if trans_a else NO_TRANS, TRANS if trans_b else NO_TRANS,
                                       m, n, k, alpha, _ptr(a), _ld(a), _ptr(b), _ld(b), beta, _ptr(out), _ld(out))
    return out


def trsm(lib, t: str, alpha: float, tri: np.ndarray, out: np.ndarray, side: int, lower: int, trans: int,
         diag: int) -> np.ndarray:
    """``op(tri) x = alpha out`` (side 0) or ``x op(tri) = alpha out`` (side 1), row-major, ``out`` := x."""
    m, n = out.shape
    k = n if side else m
    if tri.shape != (k, k):
        raise ValueError(f"trsm: triangle {tri.shape} against a right-hand side {out.shape} on the "
                         f"{'right' if side else 'left'}")
    if m and n:
        getattr(lib, f"cblas_{t}trsm")(ROW_MAJOR, RIGHT if side else LEFT, LOWER if lower else UPPER,
                                       TRANS if trans else NO_TRANS, UNIT if diag else NON_UNIT, m, n, alpha,
                                       _ptr(tri), _ld(tri), _ptr(out), _ld(out))
    return out


def syrk_lower(lib, t: str, alpha: float, a: np.ndarray, beta: float, out: np.ndarray) -> np.ndarray:
    """The lower triangle of ``out := alpha a aᵀ + beta out``, row-major (the strict upper one untouched)."""
    n, k = a.shape
    if out.shape != (n, n):
        raise ValueError(f"syrk: {a.shape} @ its transpose does not give {out.shape}")
    if n:
        getattr(lib, f"cblas_{t}syrk")(ROW_MAJOR, LOWER, NO_TRANS, n, k, alpha, _ptr(a), _ld(a), beta, _ptr(out),
                                       _ld(out))
    return out


def potrf_lower(lib, t: str, out: np.ndarray) -> int:
    """The lower Cholesky factor of a C-ordered square ``out`` in place (its strict upper triangle untouched);
    LAPACK's info.  Row-major ``out`` is column-major ``outᵀ``, whose upper factor U (outᵀ = UᵀU) is Lᵀ."""
    n = ctypes.c_int(out.shape[0])
    info = ctypes.c_int(0)
    if out.shape[0]:
        getattr(lib, f"{t}potrf_")(b"U", ctypes.byref(n), _ptr(out), ctypes.byref(n), ctypes.byref(info))
    return info.value
