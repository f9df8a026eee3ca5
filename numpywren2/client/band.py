"""The second stage of the band SVD: the singular values of the band matrix ``band_reduction`` leaves.

One job of ``programs.band_singular_values``: the 2N − 1 band tiles are gathered into LAPACK band
storage up a tree and a single executor task computes all singular values (bandwidth halving by
blocked bulge chasing, then LAPACK ``gbbrd`` and ``bdsqr``: ``numpywren2.core.kernels.band``), O(n²·b)
flops instead of the O(n³) of a dense SVD of the band.  The client reads n numbers.
"""

from __future__ import annotations

import numpy as np

from ..core import programs
from .call import Call
from .matrix import BigMatrix


def band_singular_values(call: Call, B: BigMatrix) -> np.ndarray:
    """All singular values, decreasing, of the n×n upper band matrix ``B`` (bandwidth = its tile size,
    tiles B[k, k] and B[k − 1, k] stored), computed by one job; a numpy array in B's dtype."""
    n, bs, N = B.shape[0], B.block_size[0], B.grid[0]
    S = call.empty((1, n), (1, n), B.dtype)
    call.run(programs.band_singular_values, B=B, S=S, N=N, BS=bs)
    s = S.numpy().ravel()
    call.delete(S)
    return s
