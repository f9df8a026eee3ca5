"""The C-order BLAS forms (``kernels._lapack.gemm_c``, ``trsm_c``) and the kernels built on them: right
answers against numpy for every transpose/side/triangle flag, ragged shapes, float32 and float64, read-only
C-ordered inputs (as tiles come from the store), and C-ordered results (the store would transpose others)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from numpywren2.core.kernels import blas as kernels
from numpywren2.core.kernels._lapack import c_order, gemm_c, trsm_c

DTYPES = (np.float64, np.float32)
SHAPES = ((7, 5, 3), (33, 17, 65), (1, 9, 1), (64, 64, 64))


def _tile(rng, shape, dtype):
    """A read-only C-ordered tile, as the store returns one."""
    t = rng.standard_normal(shape).astype(dtype)
    t.flags.writeable = False
    return t


def _gemm_error(got, want, a, b, k, dtype):
    """‖got − want‖ / (‖a‖‖b‖ k eps): the forward error of a product, scaled."""
    scale = np.linalg.norm(a) * np.linalg.norm(b) * max(k, 1) * np.finfo(dtype).eps
    return np.linalg.norm(got.astype(np.float64) - want) / scale


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,k,n", SHAPES)
@pytest.mark.parametrize("trans_a,trans_b", list(itertools.product((0, 1), repeat=2)))
def test_gemm_c_matches_numpy(dtype, m, k, n, trans_a, trans_b):
    rng = np.random.default_rng(m * 100 + k * 10 + n)
    a = _tile(rng, (k, m) if trans_a else (m, k), dtype)
    b = _tile(rng, (n, k) if trans_b else (k, n), dtype)
    c = _tile(rng, (m, n), dtype)
    opa = a.T.astype(np.float64) if trans_a else a.astype(np.float64)
    opb = b.T.astype(np.float64) if trans_b else b.astype(np.float64)
    out = c_order(c)
    got = gemm_c(-0.5, a, b, 2.0, out, trans_a=trans_a, trans_b=trans_b)
    want = -0.5 * opa @ opb + 2.0 * c.astype(np.float64)
    assert got.dtype == dtype and got.shape == (m, n) and got.flags.c_contiguous
    assert _gemm_error(got, want, a, b, k, dtype) < 10
    assert np.array_equal(c, out) or np.shares_memory(got, out)  # written in place, or out untouched


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("side,lower,trans,diag", list(itertools.product((0, 1), repeat=4)))
def test_trsm_c_solves_the_equation(dtype, side, lower, trans, diag):
    rng = np.random.default_rng(side * 8 + lower * 4 + trans * 2 + diag)
    m, n = 13, 6
    k = m if side == 0 else n
    t = rng.standard_normal((k, k)).astype(dtype) + k * np.eye(k, dtype=dtype)
    t.flags.writeable = False
    r = _tile(rng, (m, n), dtype)
    tri = (np.tril if lower else np.triu)(t.astype(np.float64))
    if diag:
        np.fill_diagonal(tri, 1.0)
    op = tri.T if trans else tri
    x = trsm_c(1.0, t, c_order(r), side=side, lower=lower, trans=trans, diag=diag)
    assert x.dtype == dtype and x.shape == (m, n) and x.flags.c_contiguous
    lhs = op @ x.astype(np.float64) if side == 0 else x.astype(np.float64) @ op
    # backward error of the triangular solve, scaled by k eps
    err = np.linalg.norm(lhs - r) / (np.linalg.norm(op) * np.linalg.norm(x) * k * np.finfo(dtype).eps)
    assert err < 10


@pytest.mark.parametrize("dtype", DTYPES)
def test_kernels_on_c_order_tiles_return_c_ordered_right_answers(dtype):
    rng = np.random.default_rng(5)
    m, k, n = 20, 12, 9
    a, b, c = _tile(rng, (m, k), dtype), _tile(rng, (k, n), dtype), _tile(rng, (m, n), dtype)
    at = np.ascontiguousarray(a.T)
    at.flags.writeable = False
    a64, b64, c64 = (x.astype(np.float64) for x in (a, b, c))
    cases = {
        "gemm_add": (kernels.gemm_add.fn(c, a, b), c64 + a64 @ b64),
        "gemm_tn_add": (kernels.gemm_tn_add.fn(c, at, b), c64 + a64 @ b64),
        "gemm_update": (kernels.gemm_update.fn(c, a, b, 0), c64 - a64 @ b64),
        "gemm_update trans": (kernels.gemm_update.fn(c, at, b, 1), c64 - a64 @ b64),
    }
    for name, (got, want) in cases.items():
        assert got.dtype == dtype and got.flags.c_contiguous, name
        assert _gemm_error(got, want, a, b, k, dtype) < 10, name
    t = np.tril(rng.standard_normal((m, m))).astype(dtype) + m * np.eye(m, dtype=dtype)
    rhs = _tile(rng, (m + 3, n), dtype)  # more rows than t: the first m are solved for
    x = kernels.trsm_left.fn(t, rhs, 1, 1, 0, 0, 0)
    assert x.flags.c_contiguous and x.shape == (m, n)
    np.testing.assert_allclose(np.tril(t).T.astype(np.float64) @ x, rhs[:m], atol=50 * m * np.finfo(dtype).eps)

