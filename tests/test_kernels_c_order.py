"""The C-order BLAS forms (``kernels._lapack.gemm_c``, ``trsm_c``, ``syrk_lower_c``, ``potrf_lower_c``) and the
kernels built on them: right answers against numpy for every transpose/side/triangle flag, ragged shapes, float32
and float64, read-only C-ordered inputs (as tiles come from the store), and C-ordered results (the store would
transpose others).  Each test runs twice: on scipy's OpenBLAS (``NPW_BLAS=openblas``) and on MKL (``NPW_BLAS=mkl``,
the ``mkl`` package of the test extra on x86-64; skipped elsewhere, where that extra does not install it)."""

from __future__ import annotations

import itertools
import platform

import numpy as np
import pytest

from numpywren2.core.kernels import _mkl
from numpywren2.core.kernels import blas as kernels
from numpywren2.core.kernels._lapack import c_order, gemm_c, potrf_lower_c, syrk_lower_c, trsm_c

DTYPES = (np.float64, np.float32)
SHAPES = ((7, 5, 3), (33, 17, 65), (1, 9, 1), (64, 64, 64))


@pytest.fixture(autouse=True, params=["openblas", "mkl"])
def blas(request, monkeypatch):
    """Every test on both BLAS: MKL must be there on x86-64 Linux (the test extra installs it)."""
    if request.param == "mkl" and _mkl.library_path() is None:
        if platform.machine() == "x86_64" and platform.system() == "Linux":
            pytest.fail("the mkl package of the test extra is not installed: pip install -e '.[test]'")
        pytest.skip(f"no mkl package for {platform.system()} {platform.machine()}")
    monkeypatch.setenv(_mkl.BLAS_ENV, request.param)
    assert (_mkl.library() is not None) == (request.param == "mkl")
    return request.param


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



@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,k", ((1, 1), (9, 4), (37, 50), (64, 64)))
def test_syrk_lower_c_writes_the_lower_triangle_and_leaves_the_upper(dtype, n, k):
    rng = np.random.default_rng(n * 7 + k)
    a, c = _tile(rng, (n, k), dtype), _tile(rng, (n, n), dtype)
    got = syrk_lower_c(-1.0, a, 1.0, c_order(c))
    want = c.astype(np.float64) - a.astype(np.float64) @ a.T.astype(np.float64)
    assert got.dtype == dtype and got.flags.c_contiguous
    assert _gemm_error(np.tril(got), np.tril(want), a, a, k, dtype) < 10
    assert np.array_equal(np.triu(got, 1), np.triu(c, 1))  # the strict upper triangle as it was
    got = kernels.syrk.fn(c, a)
    assert _gemm_error(np.tril(got), np.tril(want), a, a, k, dtype) < 10


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", (1, 5, 67, 128))
def test_chol_and_the_panel_kernels_of_a_cholesky_match_numpy(dtype, n):
    rng = np.random.default_rng(n)
    g = rng.standard_normal((n, n))
    spd = (g @ g.T + n * np.eye(n)).astype(dtype)
    junk = spd + np.triu(rng.standard_normal((n, n)), 1).astype(dtype)  # only the lower triangle is read
    junk.flags.writeable = False
    L = kernels.chol.fn(junk)
    assert L.dtype == dtype and L.flags.c_contiguous and not np.triu(L, 1).any()
    eps = np.finfo(dtype).eps
    # backward error of the factorization, scaled by n eps
    assert np.linalg.norm(L.astype(np.float64) @ L.T.astype(np.float64) - spd) / (np.linalg.norm(spd) * n * eps) < 10
    a = _tile(rng, (n + 3, n), dtype)
    x = kernels.trsm.fn(L, a)  # a @ inv(L).T
    assert x.dtype == dtype and x.flags.c_contiguous and x.shape == a.shape
    err = np.linalg.norm(x.astype(np.float64) @ L.T.astype(np.float64) - a) / (
        np.linalg.norm(L) * np.linalg.norm(x) * n * eps)
    assert err < 10
    c, b = _tile(rng, (n + 3, n + 1), dtype), _tile(rng, (n + 1, n), dtype)
    got = kernels.gemm_nt.fn(c, a, b)
    assert _gemm_error(got, c.astype(np.float64) - a.astype(np.float64) @ b.T.astype(np.float64), a, b, n, dtype) < 10
    got = kernels.matmul.fn(a, b.T.copy())
    assert got.dtype == dtype and _gemm_error(got, a.astype(np.float64) @ b.T.astype(np.float64), a, b, n, dtype) < 10


def test_chol_of_a_tile_that_is_not_positive_definite_names_the_leading_minor():
    bad = np.diag([4.0, 1.0, -2.0, 3.0])
    with pytest.raises(np.linalg.LinAlgError, match="leading minor of order 3 is not positive"):
        kernels.chol.fn(bad)
    assert potrf_lower_c(c_order(bad))[1] == 3


@pytest.mark.parametrize("row", [0, 2, 4])
def test_chol_of_a_tile_with_a_nan_is_nan_from_that_row_on_and_finite_before(row):
    """NaN in, NaN out on either BLAS (OpenBLAS carries a NaN pivot on, MKL stops at it)."""
    a = np.diag([4.0, 9.0, 16.0, 25.0, 36.0])
    a[row, max(row - 1, 0)] = np.nan
    got = kernels.chol.fn(a)
    assert np.isnan(got[row:, row - 1 if row else 0]).any() and np.isnan(got[row, row])
    np.testing.assert_array_equal(got[:row, :row], np.diag([2.0, 3.0, 4.0, 5.0, 6.0])[:row, :row])
    assert not np.isnan(np.triu(got, 1)).any()
    bad = np.diag([4.0, -1.0, 16.0, 25.0, 36.0])
    bad[3, 2] = np.nan  # not positive definite before the NaN row: that is what is said
    with pytest.raises(np.linalg.LinAlgError, match="leading minor of order 2 is not positive"):
        kernels.chol.fn(bad)


def test_operands_mkl_does_not_take_go_through_scipy_with_the_same_answer():
    """Fortran-ordered, mixed-dtype and complex operands: scipy's wrappers, the right answer either way."""
    rng = np.random.default_rng(3)
    a, b = np.asfortranarray(rng.standard_normal((6, 4))), rng.standard_normal((4, 5))
    c = rng.standard_normal((6, 5))
    assert _mkl.routines(c, a, b) is None
    np.testing.assert_allclose(gemm_c(1.0, a, b, 1.0, c_order(c)), c + a @ b, rtol=1e-12)
    a32 = a.astype(np.float32)
    assert _mkl.routines(c, a32, b) is None
    z = (rng.standard_normal((4, 4)) + 1j * rng.standard_normal((4, 4)))
    assert _mkl.routines(z) is None
    np.testing.assert_allclose(kernels.matmul.fn(z, z), z @ z, rtol=1e-12)


def test_npw_blas_choices_and_what_the_kernels_say_they_use(monkeypatch, blas):
    assert _mkl.describe().startswith("MKL " if blas == "mkl" else "scipy's BLAS (OpenBLAS)")
    monkeypatch.setenv(_mkl.BLAS_ENV, " MKL ")
    assert _mkl.choice() == "mkl"
    monkeypatch.setenv(_mkl.BLAS_ENV, "atlas")
    with pytest.raises(ValueError, match=r"NPW_BLAS='atlas': expected one of auto, mkl, openblas"):
        _mkl.library()
    monkeypatch.setattr(_mkl, "_loaded", {"lib": None})  # as in an environment without the mkl package
    monkeypatch.setattr(_mkl, "library_path", lambda: None)
    monkeypatch.setenv(_mkl.BLAS_ENV, "mkl")
    with pytest.raises(RuntimeError, match=r"NPW_BLAS=mkl but the mkl package is not installed .*pip install"):
        gemm_c(1.0, np.eye(2), np.eye(2), 0.0, np.zeros((2, 2)))
    monkeypatch.setenv(_mkl.BLAS_ENV, "auto")
    assert _mkl.library() is None and _mkl.describe() == "scipy's BLAS (OpenBLAS); mkl not installed"
    np.testing.assert_array_equal(gemm_c(1.0, np.eye(2), np.eye(2), 0.0, np.zeros((2, 2))), np.eye(2))


@pytest.mark.parametrize("vendor", ["GenuineIntel", "AuthenticAMD", ""])
def test_auto_uses_mkl_on_intel_cpus_only_and_mkl_forces_it(monkeypatch, blas, vendor):
    """On an AMD EPYC MKL's one-thread panel kernels ran 5-15 % slower than OpenBLAS's (bench/RESULTS.md)."""
    if blas != "mkl":
        pytest.skip("the choice between the two needs MKL installed")
    monkeypatch.setattr(_mkl, "cpu_vendor", lambda: vendor)
    monkeypatch.setenv(_mkl.BLAS_ENV, "auto")
    if vendor == "GenuineIntel":
        assert _mkl.library() is not None and _mkl.describe().startswith("MKL ")
    else:
        assert _mkl.library() is None
        assert _mkl.describe() == ("scipy's BLAS (OpenBLAS); mkl installed, used on Intel CPUs only by default "
                                   f"(this one: {vendor or 'unknown'}; NPW_BLAS=mkl uses it)")
    monkeypatch.setenv(_mkl.BLAS_ENV, "mkl")
    assert _mkl.library() is not None


def test_cpu_vendor_is_what_the_kernel_reports():
    with open("/proc/cpuinfo") as f:
        vendors = {line.partition(":")[2].strip() for line in f if line.startswith("vendor_id")}
    assert _mkl.cpu_vendor() in vendors if vendors else _mkl.cpu_vendor() == ""
