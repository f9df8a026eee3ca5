"""SVD tile kernels: truncated and merged left singular vectors, the factors of the tree SVD."""

from __future__ import annotations

import numpy as np

import lambdapack as lp


def _scaled_left_vectors(x: np.ndarray, rank: int) -> np.ndarray:
    u, s, _vt = np.linalg.svd(x, full_matrices=False)
    r = min(rank, s.size)
    return u[:, :r] * s[:r]


@lp.kernel(flops=lambda a, rank: 4 * a.shape[0] * a.shape[1] ** 2)
def truncated_left_svd(a: np.ndarray, rank: int) -> np.ndarray:
    """``U_r diag(s_r)``: the leading ``rank`` left singular vectors of a column block, scaled."""
    return _scaled_left_vectors(a, rank)


@lp.kernel(flops=lambda a, b, rank: 4 * a.shape[0] * (a.shape[1] + b.shape[1]) ** 2)
def merge_left_svd(a: np.ndarray, b: np.ndarray, rank: int) -> np.ndarray:
    """Merge of two scaled truncated SVDs: ``U_r diag(s_r)`` of ``[a, b]``."""
    return _scaled_left_vectors(np.hstack([a, b]), rank)


@lp.kernel(flops=lambda us, k: 0)
def singular_values_of(us: np.ndarray, k: int) -> np.ndarray:
    """The first ``k`` singular values (a 1×k row) from ``U diag(s)``: its column norms."""
    return np.linalg.norm(us[:, :k], axis=0)[None, :]


@lp.kernel(flops=lambda us, start, rows, k: 0)
def left_vectors_of(us: np.ndarray, start: int, rows: int, k: int) -> np.ndarray:
    """Rows ``start:start+rows`` of the first ``k`` left singular vectors, from ``U diag(s)``."""
    s = np.linalg.norm(us[:, :k], axis=0)
    return us[start:start + rows, :k] / np.where(s > 0, s, 1.0)


@lp.kernel(flops=lambda us, a, k: 2 * us.shape[0] * a.shape[1] * k)
def right_vectors_of(us: np.ndarray, a: np.ndarray, k: int) -> np.ndarray:
    """``Vᵀ`` of the columns ``a`` for the first ``k`` triplets: ``diag(s)⁻² (U diag(s))ᵀ a``."""
    s = np.linalg.norm(us[:, :k], axis=0)
    return (us[:, :k].T @ a) / np.where(s > 0, s * s, 1.0)[:, None]
