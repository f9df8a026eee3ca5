"""The job description stored in the state store: JSON that any executor can turn back into work.

::

    {"program": <Program.to_json()>, "params": {"N": 4},
     "prefixes": {"A": "m-1f..", "L": "m-9c..", "S": "job-ab../S"},
     "kernels": {"chol": {"builtin": "chol"}, "mine": {"pickle": "<base64>"}},
     "num_tasks": 20, "scratch": ["S"],
     "matrices": {"A": {"shape": [300, 300], "block_size": [64, 64], "dtype": "<f8"}, "L": {...}}}

Built-in kernels travel by name, resolved only in ``kernels.BUILTIN`` (a description cannot make an
executor import a module); a user's kernels by value (cloudpickle), so executors need not import the
user's modules.

``matrices`` describes each named matrix (``BigMatrix``) the job was given, so that an executor
checks every kernel output against its tile slot before storing it (``output_problem``): an
ndarray of the tile's shape (edge tiles are smaller) and of the matrix's dtype.  Scratch tile
spaces (``scratch``) have no declared tiling: their tiles must be 2-D float32 or float64 ndarrays.
"""

from __future__ import annotations

import base64
import json
import sys
import types

import cloudpickle
import numpy as np

import lambdapack as lp

from .kernels import BUILTIN


def encode_kernels(table: dict[str, lp.Kernel]) -> dict[str, dict]:
    out = {}
    for name, k in table.items():
        mod = getattr(k.fn, "__module__", None) or ""
        if BUILTIN.get(k.fn.__name__) is k:
            out[name] = {"builtin": k.fn.__name__}
        else:
            module = sys.modules.get(mod)
            if module is not None and mod not in ("__main__", "builtins"):
                cloudpickle.register_pickle_by_value(module)
            try:
                out[name] = {"pickle": base64.b64encode(cloudpickle.dumps(k)).decode()}
            finally:
                if module is not None and mod not in ("__main__", "builtins"):
                    cloudpickle.unregister_pickle_by_value(module)
    return out


def decode_kernels(d: dict[str, dict]) -> dict[str, lp.Kernel]:
    out = {}
    for name, spec in d.items():
        if "builtin" in spec:  # by name, from the built-in table only: a description cannot import modules
            try:
                out[name] = BUILTIN[spec["builtin"]]
            except KeyError:
                raise ValueError(f"kernel {name}: {spec['builtin']!r} is not a built-in kernel "
                                 f"(numpywren2.core.kernels.BUILTIN)") from None
        else:
            out[name] = cloudpickle.loads(base64.b64decode(spec["pickle"]))
    return out


def kernel_namespace(table: dict[str, lp.Kernel]) -> dict:
    """A namespace in which the program's (possibly dotted) kernel names resolve."""
    ns: dict = {}
    for name, k in table.items():
        head, *rest = name.split(".")
        if not rest:
            ns[head] = k
            continue
        obj = ns.setdefault(head, types.SimpleNamespace())
        for part in rest[:-1]:
            obj = obj.__dict__.setdefault(part, types.SimpleNamespace())
        setattr(obj, rest[-1], k)
    return ns


def load(description: str):
    """(bound program, kernel table, description dict) from a stored description."""
    d = json.loads(description)
    kernels = decode_kernels(d["kernels"])
    program = lp.Program.from_json(d["program"], kernel_namespace(kernels))
    bound = program.bind(validate="none", **d["params"])
    return bound, kernels, d


def tile_key(prefixes: dict[str, str], matrix: str, idx: tuple[int, ...]) -> str:
    return f"{prefixes[matrix]}/{'/'.join(map(str, idx))}"


class KernelOutputError(TypeError, ValueError):
    """A kernel returned something that does not fit the tile slot it writes (wrong type, number of
    outputs, shape or dtype).  A ``TypeError`` and a ``ValueError``, as numpy raises either for such
    mismatches."""


SCRATCH_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def describe_matrix(shape, block_size, dtype) -> dict:
    """The ``matrices`` entry of a named matrix in a job description."""
    return {"shape": [int(shape[0]), int(shape[1])], "block_size": [int(block_size[0]), int(block_size[1])],
            "dtype": np.dtype(dtype).str}


def tile_slot(meta: dict | None, idx: tuple[int, ...]) -> tuple[tuple[int, ...] | None, np.dtype | None, str | None]:
    """``(shape, dtype, problem)`` expected of tile ``idx`` of a matrix described by ``meta``
    (None: a scratch space, no declared tiling).  ``problem`` says why no tile can go there
    (an index outside the matrix's grid).

    A matrix addressed with other than two indices is a tile space kept in a matrix between jobs
    (the SVD keeps its reflectors so): its tiles have no declared shape, only the matrix's dtype.

    >>> meta = describe_matrix((10, 7), (4, 4), np.float32)
    >>> tile_slot(meta, (2, 1))
    ((2, 3), dtype('float32'), None)
    >>> tile_slot(meta, (3, 0))[2]
    'tile (3, 0) is outside the 3x2 grid of tiles of this 10x7 matrix'
    >>> tile_slot(meta, (0, 0, 5))
    (None, dtype('float32'), None)
    """
    if meta is None:
        return None, None, None
    if len(idx) != 2:
        return None, np.dtype(meta["dtype"]), None
    (rows, cols), (br, bc) = meta["shape"], meta["block_size"]
    grid = (-(-rows // br), -(-cols // bc))
    if not (0 <= idx[0] < grid[0] and 0 <= idx[1] < grid[1]):
        return None, None, (f"tile {tuple(idx)} is outside the {grid[0]}x{grid[1]} grid of tiles of this "
                            f"{rows}x{cols} matrix")
    i, j = idx
    return (min(br, rows - i * br), min(bc, cols - j * bc)), np.dtype(meta["dtype"]), None


def output_problem(value, shape: tuple[int, ...] | None, dtype: np.dtype | None) -> str | None:
    """What is wrong with ``value`` as a tile of ``shape`` and ``dtype``, or None if it fits.  A slot of
    no declared shape takes any 2-D ndarray of ``dtype`` (None, for a scratch slot: float32 or float64).

    >>> output_problem(np.zeros((1, 1)), (4, 4), np.dtype("f8"))
    'expected an ndarray of shape (4, 4) and dtype float64, got shape (1, 1)'
    >>> output_problem(np.zeros((4, 4), np.int64), (4, 4), np.dtype("f8"))
    'expected an ndarray of shape (4, 4) and dtype float64, got dtype int64'
    >>> output_problem(None, None, None)
    'expected a 2-D float32 or float64 ndarray (a scratch tile), got None'
    """
    if shape is not None:
        want = f"an ndarray of shape {tuple(shape)} and dtype {dtype}"
    elif dtype is not None:
        want = f"a 2-D ndarray of dtype {dtype}"
    else:
        want = "a 2-D float32 or float64 ndarray (a scratch tile)"
    if not isinstance(value, np.ndarray):
        return f"expected {want}, got {describe_value(value)}"
    bad = []
    if shape is not None and value.shape != tuple(shape):
        bad.append(f"shape {value.shape}")
    if shape is None and value.ndim != 2:
        bad.append(f"a {value.ndim}-D array of shape {value.shape}")
    if value.dtype != dtype if dtype is not None else value.dtype not in SCRATCH_DTYPES:
        bad.append(f"dtype {value.dtype}")
    return f"expected {want}, got {' and '.join(bad)}" if bad else None


def describe_value(value) -> str:
    """A kernel's result in a few words, for error messages.

    >>> describe_value(None), describe_value((1, 2)), describe_value(np.float64(1)), describe_value(np.eye(2))
    ('None', 'a tuple of 2 values', 'a numpy scalar of dtype float64', 'an ndarray of shape (2, 2) and dtype float64')
    """
    if value is None:
        return "None"
    if isinstance(value, np.ndarray):
        return f"an ndarray of shape {value.shape} and dtype {value.dtype}"
    if isinstance(value, np.generic):
        return f"a numpy scalar of dtype {value.dtype}"
    if isinstance(value, tuple | list):
        return f"a {type(value).__name__} of {len(value)} values"
    t = type(value)
    return f"a {t.__qualname__}" if t.__module__ == "builtins" else f"a {t.__module__}.{t.__qualname__}"
