"""The rules every user-facing function applies to its matrix and ``block_size`` arguments.

One place for them, so that ``npw.cholesky``, ``npw.solve``, ``npw.svd``, ... and
``BigMatrix.from_numpy`` answer a bad argument with the same exception and message:

- dtype: float32 and float64 are kept; integers and bools become float64 (as numpy's
  linalg does), float16 becomes float32 (as scipy's); complex, object, string and other
  dtypes are a ``TypeError`` naming the argument and the dtype (nothing is cast to real);
- finiteness (``check_finite=True``, scipy's default): a numpy argument with an inf or a NaN
  is a ``ValueError`` ("array must not contain infs or NaNs", scipy's words) naming the
  argument; a BigMatrix argument is checked by the executors as they read its tiles;
- ``block_size``: an int or a ``(rows, cols)`` pair of positive ints
  (``numpywren2.core.tiling.block_shape``), optionally required to be square by the algorithm.

>>> real_array([[1, 2], [3, 4]], "a", "solve").dtype
dtype('float64')
>>> real_array(np.eye(2) + 1j, "a", "solve")
Traceback (most recent call last):
...
TypeError: solve: a has dtype complex128; numpywren2 computes with real matrices only (float32 or float64)
"""

from __future__ import annotations

import numpy as np

from ..core.tiling import block_shape


def real_dtype(dtype, name: str, what: str) -> np.dtype:
    """The dtype a matrix argument of dtype ``dtype`` is computed in (see the module docstring)."""
    dtype = np.dtype(dtype)
    if dtype in (np.float32, np.float64):
        return dtype
    if dtype.kind in "iub":
        return np.dtype(np.float64)
    if dtype == np.float16:
        return np.dtype(np.float32)
    if dtype.kind == "f":  # long double: LAPACK has no such precision, as in scipy
        return np.dtype(np.float64)
    if dtype.kind == "c":
        raise TypeError(f"{what}: {name} has dtype {dtype}; numpywren2 computes with real matrices only "
                        "(float32 or float64)")
    raise TypeError(f"{what}: {name} has dtype {dtype}, not a real numeric dtype (float32 or float64; "
                    "integers and bools are converted to float64)")


def real_array(x, name: str, what: str) -> np.ndarray:
    """``x`` as a numpy array of a real dtype (float32 or float64), or a ``TypeError``."""
    try:
        a = np.asarray(x)
    except (TypeError, ValueError) as e:  # ragged nested lists, objects numpy cannot convert
        raise TypeError(f"{what}: {name} is not a numeric array ({e})") from None
    dtype = real_dtype(a.dtype, name, what)
    return a if a.dtype == dtype else a.astype(dtype)


def require_finite(a: np.ndarray, name: str, what: str) -> None:
    """scipy's ``check_finite`` on a numpy argument, on the client."""
    if a.size and not np.isfinite(a).all():
        raise ValueError(f"{what}: {name}: array must not contain infs or NaNs (pass check_finite=False to skip "
                         "this check)")


def block_size_arg(block_size, what: str, square: str | None = None) -> tuple[int, int] | None:
    """A ``block_size`` argument as ``(rows, cols)`` (None stays None).

    ``square``: the reason the algorithm needs square tiles; a non-square pair is then a
    ``ValueError`` giving it.
    """
    if block_size is None:
        return None
    try:
        bs = block_shape(block_size)
    except (TypeError, ValueError) as e:
        raise type(e)(f"{what}: {e}") from None
    if square is not None and bs[0] != bs[1]:
        raise ValueError(f"{what} needs square tiles ({square}); block_size={block_size!r} is not square: "
                         "give an int")
    return bs
