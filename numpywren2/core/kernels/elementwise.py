"""Tile kernels of the array operations (``core/programs/arrays.py``): linear combinations, casts, zeros,
diagonals and the pieces of a retiling.

Program parameters are integers, so a float scalar travels as the 64 bits of its IEEE double
(``float_bits``; ``bits_float`` reads it back in the kernel): exact, whatever the value.
``single`` flags ask for a float32 result (else float64), so that a kernel's output has the dtype of
the tile slot it is written to.
"""

from __future__ import annotations

import struct

import numpy as np

import lambdapack as lp


def float_bits(x: float) -> int:
    """The IEEE-754 double ``x`` as an unsigned 64-bit integer (a program parameter).

    >>> bits_float(float_bits(-2.5)), float_bits(1.0)
    (-2.5, 4607182418800017408)
    """
    return struct.unpack("<Q", struct.pack("<d", float(x)))[0]


def bits_float(bits: int) -> float:
    """The double whose bits ``float_bits`` gave."""
    return struct.unpack("<d", struct.pack("<Q", int(bits)))[0]


def _dtype(single: int) -> np.dtype:
    return np.dtype(np.float32) if single else np.dtype(np.float64)


@lp.kernel(flops=lambda a, b, alpha, beta, single: 3 * a.size)
def axpby(a: np.ndarray, b: np.ndarray, alpha: int, beta: int, single: int) -> np.ndarray:
    """``alpha * a + beta * b`` (``alpha``, ``beta``: ``float_bits`` of the scalars), computed in the result's dtype."""
    dt = _dtype(single)
    x, y = bits_float(alpha), bits_float(beta)
    out = a.astype(dt, copy=True)
    if x != 1.0:
        out *= dt.type(x)
    if y == 1.0:
        out += b.astype(dt, copy=False)
    elif y == -1.0:
        out -= b.astype(dt, copy=False)
    else:
        out += dt.type(y) * b.astype(dt, copy=False)
    return out


@lp.kernel(flops=lambda a, alpha, single: a.size)
def scale(a: np.ndarray, alpha: int, single: int) -> np.ndarray:
    """``alpha * a`` (``alpha``: ``float_bits`` of the scalar) in the result's dtype."""
    dt = _dtype(single)
    return a.astype(dt, copy=True) * dt.type(bits_float(alpha))


@lp.kernel(flops=lambda a, single: 0)
def cast(a: np.ndarray, single: int) -> np.ndarray:
    """The tile as float32 (``single``) or float64 (a copy)."""
    return np.array(a, dtype=_dtype(single), copy=True)


@lp.kernel(flops=lambda rows, cols, single: 0)
def zero_tile(rows: int, cols: int, single: int) -> np.ndarray:
    """A ``rows`` × ``cols`` tile of zeros."""
    return np.zeros((rows, cols), _dtype(single))


@lp.kernel(flops=lambda v, rows, cols, single: 0)
def diag_tile(v: np.ndarray, rows: int, cols: int, single: int) -> np.ndarray:
    """A diagonal tile whose diagonal is the column tile ``v`` (``rows`` × 1)."""
    out = np.zeros((rows, cols), _dtype(single))
    n = min(rows, cols, v.shape[0])
    out[np.arange(n), np.arange(n)] = v[:n, 0]
    return out


@lp.kernel(flops=lambda a: 0)
def diagonal_column(a: np.ndarray) -> np.ndarray:
    """The diagonal of a (diagonal) tile as a column tile (``min(a.shape)`` × 1)."""
    return np.ascontiguousarray(np.diagonal(a)[:, None])


def _overlap(acc: np.ndarray, a: np.ndarray, r0: int, c0: int, ar: int, ac: int) -> None:
    """Copy into ``acc`` (whose first entry is entry (r0, c0) of the source matrix) the part of tile ``a``
    (whose first entry is (ar, ac)) that falls inside it."""
    rows, cols = acc.shape
    top, bottom = max(r0, ar), min(r0 + rows, ar + a.shape[0])
    left, right = max(c0, ac), min(c0 + cols, ac + a.shape[1])
    if top < bottom and left < right:
        acc[top - r0:bottom - r0, left - c0:right - c0] = a[top - ar:bottom - ar, left - ac:right - ac]


@lp.kernel(flops=lambda a, r0, c0, rows, cols, ar, ac: 0)
def cut(a: np.ndarray, r0: int, c0: int, rows: int, cols: int, ar: int, ac: int) -> np.ndarray:
    """The ``rows`` × ``cols`` block at (r0, c0) of the source matrix, all of it inside tile ``a`` at (ar, ac);
    also the first piece of a retiled tile made of several (the rest of it zeros until ``place`` fills it)."""
    out = np.zeros((rows, cols), a.dtype)
    _overlap(out, a, r0, c0, ar, ac)
    return out


@lp.kernel(flops=lambda acc, a, r0, c0, ar, ac: 0)
def place(acc: np.ndarray, a: np.ndarray, r0: int, c0: int, ar: int, ac: int) -> np.ndarray:
    """``acc`` (the block at (r0, c0) of the source matrix) with the part of tile ``a`` (at (ar, ac)) in it."""
    out = np.array(acc, copy=True)
    _overlap(out, a, r0, c0, ar, ac)
    return out
