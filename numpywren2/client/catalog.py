"""Matrices by name: ``npw.open(name)`` and ``npw.ls()``.

A matrix lives in a tile store under its name (``<name>/meta`` and its tiles, ``client/matrix.py``).
One made with ``name=`` (or kept with ``persist()``) stays there after its runtime closes, and any
runtime on the same store — this process or another, later — opens it by name.  ``ls`` lists the
matrices a store holds from their ``meta`` entries (one listing of the store's keys), anonymous ones
included while their handles live.
"""

from __future__ import annotations

import json
from typing import NamedTuple

import numpy as np

from ..core.backends import TileNotFoundError, TileStore
from ..core.backends.urls import open_store
from .matrix import BigMatrix


class MatrixInfo(NamedTuple):
    """One matrix of a store, as ``ls`` lists it."""

    name: str
    shape: tuple[int, int]
    block_size: tuple[int, int]
    dtype: np.dtype
    nbytes: int  # of its entries (rows × cols × itemsize), whatever the tiles stored


def _store(store) -> tuple[TileStore, object]:
    """The tile store meant (a TileStore, a store URL, or None: the current runtime's) and its runtime."""
    if store is None:
        from .runtime import current_runtime

        rt = current_runtime()
        return rt.store, rt
    if isinstance(store, str):
        return open_store(store), None
    return store, None


def open(name: str, store: TileStore | str | None = None) -> BigMatrix:
    """The matrix kept under ``name`` in ``store`` (a store URL such as ``file:///data/tiles``, a TileStore, or
    by default the current runtime's); the handle never deletes it.

    Raises
    ------
    MatrixNotFoundError
        (a ``KeyError``) if the store holds no matrix of that name.
    """
    s, rt = _store(store)
    return BigMatrix.open(s, name, runtime=rt)


def ls(store: TileStore | str | None = None) -> list[MatrixInfo]:
    """The matrices in ``store`` (as for ``open``), sorted by name, with shape, tiling, dtype and size."""
    s, _ = _store(store)
    out = []
    for key in s.list(""):
        name, _, last = key.rpartition("/")
        if last != "meta" or not name or "/" in name:
            continue
        try:
            meta = json.loads(bytes(s.get(key)).decode())
        except (TileNotFoundError, ValueError):
            continue  # deleted meanwhile, or not a matrix's
        shape, bs, dtype = tuple(meta["shape"]), tuple(meta["block_size"]), np.dtype(meta["dtype"])
        out.append(MatrixInfo(name, shape, bs, dtype, int(shape[0]) * int(shape[1]) * dtype.itemsize))
    return sorted(out)
