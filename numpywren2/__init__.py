"""numpywren2: tiled dense linear algebra on elastic, stateless compute.

The package has three parts (``docs/architecture.md``): ``numpywren2.core`` (backends, job description,
kernels, programs: what executors need), ``numpywren2.client`` (runtimes, jobs, ``BigMatrix``, the
numpy-style API) and ``numpywren2.testing`` (test support).  The user API below is the client's; it is
loaded on first use, so that an executor, which imports ``numpywren2.core``, never loads the client
(or the provisioner the client drives).

>>> import numpywren2 as npw
>>> npw.cholesky.__module__, npw.kernels.__name__
('numpywren2.client.linalg', 'numpywren2.core.kernels')
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_CLIENT = (
    "attach",
    "BigMatrix",
    "cho_factor",
    "cho_solve",
    "cholesky",
    "cond",
    "config",
    "current_runtime",
    "det",
    "diag",
    "eigh",
    "eigvalsh",
    "eye",
    "from_dask",
    "gemm",
    "inv",
    "Job",
    "JobFailedError",
    "JobInfo",
    "jobs",
    "last_job",
    "ls",
    "lstsq",
    "lu",
    "lu_factor",
    "lu_solve",
    "matmul",
    "matrix_rank",
    "MatrixInfo",
    "MatrixNotFoundError",
    "MatrixView",
    "norm",
    "open",
    "PCA",
    "pca",
    "pinv",
    "Plan",
    "plan",
    "qr",
    "random",
    "Runtime",
    "runtime",
    "slogdet",
    "solve",
    "solve_triangular",
    "submit",
    "svd",
    "TileSpace",
    "tsqr",
    "zeros",
)
_CORE = ("kernels", "programs")

__all__ = [*_CLIENT, *_CORE]


def __getattr__(name: str):
    if name in _CLIENT:
        value = getattr(importlib.import_module("numpywren2.client"), name)
    elif name in _CORE:
        value = importlib.import_module(f"numpywren2.core.{name}")
    else:
        raise AttributeError(f"module 'numpywren2' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
