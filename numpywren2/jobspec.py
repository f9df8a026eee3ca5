"""The job description stored in the state store: JSON that any executor can turn back into work.

::

    {"program": <Program.to_json()>, "params": {"N": 4},
     "prefixes": {"A": "m-1f..", "L": "m-9c..", "S": "job-ab../S"},
     "kernels": {"chol": {"ref": "numpywren2.kernels:chol"}, "mine": {"pickle": "<base64>"}},
     "num_tasks": 20, "scratch": ["S"]}

Built-in kernels travel by reference; a user's kernels by value (cloudpickle),
so executors need not import the user's modules.
"""

from __future__ import annotations

import base64
import importlib
import json
import sys
import types

import cloudpickle

import lambdapack as lp


def encode_kernels(table: dict[str, lp.Kernel]) -> dict[str, dict]:
    out = {}
    for name, k in table.items():
        mod = getattr(k.fn, "__module__", None) or ""
        if mod.startswith("numpywren2.") and getattr(sys.modules.get(mod), k.fn.__name__, None) is k:
            out[name] = {"ref": f"{mod}:{k.fn.__name__}"}
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
        if "ref" in spec:
            mod, attr = spec["ref"].split(":")
            out[name] = getattr(importlib.import_module(mod), attr)
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
