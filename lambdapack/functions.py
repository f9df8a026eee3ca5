"""Integer functions allowed in index and bound expressions.

The public ``log2``, ``ceil`` and ``floor`` are ordinary Python functions, so a
program module can import them and a program body reads (and lints) like plain
Python.  Inside a compiled program all arithmetic stays in integers: the parser
turns ``ceil(log2(x))`` and ``floor(log2(x))`` into ``ceil_log2`` and
``floor_log2``, and a bare ``log2(x)`` must be exact.

    >>> log2(8), ceil(log2(5)), floor(log2(5))
    (3, 3, 2)
    >>> ceil_log2(5), floor_log2(5), ceil_log2(1)
    (3, 2, 0)
"""

from __future__ import annotations

import math


def log2(x: int) -> int | float:
    """Exact integer log2 of a power of two; a float otherwise (like math.log2)."""
    if isinstance(x, int) and x > 0 and x & (x - 1) == 0:
        return x.bit_length() - 1
    return math.log2(x)


def ceil(x: int | float) -> int:
    return x if isinstance(x, int) else math.ceil(x)


def floor(x: int | float) -> int:
    return x if isinstance(x, int) else math.floor(x)


def _positive(x: int, what: str) -> int:
    if not isinstance(x, int) or x <= 0:
        raise ValueError(f"{what}({x!r}): the argument must be a positive integer")
    return x


def exact_log2(x: int) -> int:
    """log2 of a power of two; anything else is an error naming the fix."""
    _positive(x, "log2")
    if x & (x - 1):
        raise ValueError(f"log2({x}) is not an integer; write ceil(log2(...)) or floor(log2(...))")
    return x.bit_length() - 1


def ceil_log2(x: int) -> int:
    return (_positive(x, "log2") - 1).bit_length()


def floor_log2(x: int) -> int:
    return _positive(x, "log2").bit_length() - 1


def in_range(v: int, start: int, stop: int, step: int) -> bool:
    """Whether ``v`` is one of ``range(start, stop, step)``, in O(1).

    >>> in_range(6, 0, 10, 3), in_range(5, 0, 10, 3), in_range(1, 7, 0, -3)
    (True, False, True)
    """
    if step > 0:
        return start <= v < stop and (v - start) % step == 0
    if step < 0:
        return stop < v <= start and (start - v) % -step == 0
    raise ValueError("range() step must not be zero")


def range_len(start: int, stop: int, step: int) -> int:
    """``len(range(start, stop, step))`` with a clear error for a zero step."""
    if step == 0:
        raise ValueError("range() step must not be zero")
    return len(range(start, stop, step))
