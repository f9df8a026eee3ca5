"""The job description: one ``JobSpec``, built by ``submit``, stored as JSON, read by every executor.

A ``JobSpec`` is built once (``numpywren2.client.job.submit``), serialised once (``to_json``, into
the job record of the state store) and parsed once per process that needs it (``JobSpec.from_json``:
each executor, the job's provisioner).  Its stored form is readable, versioned JSON::

    {"version": 1,
     "program": "<Program.to_json()>", "params": {"N": 4},
     "prefixes": {"A": "m-1f..", "L": "m-9c..", "S": "job-ab../S"},
     "kernels": {"chol": {"builtin": "chol"}, "mine": {"pickle": "<base64>"}},
     "num_tasks": 20, "scratch": ["S"], "check_finite": {"A": "A (m-1f..)"},
     "matrices": {"A": {"shape": [300, 300], "block_size": [64, 64], "dtype": "<f8"}, "L": {...}}}

A description of another ``version`` (or of none) is a ``JobSpecVersionError`` naming the job: an
executor never guesses at a layout it does not know.  The starter tasks are not part of it: ``submit``
enqueues them, and any executor can recompute them from the bound program.

Built-in kernels travel by name, resolved only in ``kernels.BUILTIN``; kernels of the modules the user
trusts by reference (imported only from the allow-list: the built-in kernel modules and
``trusted_modules``); any other kernel by value (cloudpickle), so executors need not import the
user's modules.

``matrices`` describes each named matrix (``BigMatrix``) the job was given, so that an executor
checks every kernel output against its tile slot before storing it (``output_problem``): an
ndarray of the tile's shape (edge tiles are smaller) and of the matrix's dtype.  Scratch tile
spaces (``scratch``) have no declared tiling: their tiles must be 2-D float32 or float64 ndarrays.

Tile keys: tile ``(i, j, ...)`` of a tile space whose prefix is ``p`` is stored under ``p/i/j/...``
(``tile_path``, the one place this layout is written; ``JobSpec.tile_key`` and ``BigMatrix`` use it).
A ``BigMatrix``'s prefix is its name; a scratch space's is ``<job>/<name>`` (``scratch_prefix``).
A view of a matrix (a tile-aligned slice, ``numpywren2/client/array_ops.py``) is given to a job as its
parent's prefix and an ``offsets`` entry ``[di, dj]``: its tile ``(i, j)`` is the parent's
``(i + di, j + dj)``.  ``offsets`` is stored only when a job has views.

``signature`` is the job's signature (an HMAC with a secret the client and the executors share,
``core.signing``): it covers the canonical JSON of every other field (``to_json`` without
``signature``, keys sorted) and the id of the job it is stored under, so that a description can be
neither altered nor replayed as another job; executors verify it before they unpickle a kernel or
bind the program.  A kernel of a module the user trusts (``trusted_modules``) travels by reference,
``{"ref": "module:qualname"}``, imported by executors only from such a module.
"""

from __future__ import annotations

import base64
import dataclasses
import importlib
import json
import sys
import types
from collections.abc import Iterable, Mapping

import cloudpickle
import numpy as np

import lambdapack as lp

from .kernels import BUILTIN
from .signing import BUILTIN_MODULES, TRUSTED_ENV, UntrustedKernelError, module_allowed

JOBSPEC_VERSION = 1


def encode_kernels(table: dict[str, lp.Kernel], trusted: Iterable[str] = ()) -> dict[str, dict]:
    """The kernel table as stored: a built-in by name, a kernel of a ``trusted`` module (or a submodule
    of one) by reference (``{"ref": "module:qualname"}``: executors import it from their own
    installation), any other by value (cloudpickle)."""
    out = {}
    trusted = tuple(trusted)
    for name, k in table.items():
        mod = getattr(k.fn, "__module__", None) or ""
        if BUILTIN.get(k.fn.__name__) is k:
            out[name] = {"builtin": k.fn.__name__}
        elif trusted and module_allowed(mod, trusted) and _resolve_ref(mod, k.fn.__qualname__) is k:
            out[name] = {"ref": f"{mod}:{k.fn.__qualname__}"}
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


def _resolve_ref(module: str, qualname: str):
    """The object ``module:qualname`` names, or None (importing ``module`` if it is not loaded)."""
    try:
        obj = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError):
        return None
    return obj


def decode_kernels(d: Mapping[str, Mapping], trusted: Iterable[str] = ()) -> dict[str, lp.Kernel]:
    """The kernel table of a (verified) description.  A ``"ref"`` kernel is imported only from the
    built-in kernel modules and the ``trusted`` ones (and their submodules): a reference to any other
    module is an ``UntrustedKernelError`` raised before anything is imported."""
    out = {}
    trusted = tuple(trusted)
    for name, spec in d.items():
        if "ref" in spec:
            module, _, qualname = str(spec["ref"]).partition(":")
            if not module or not qualname or not module_allowed(module, trusted):
                raise UntrustedKernelError(
                    f"kernel {name}: {spec['ref']!r} is not in a trusted module (the built-ins "
                    f"{', '.join(BUILTIN_MODULES)} and {', '.join(trusted) or 'no others'}); refusing to import it "
                    f"(name the module in npw.runtime(trusted_modules=[...]) or ${TRUSTED_ENV})")
            k = _resolve_ref(module, qualname)
            if not isinstance(k, lp.Kernel):
                raise ValueError(f"kernel {name}: {spec['ref']!r} names no kernel (an @lp.kernel function)")
            out[name] = k
        elif "builtin" in spec:  # by name, from the built-in table only: a description cannot import modules
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


def tile_path(prefix: str, idx: Iterable[int]) -> str:
    """The store key of tile ``idx`` of the tile space stored under ``prefix``: the one tile-key layout.

    >>> tile_path("m-1f", (2, 3)), tile_path("job-ab/S", (0, 1, 4))
    ('m-1f/2/3', 'job-ab/S/0/1/4')
    """
    return f"{prefix}/{'/'.join(map(str, idx))}"


def scratch_prefix(job: str, name: str) -> str:
    """The prefix of the job's scratch tile space ``name``: under the job's id, deleted when it ends.

    >>> scratch_prefix("job-ab", "S")
    'job-ab/S'
    """
    return f"{job}/{name}"


class JobSpecVersionError(ValueError):
    """A stored job description of a version this code does not read (written by another release)."""


@dataclasses.dataclass(frozen=True)
class MatrixMeta:
    """The tiling of a named matrix (``BigMatrix``) given to a job: its shape, block size and dtype.

    >>> m = MatrixMeta.of((10, 7), (4, 4), np.float32)
    >>> m, m.grid
    (MatrixMeta(shape=(10, 7), block_size=(4, 4), dtype='<f4'), (3, 2))
    >>> MatrixMeta.from_data(m.to_data()) == m
    True
    """

    shape: tuple[int, int]
    block_size: tuple[int, int]
    dtype: str  # numpy's ``dtype.str``, e.g. "<f8"

    @classmethod
    def of(cls, shape, block_size, dtype) -> MatrixMeta:
        return cls((int(shape[0]), int(shape[1])), (int(block_size[0]), int(block_size[1])), np.dtype(dtype).str)

    @property
    def grid(self) -> tuple[int, int]:
        (rows, cols), (br, bc) = self.shape, self.block_size
        return (-(-rows // br), -(-cols // bc))

    def to_data(self) -> dict:
        return {"shape": list(self.shape), "block_size": list(self.block_size), "dtype": self.dtype}

    @classmethod
    def from_data(cls, d: Mapping) -> MatrixMeta:
        return cls.of(d["shape"], d["block_size"], d["dtype"])


def _frozen(d: Mapping) -> Mapping:
    return types.MappingProxyType(dict(d))


@dataclasses.dataclass(frozen=True)
class JobSpec:
    """What an executor needs to turn a stored job into work (see the module docstring for the JSON).

    Attributes
    ----------
    program : str
        The compiled program, ``lambdapack.Program.to_json()`` (its callees inlined).
    params : Mapping[str, int]
        The program's integer parameters, as bound.
    prefixes : Mapping[str, str]
        The key prefix of every tile space of the program (``tile_key``).
    kernels : Mapping[str, Mapping[str, str]]
        The kernel table, encoded (``encode_kernels``): ``{"builtin": name}`` or ``{"pickle": base64}``.
    num_tasks : int
        The number of tasks of the bound program; the job is done when this many have completed.
    scratch : tuple of str
        The tile spaces owned by the job (not given to ``submit``), deleted when it ends.
    check_finite : Mapping[str, str]
        Input matrices whose tiles executors check to be finite, with the name their errors give.
    matrices : Mapping[str, MatrixMeta]
        The tiling of each ``BigMatrix`` given to the job, by parameter name.
    offsets : Mapping[str, tuple[int, int]]
        For each view given to the job, the tile of its parent (under its prefix) that is its tile (0, 0).
    trusted_modules : tuple of str
        Modules (with their submodules) that ``"ref"`` kernels may be imported from, besides the
        built-ins (``core.signing``); stored only when not empty.
    signature : str or None
        The job's signature (``core.signing.sign_description``); None until signed, and not stored then.
    """

    program: str
    params: Mapping[str, int]
    prefixes: Mapping[str, str]
    kernels: Mapping[str, Mapping[str, str]]
    num_tasks: int
    scratch: tuple[str, ...] = ()
    check_finite: Mapping[str, str] = dataclasses.field(default_factory=dict)
    matrices: Mapping[str, MatrixMeta] = dataclasses.field(default_factory=dict)
    trusted_modules: tuple[str, ...] = ()
    signature: str | None = None
    offsets: Mapping[str, tuple[int, int]] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        set_ = object.__setattr__  # frozen: read-only views of private copies
        set_(self, "params", _frozen({k: int(v) for k, v in self.params.items()}))
        set_(self, "prefixes", _frozen(self.prefixes))
        set_(self, "kernels", _frozen({k: _frozen(v) for k, v in self.kernels.items()}))
        set_(self, "num_tasks", int(self.num_tasks))
        set_(self, "scratch", tuple(self.scratch))
        set_(self, "check_finite", _frozen(self.check_finite))
        set_(self, "matrices", _frozen(self.matrices))
        set_(self, "offsets", _frozen({k: (int(v[0]), int(v[1])) for k, v in self.offsets.items()
                                       if tuple(v) != (0, 0)}))
        set_(self, "trusted_modules", tuple(self.trusted_modules))
        set_(self, "_keys", {})  # (tile space, index) -> key, for the tiles seen recently (``tile_key``)

    # ------------------------------------------------------------------ the stored form
    def to_data(self) -> dict:
        """The JSON-ready dict of ``to_json`` (``signature`` only when set)."""
        d = {"version": JOBSPEC_VERSION, "program": self.program, "params": dict(self.params),
             "prefixes": dict(self.prefixes), "kernels": {k: dict(v) for k, v in self.kernels.items()},
             "num_tasks": self.num_tasks, "scratch": list(self.scratch), "check_finite": dict(self.check_finite),
             "matrices": {n: m.to_data() for n, m in self.matrices.items()}}
        if self.offsets:
            d["offsets"] = {k: list(v) for k, v in self.offsets.items()}
        if self.trusted_modules:
            d["trusted_modules"] = list(self.trusted_modules)
        if self.signature is not None:
            d["signature"] = self.signature
        return d

    def to_json(self) -> str:
        """The description as stored in the job record."""
        return json.dumps(self.to_data())

    @classmethod
    def from_json(cls, text: str, job: str | None = None) -> JobSpec:
        """The ``JobSpec`` that ``to_json`` wrote.  ``job`` (the id it is stored under) names the job in errors.

        Raises
        ------
        JobSpecVersionError
            The description is of another version than ``JOBSPEC_VERSION`` (or of none).
        ValueError
            It is not a JSON object.
        """
        what = f"job {job}" if job is not None else "a job"
        try:
            d = json.loads(text)
        except (TypeError, json.JSONDecodeError) as e:
            raise ValueError(f"the description of {what} is not JSON ({e})") from None
        if not isinstance(d, dict):
            raise ValueError(f"the description of {what} is not a JSON object")
        version = d.get("version")
        if version != JOBSPEC_VERSION:
            said = f"version {version!r}" if "version" in d else "no version"
            raise JobSpecVersionError(
                f"the description of {what} has {said}; this numpywren2 reads version {JOBSPEC_VERSION} only "
                "(was the job submitted by another release? run it with that release, or submit it again)")
        return cls(program=d["program"], params=d["params"], prefixes=d["prefixes"], kernels=d["kernels"],
                   num_tasks=d["num_tasks"], scratch=d.get("scratch", ()), check_finite=d.get("check_finite", {}),
                   matrices={n: MatrixMeta.from_data(m) for n, m in d.get("matrices", {}).items()},
                   trusted_modules=d.get("trusted_modules", ()), signature=d.get("signature"),
                   offsets=d.get("offsets", {}))

    # ------------------------------------------------------------------ use
    def bind(self, trusted: Iterable[str] = ()) -> tuple[lp.BoundProgram, dict[str, lp.Kernel]]:
        """The bound program (not validated again: ``submit`` did) and the decoded kernel table; ``"ref"``
        kernels come from the built-ins, ``trusted_modules`` and ``trusted`` only.  Call it on a verified
        description only (``core.signing.verify_description``): it unpickles the user's kernels."""
        kernels = decode_kernels(self.kernels, (*self.trusted_modules, *trusted))
        program = lp.Program.from_json(self.program, kernel_namespace(kernels))
        return program.bind(validate="none", **self.params), kernels

    def tile_key(self, matrix: str, idx: Iterable[int]) -> str:
        """The store key of tile ``idx`` of tile space ``matrix`` (a parameter or local scratch space); a view's
        tile is its parent's, shifted by the view's ``offsets``.  Remembered for the tiles seen recently: an
        executor asks several times per task."""
        try:
            return self._keys[matrix, idx]
        except KeyError:
            pass
        except TypeError:  # an index that is not a tuple
            idx = tuple(idx)
        off = self.offsets.get(matrix)
        key = tile_path(self.prefixes[matrix], idx if off is None or len(idx) != 2 else
                        (idx[0] + off[0], idx[1] + off[1]))
        if len(self._keys) >= 8192:
            self._keys.clear()
        self._keys[matrix, idx] = key
        return key

    def scratch_root(self, job: str) -> str | None:
        """``<job>/`` if every scratch space lives under it (one prefix sweeps them all), else None."""
        root = scratch_prefix(job, "")
        return root if all(self.prefixes[m].startswith(root) for m in self.scratch) else None

    def matrix(self, name: str) -> MatrixMeta | None:
        """The tiling of matrix ``name``; None for a scratch space or a ``TileSpace``."""
        return None if name in self.scratch else self.matrices.get(name)


class KernelOutputError(TypeError, ValueError):
    """A kernel returned something that does not fit the tile slot it writes (wrong type, number of
    outputs, shape or dtype).  A ``TypeError`` and a ``ValueError``, as numpy raises either for such
    mismatches."""


SCRATCH_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def tile_slot(meta: MatrixMeta | None,
              idx: tuple[int, ...]) -> tuple[tuple[int, ...] | None, np.dtype | None, str | None]:
    """``(shape, dtype, problem)`` expected of tile ``idx`` of a matrix described by ``meta``
    (None: a scratch space, no declared tiling).  ``problem`` says why no tile can go there
    (an index outside the matrix's grid).

    A matrix addressed with other than two indices is a tile space kept in a matrix between jobs
    (the SVD keeps its reflectors so): its tiles have no declared shape, only the matrix's dtype.

    >>> meta = MatrixMeta.of((10, 7), (4, 4), np.float32)
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
        return None, np.dtype(meta.dtype), None
    (rows, cols), (br, bc), grid = meta.shape, meta.block_size, meta.grid
    if not (0 <= idx[0] < grid[0] and 0 <= idx[1] < grid[1]):
        return None, None, (f"tile {tuple(idx)} is outside the {grid[0]}x{grid[1]} grid of tiles of this "
                            f"{rows}x{cols} matrix")
    i, j = idx
    return (min(br, rows - i * br), min(bc, cols - j * bc)), np.dtype(meta.dtype), None


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
