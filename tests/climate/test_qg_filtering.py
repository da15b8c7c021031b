"""Filtering and coarse-graining of QG states (operators 1 and 2 of Ross et al. 2023) and the
sub-grid PV forcing: agreement with the paper's code (transcribed in NumPy) and with
pyqg-jax's tendencies, projection properties and bad input."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
from hybrax.climate import GaussianSpectralCoarsener, SharpSpectralCoarsener, TwoLayerQG
from hybrax.core import mul
from hybrax.grids import Grid

FINE, COARSE = 128, 64


def _relative(a, b):
    return float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))


@eqx.filter_jit
def _forcing(operator, fine, coarse, state):
    return operator.subgrid_forcing(fine, coarse, state)


@eqx.filter_jit
def _coarsen(operator, q):
    return operator(q)


def _ross_coarsen(var, nx_coarse, spectral_filter):
    """pyqg_parameterization_benchmarks' ``SpectralCoarsener.coarsen`` (NumPy, unnormalised
    FFTs as in pyqg): truncate, filter, divide by the grid ratio squared, back to the grid."""
    var = np.asarray(var)
    vh = var if np.iscomplexobj(var) else np.fft.rfftn(var, axes=(-2, -1))
    nk = nx_coarse // 2
    trunc = np.hstack((vh[:, :nk, : nk + 1], vh[:, -nk:, : nk + 1]))
    ratio = (vh.shape[-2]) / nx_coarse
    return np.fft.irfftn(trunc * spectral_filter / ratio**2, axes=(-2, -1))


def _pyqg_jax_filters(pyqg_jax):
    """Operator 1's and 2's filters on the coarse grid, from pyqg-jax's coarse model."""
    with jax.numpy_dtype_promotion("standard"):
        m2 = pyqg_jax.qg_model.QGModel(nx=COARSE, precision=pyqg_jax.state.Precision.DOUBLE)
        sharp = np.asarray(m2.filtr)
        gaussian = np.exp(-(np.asarray(m2.wv) ** 2) * (2 * float(m2.dx)) ** 2 / 24)
    return {"sharp": sharp, "gaussian": gaussian}


def _operator(which):
    fine, coarse = Grid((FINE, FINE), 1e6), Grid((COARSE, COARSE), 1e6)
    cls = SharpSpectralCoarsener if which == "sharp" else GaussianSpectralCoarsener
    return cls(fine, coarse)


@pytest.mark.parametrize("which", ["sharp", "gaussian"])
def test_coarsening_matches_ross_et_al_operators(which, random_qg_pv):
    pyqg_jax = pytest.importorskip("pyqg_jax")
    spectral_filter = _pyqg_jax_filters(pyqg_jax)[which]
    q = jnp.asarray(random_qg_pv(FINE, peak=40.0))  # energy up to the fine grid's small scales
    operator = _operator(which)
    ours = _coarsen(operator, q)
    assert ours.shape == (2, COARSE, COARSE)
    assert _relative(ours, _ross_coarsen(q, COARSE, spectral_filter)) < 1e-13
    # the coarse state is the coarse model's state of that field
    coarse_model = TwoLayerQG.eddy(COARSE)
    state = operator.coarse_state(TwoLayerQG.eddy(FINE).state_from_pv(q))
    assert _relative(coarse_model.pv(state), ours) < 1e-13


@pytest.mark.parametrize("which", ["sharp", "gaussian"])
def test_subgrid_forcing_matches_ross_et_al_from_pyqg_jax_tendencies(which, random_qg_pv):
    pyqg_jax = pytest.importorskip("pyqg_jax")
    spectral_filter = _pyqg_jax_filters(pyqg_jax)[which]
    q = jnp.asarray(random_qg_pv(FINE, peak=30.0))
    operator = _operator(which)
    coarse_q = _ross_coarsen(q, COARSE, spectral_filter)
    with jax.numpy_dtype_promotion("standard"):

        def dqhdt(nx, pv):
            model = pyqg_jax.qg_model.QGModel(nx=nx, precision=pyqg_jax.state.Precision.DOUBLE)
            inner = model.create_initial_state(jax.random.key(0)).update(q=pv)
            return model.get_updates(inner).qh

        fine_tendency = jax.jit(dqhdt, static_argnums=0)(FINE, q)
        coarse_tendency = jax.jit(dqhdt, static_argnums=0)(COARSE, jnp.asarray(coarse_q))
    # q_forcing_total = coarsen(m1.dqhdt) - to_real(m2.dqhdt)
    reference = _ross_coarsen(fine_tendency, COARSE, spectral_filter) - np.fft.irfftn(
        np.asarray(coarse_tendency), axes=(-2, -1)
    )
    fine, coarse = TwoLayerQG.eddy(FINE), TwoLayerQG.eddy(COARSE)
    forcing = _forcing(operator, fine, coarse, fine.state_from_pv(q))
    assert _relative(forcing, reference) < 1e-10
    # the forcing is a sizeable part of the coarse tendency at these scales
    coarse_rate = np.fft.irfftn(np.asarray(coarse_tendency), axes=(-2, -1))
    assert 0.01 < _relative(forcing, coarse_rate) < 2


def test_resolved_fields_pass_the_sharp_operator_unchanged_and_have_no_forcing(random_qg_pv):
    # A field with modes |n| <= 8 only: its advective products reach |n| <= 16, inside the
    # band where the coarse model's filter is 1 (|n| <= 0.65 * 32), so operator 1 is exact.
    q = jnp.asarray(random_qg_pv(FINE, seed=3, peak=3.0))
    fine, coarse = TwoLayerQG.eddy(FINE), TwoLayerQG.eddy(COARSE)
    state = fine.state_from_pv(q)
    ky, kx = (np.broadcast_to(k, fine.grid.spectral_shape) for k in fine.grid.numpy_wavenumbers())
    low = (np.maximum(np.abs(kx), np.abs(ky)) * 1e6 / (2 * np.pi) <= 8).astype(np.float64)
    state = hybrax.grids.SpectralState(mul(jnp.asarray(low), state.field_hat), state.time)
    q = fine.pv(state)
    sharp, gaussian = _operator("sharp"), _operator("gaussian")
    assert _relative(_coarsen(sharp, q), q[:, ::2, ::2]) < 1e-13
    rate = eqx.filter_jit(coarse.tendency)(sharp.coarse_state(state), 0.0).field_hat
    scale = float(jnp.linalg.norm(coarse.grid.irfft(rate, norm="forward")))
    assert float(jnp.linalg.norm(_forcing(sharp, fine, coarse, state))) < 1e-12 * scale
    # the Gaussian filter does not commute with the advection: a forcing remains
    assert float(jnp.linalg.norm(_forcing(gaussian, fine, coarse, state))) > 1e-4 * scale


def test_gaussian_width_is_a_leaf_and_bad_input_is_reported(random_qg_pv):
    fine, coarse = Grid((FINE, FINE), 1e6), Grid((COARSE, COARSE), 1e6)
    q = jnp.asarray(random_qg_pv(FINE, seed=4))
    narrow, wide = (GaussianSpectralCoarsener(fine, coarse, w * coarse.spacing[1]) for w in (2, 4))
    assert float(jnp.var(_coarsen(wide, q))) < float(jnp.var(_coarsen(narrow, q)))  # a leaf
    with pytest.raises(hybrax.ConfigurationError, match="coarse grid must cover"):
        SharpSpectralCoarsener(coarse, fine)
    with pytest.raises(hybrax.ConfigurationError, match="filter_width"):
        GaussianSpectralCoarsener(fine, coarse, -1.0)
    with pytest.raises(hybrax.ConfigurationError, match="fine grid's shape"):
        SharpSpectralCoarsener(fine, coarse)(q[:, ::2, ::2])
    model = TwoLayerQG.eddy(COARSE)
    with pytest.raises(hybrax.ConfigurationError, match="fine_model must be a TwoLayerQG"):
        SharpSpectralCoarsener(fine, coarse).subgrid_forcing(model, model, model.initial_state())
