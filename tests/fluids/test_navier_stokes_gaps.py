"""NavierStokes2D gaps (issue 13): curl helper, spectral input, mean flow, dealiasing
choice, shape-(1,) parameters, velocity-form entry and exit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
from hybrax.fluids import (
    NavierStokes2D,
    SmoothFilter,
    TwoThirdsRule,
    velocity_from_vorticity,
    vorticity_from_velocity,
)
from hybrax.grids import Grid

N = 32


@pytest.fixture(scope="module")
def model():
    return NavierStokes2D(N, viscosity=1e-2)


@pytest.fixture(scope="module")
def state(model):
    return model.initial_state(dtype=jnp.float64, max_velocity=1.0)


def _shift(grid, field_hat, displacement):
    """``field_hat`` translated by ``displacement`` (exact spectral shift; the Nyquist
    modes are not moved, as in the model)."""
    kx, ky = grid.numpy_wavenumbers()
    nx, ny = grid.shape
    kx = np.where(np.abs(kx) * grid.domain_length[0] / (2 * np.pi) == nx // 2, 0, kx)
    ky = np.where(np.abs(ky) * grid.domain_length[1] / (2 * np.pi) == ny // 2, 0, ky)
    phase = -(displacement[0] * kx + displacement[1] * ky)
    return field_hat * jax.lax.complex(jnp.cos(phase), jnp.sin(phase))


# ------------------------------------------------------------------ curl helper
def test_curl_round_trip_on_band_limited_field(model, state):
    grid = model.grid
    velocity = velocity_from_vorticity(grid, state.field_hat)
    w = vorticity_from_velocity(grid, velocity)  # physical in, physical out
    assert w.shape == grid.shape and w.dtype == jnp.float64
    np.testing.assert_allclose(w, model.vorticity(state), atol=1e-12)
    w_hat = vorticity_from_velocity(grid, grid.to_spectral(velocity))  # spectral in/out
    np.testing.assert_allclose(w_hat, state.field_hat, atol=1e-13)
    np.testing.assert_allclose(velocity_from_vorticity(grid, w_hat), velocity, atol=1e-12)


def test_curl_drops_nyquist_and_mean():
    grid = Grid((16, 16))
    x, y = grid.coordinates(jnp.float64)
    nyquist = jnp.stack([jnp.cos(8 * y), jnp.cos(8 * x)])  # derivative not a real field
    uniform = jnp.ones((2, 16, 16))
    np.testing.assert_allclose(vorticity_from_velocity(grid, nyquist + uniform), 0, atol=1e-13)
    shear = jnp.stack([jnp.sin(3 * y), jnp.zeros_like(x)])
    np.testing.assert_allclose(
        vorticity_from_velocity(grid, shear), -3 * jnp.cos(3 * y), atol=1e-12
    )
    batch = jnp.stack([shear, 2 * shear])  # leading axes are kept
    assert vorticity_from_velocity(grid, batch).shape == (2, 16, 16)


def test_curl_bad_input_names_velocity():
    grid = Grid((16, 16))
    with pytest.raises(
        hybrax.ConfigurationError, match=r"velocity must be \(u, v\).*\(2, 16, 14\)"
    ):
        vorticity_from_velocity(grid, jnp.zeros((2, 16, 14)))
    with pytest.raises(hybrax.ConfigurationError, match=r"complex.*2, 16, 9"):
        vorticity_from_velocity(grid, jnp.zeros((2, 16, 16), jnp.complex128))
    with pytest.raises(hybrax.ConfigurationError, match="2D"):
        vorticity_from_velocity(Grid((16,)), jnp.zeros((2, 16, 16)))


# ------------------------------------------------------- spectral/velocity entry
def test_state_from_vorticity_accepts_spectral(model, state):
    w = model.vorticity(state)
    from_physical = model.state_from_vorticity(w, 0.5)
    from_spectral = model.state_from_vorticity(model.grid.to_spectral(w), 0.5)
    assert jnp.all(from_physical.field_hat == from_spectral.field_hat)
    assert from_spectral.time == 0.5
    shifted = model.grid.to_spectral(w + 3.0)  # the mean is removed either way
    assert model.state_from_vorticity(shifted).field_hat[0, 0] == 0


@pytest.mark.parametrize(
    "bad",
    [
        jnp.zeros((N, N // 2 + 1)),  # real with the spectral shape
        jnp.zeros((N, N), jnp.complex128),  # complex with the physical shape
        jnp.zeros((N, N + 2)),
    ],
)
def test_state_from_vorticity_bad_shape_or_dtype(model, bad):
    shapes = rf"\({N}, {N}\).*\({N}, {N // 2 + 1}\)"
    with pytest.raises(hybrax.ConfigurationError, match="vorticity must be a real .*" + shapes):
        model.state_from_vorticity(bad)


def test_state_from_vorticity_wrong_type(model, wrong_type):
    with wrong_type("vorticity", hybrax.ConfigurationError, "vorticity must be"):
        model.state_from_vorticity(jnp.zeros((N, N), jnp.int32))


def test_velocity_form_round_trip_with_mean_flow(state):
    model = NavierStokes2D(N, viscosity=1e-2, mean_flow=(0.5, -0.25))
    u = velocity_from_vorticity(model.grid, state.field_hat)  # zero mean, band-limited
    expected = u + jnp.array([0.5, -0.25])[:, None, None]
    back = model.to_velocity(model.from_velocity(expected))  # the mean is the model's
    np.testing.assert_allclose(back, expected, atol=1e-12)
    # a mean the vorticity state cannot hold is an error, not silently dropped
    with pytest.raises(
        hybrax.ConfigurationError,
        match=r"mean \(U, V\) = \(2\.0, 2\.0\).*"
        r"mean_flow is \(0\.5, -0\.25\).*mean_flow=\(2\.0, 2\.0\)",
    ):
        model.from_velocity(u + 2.0)
    with pytest.raises(hybrax.ConfigurationError, match="spatial mean"):  # spectral input too
        model.from_velocity(model.grid.to_spectral(u + 2.0))
    with pytest.raises(hybrax.ConfigurationError, match=r"mean_flow is \(0\.0, 0\.0\)"):
        NavierStokes2D(N).from_velocity(u + 1.0)
    jax.jit(lambda v: model.from_velocity(v))(u + 2.0)  # traced: check skipped, no crash
    spectral = NavierStokes2D(N, viscosity=1e-2).from_velocity(model.grid.to_spectral(u))
    np.testing.assert_allclose(spectral.field_hat, state.field_hat, atol=1e-13)
    assert float(model.max_velocity(state)) == pytest.approx(
        float(jnp.max(jnp.linalg.norm(expected, axis=0)))
    )
    with pytest.raises(hybrax.ConfigurationError, match="from_velocity: velocity"):
        model.from_velocity(jnp.zeros((2, N, N - 2)))


# --------------------------------------------------------------------- mean flow
def test_mean_flow_is_a_galilean_shift(model, state):
    """With ETDRK4 the mean flow sits in the (complex) linear operator; the run with it is
    the run without it translated by U t, up to ETDRK4's O(dt^4) coupling error (exact,
    to round-off, when the nonlinear term vanishes: see the next test)."""

    @jax.jit
    def run(flow, dt):
        moving = NavierStokes2D(model.grid, viscosity=1e-2, mean_flow=flow)
        return hybrax.rollout(hybrax.ETDRK4(moving, dt), state, 10, save_every=None)[0]

    flow = jnp.array([0.7, -0.3])
    errors = []
    for dt in (0.02, 0.01):
        final, still = run(flow, dt), run(jnp.zeros(2), dt)
        reference = _shift(model.grid, still.field_hat, flow * final.time)
        scale = jnp.max(jnp.abs(reference))
        errors.append(float(jnp.max(jnp.abs(final.field_hat - reference)) / scale))
        assert jnp.max(jnp.abs(final.field_hat - still.field_hat)) > 0.05 * scale  # it moved
    assert errors[0] < 1e-7
    assert errors[1] < errors[0] / 10  # fourth order in dt (half dt, half the time: /32)


@pytest.mark.parametrize("stepper", [hybrax.ETDRK4, hybrax.CrankNicolsonRK4])
def test_mean_flow_shift_exact_without_nonlinearity(stepper):
    """Taylor–Green (u . grad w = 0): translated by U t to round-off by ETDRK4; by
    Crank–Nicolson to its second-order phase error."""
    model = NavierStokes2D(16, viscosity=1e-2, mean_flow=(1.0, 0.5))
    x, y = model.grid.coordinates(jnp.float64)
    state = model.state_from_vorticity(2 * jnp.cos(x) * jnp.cos(y))
    final, _ = hybrax.rollout(stepper(model, 0.05), state, 8, save_every=None)
    t = float(final.time)
    exact = 2 * jnp.cos(x - t) * jnp.cos(y - 0.5 * t) * np.exp(-2e-2 * t)
    tolerance = 1e-12 if stepper is hybrax.ETDRK4 else 1e-3
    np.testing.assert_allclose(model.vorticity(final), exact, atol=tolerance)


def test_mean_flow_gradient_matches_finite_differences():
    grid = Grid((8, 8))
    w0 = jax.random.normal(jax.random.key(1), (8, 8), jnp.float64)
    weight = jax.random.normal(jax.random.key(2), (8, 8), jnp.float64)

    def loss(flow):
        model = NavierStokes2D(grid, viscosity=5e-2, mean_flow=flow)
        final, _ = hybrax.rollout(
            hybrax.ETDRK4(model, 0.1), model.state_from_vorticity(w0), 3, save_every=None
        )
        return jnp.sum(weight * model.vorticity(final))

    flow, direction = jnp.array([0.4, -0.2]), jnp.array([0.6, 0.8])
    value, gradient = jax.jit(jax.value_and_grad(loss))(flow)
    eps = 1e-6
    fd = (loss(flow + eps * direction) - loss(flow - eps * direction)) / (2 * eps)
    assert abs(float(value)) > 1e-3
    assert float(gradient @ direction) == pytest.approx(float(fd), rel=1e-6, abs=1e-9)
    assert float(jnp.abs(gradient @ direction)) > 1e-3  # not a vacuous check


def test_mean_flow_bad_input():
    with pytest.raises(hybrax.ConfigurationError, match=r"mean_flow must be \(U, V\).*\(3,\)"):
        NavierStokes2D(16, mean_flow=(1.0, 0.0, 0.0))
    with pytest.raises(hybrax.ConfigurationError, match="mean_flow must be finite"):
        NavierStokes2D(16, mean_flow=(float("nan"), 0.0))


# ------------------------------------------------------------------- dealiasing
def test_default_dealiasing_bit_identical_to_the_two_thirds_rule(model, state):
    """The default tendency is the 2/3-rule Basdevant form, operation for operation."""
    grid, w_hat = model.grid, state.field_hat
    kx, ky = (np.broadcast_to(k, grid.spectral_shape) for k in grid.numpy_wavenumbers())
    inverse_k2, mask, n = (
        grid.numpy_inverse_wavenumber_squared(),
        grid.numpy_dealias_mask(),
        grid.num_points,
    )
    velocity = (np.stack([ky * inverse_k2, -kx * inverse_k2]) * (mask * n)).astype(np.float64)
    products = (np.stack([kx**2 - ky**2, kx * ky]) * (mask / n)).astype(np.float64)
    re, im = w_hat.real, w_hat.imag
    uv_hat = jnp.stack([jax.lax.complex(-c * im, c * re) for c in velocity])
    u, v = grid.irfft(uv_hat)
    p_hat = grid.rfft(jnp.stack([u * v, v * v - u * u]))
    expected = hybrax.core.mul(products[0], p_hat[0]) + hybrax.core.mul(products[1], p_hat[1])
    got = model.nonlinear(state, 0.0).field_hat
    assert jnp.all(got == expected)
    explicit = NavierStokes2D(N, viscosity=1e-2, dealias=TwoThirdsRule())
    assert jnp.all(explicit.nonlinear(state, 0.0).field_hat == got)


def test_dealiasing_choices_agree_on_band_limited_products():
    """Products of a field with modes |n| <= 2 reach |n| <= 4: the 2/3 rule, Hou & Li's
    filter and no dealiasing give the same tendency; on a broadband field they do not."""
    grid = Grid((32, 32))
    x, y = grid.coordinates(jnp.float64)
    w = jnp.cos(x) + 0.5 * jnp.sin(2 * y) + 0.3 * jnp.cos(x + 2 * y)
    models = [NavierStokes2D(grid, dealias=d) for d in (TwoThirdsRule(), SmoothFilter(), None)]
    tendencies = [m.nonlinear(m.state_from_vorticity(w), 0.0).field_hat for m in models]
    assert jnp.max(jnp.abs(tendencies[0])) > 0.1
    for other in tendencies[1:]:
        np.testing.assert_allclose(other, tendencies[0], atol=1e-13)
    noise = jax.random.normal(jax.random.key(0), (32, 32), jnp.float64)
    broadband = [m.nonlinear(m.state_from_vorticity(noise), 0.0).field_hat for m in models]
    assert jnp.max(jnp.abs(broadband[1] - broadband[0])) > 1e-3
    assert jnp.max(jnp.abs(broadband[2] - broadband[1])) > 1e-3


def test_smooth_filter_keeps_band_limited_modes():
    grid = Grid((64, 64))
    factor = SmoothFilter().numpy_factor(grid)
    kappa = np.sqrt(grid.numpy_wavenumber_squared()) * grid.spacing[0] / np.pi  # / pi
    assert np.max(np.abs(factor[kappa <= 0.4] - 1)) < 2e-13
    assert 0.98 < factor[int(0.8 * 32), 0] < 1
    assert np.all(factor[32, :] == 0) and np.all(factor[:, 32] == 0)  # Nyquist modes
    assert np.all(np.diff(factor[:33, 0]) <= 0)  # monotone roll-off


def test_dealias_bad_input(wrong_type):
    with wrong_type("dealias", hybrax.ConfigurationError, "dealias must be"):
        NavierStokes2D(16, dealias="2/3")
    with pytest.raises(hybrax.ConfigurationError, match="order must be even"):
        SmoothFilter(order=35)
    with pytest.raises(hybrax.ConfigurationError, match="strength"):
        SmoothFilter(strength=-1.0)


# ------------------------------------------------------------ (1,) parameters
def test_single_element_parameters_are_scalars(state):
    """A wrapper passing jnp.array([nu]) gets the same model as one passing nu."""
    wrapped = NavierStokes2D(
        N,
        viscosity=jnp.array([1e-2]),
        drag=jnp.array([0.1]),
        forcing=hybrax.fluids.KolmogorovForcing(jnp.array([1.0])),
        mean_flow=(jnp.array([0.5]), jnp.array([0.0])),
    )
    plain = NavierStokes2D(
        N,
        viscosity=1e-2,
        drag=0.1,
        forcing=hybrax.fluids.KolmogorovForcing(1.0),
        mean_flow=(0.5, 0.0),
    )
    assert wrapped.viscosity.shape == wrapped.drag.shape == ()
    assert wrapped.mean_flow.shape == (2,)
    a, b = wrapped.tendency(state, 0.0), plain.tendency(state, 0.0)
    assert jnp.all(a.field_hat == b.field_hat)
    with pytest.raises(hybrax.ConfigurationError, match=r"single number.*\(2,\)"):
        NavierStokes2D(N, viscosity=jnp.array([1e-2, 1e-3]))
