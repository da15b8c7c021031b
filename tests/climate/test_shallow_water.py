"""Rotating shallow water: conservation, linear waves against the dispersion relation,
adjustment and vortex physics, forcing/dissipation budgets, gradients, transforms and bad
input."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
from hybrax.climate import HeightRelaxation, ShallowWater, ShallowWaterState
from hybrax.errors import ConfigurationError

DAY = 86400.0


def _run(stepper, state, n, **kwargs):
    return hybrax.rollout(stepper, state, n, save_every=None, **kwargs)[0]


@eqx.filter_jit
def _tendency(model, state):  # jitted: eager evaluation dispatches many small ops
    return model.tendency(state, 0.0)


def _points(model, shift_x, shift_y):
    (nx, ny), (dx, dy) = model.grid.shape, model.grid.spacing
    return np.meshgrid(
        (np.arange(nx) + shift_x) * dx, (np.arange(ny) + shift_y) * dy, indexing="ij"
    )


def _random_smooth_state(model, key, dtype=jnp.float64):
    """Random large-scale flow: a few Fourier modes in u, v and eta."""
    keys = jax.random.split(key, 3)
    lx, ly = model.grid.domain_length
    fields = []
    for k, (sx, sy), scale in zip(
        keys, [(0, 0.5), (0.5, 0), (0.5, 0.5)], [2.0, 2.0, 20.0], strict=True
    ):
        x, y = _points(model, sx, sy)
        c = np.asarray(jax.random.normal(k, (3, 3, 2)))
        f = sum(
            c[i, j, 0] * np.cos(2 * np.pi * (i * x / lx + j * y / ly))
            + c[i, j, 1] * np.sin(2 * np.pi * ((i + 1) * x / lx - j * y / ly))
            for i in range(3)
            for j in range(3)
        )
        fields.append(jnp.asarray(scale * f / 9, dtype))
    return ShallowWaterState(*fields)


# ------------------------------------------------------------------------ conservation
def test_mass_conserved_to_round_off_with_dissipation():
    model = ShallowWater.beta_plane(32, drag=1e-6, viscosity=1e4)
    state = _random_smooth_state(model, jax.random.key(0))
    final = _run(hybrax.RK4(model, 300.0), state, 300)
    assert float(jnp.max(jnp.abs(final.u))) > 0.1  # a real flow
    relative = abs(float(model.mass(final) - model.mass(state))) / float(model.mass(state))
    assert relative < 1e-14
    assert float(model.energy(final)) < float(model.energy(state))  # dissipated


def test_inviscid_energy_conserved_to_time_stepping_error():
    model = ShallowWater.beta_plane(32)
    state = model.vortex_state(amplitude=-30.0, radius=6e5, dtype=jnp.float64)
    e0 = model.energy(state)
    errors = []
    for dt in (800.0, 400.0, 200.0):  # same step count, dt traced: one compilation
        final = _run(hybrax.RK4(model, jnp.asarray(dt)), state, 108)  # T = 108 dt
        errors.append(abs(float((model.energy(final) - e0) / e0)))
    assert errors[-1] < 1e-9
    assert errors[0] / errors[1] > 16 and errors[1] / errors[2] > 16  # T dt^4: RK4's order


def test_energy_budget_of_drag_viscosity_and_relaxation():
    equilibrium = 5.0 * jnp.sin(
        2 * np.pi * jnp.asarray(_points(ShallowWater(24), 0.5, 0.5)[1]) / 5e6
    )
    forcing = HeightRelaxation(equilibrium, 5 * DAY)
    model = ShallowWater.beta_plane(24, drag=2e-6, viscosity=5e3, forcing=forcing)
    state = _random_smooth_state(model, jax.random.key(1))
    tendency = _tendency(model, state)
    _, dedt = jax.jvp(model.energy, (state,), (tendency,))
    h = model.total_depth(state)
    hx, hy = 0.5 * (jnp.roll(h, 1, 0) + h), 0.5 * (jnp.roll(h, 1, 1) + h)
    dx, dy = model.grid.spacing

    def lap(a):
        return (jnp.roll(a, -1, 0) - 2 * a + jnp.roll(a, 1, 0)) / dx**2 + (
            jnp.roll(a, -1, 1) - 2 * a + jnp.roll(a, 1, 1)
        ) / dy**2

    u, v, eta = state.u, state.v, state.eta
    drag = -2e-6 * jnp.mean(hx * u**2 + hy * v**2)
    viscous = 5e3 * jnp.mean(hx * u * lap(u) + hy * v * lap(v))
    kinetic = 0.25 * (u**2 + jnp.roll(u, -1, 0) ** 2 + v**2 + jnp.roll(v, -1, 1) ** 2)
    relaxation = jnp.mean((kinetic + 9.81 * eta) * (equilibrium - eta) / (5 * DAY))
    assert float(viscous) < 0 and float(drag) < 0
    assert float(dedt) == pytest.approx(float(drag + viscous + relaxation), rel=1e-10)


# ------------------------------------------------------------------------ linear waves
@eqx.filter_jit
def _linearised(model, rest, tangent):
    return jax.jvp(lambda s: model.tendency(s, 0.0), (rest,), (tangent,))


def _linear_symbol(model, mx, my):
    """3x3 matrix of the model's linearisation at rest on the Fourier mode (mx, my)."""
    lx, ly = model.grid.domain_length
    k, ell = 2 * np.pi * mx / lx, 2 * np.pi * my / ly
    phases = [
        np.exp(1j * (k * x + ell * y))
        for x, y in (_points(model, 0, 0.5), _points(model, 0.5, 0), _points(model, 0.5, 0.5))
    ]
    rest = model.rest_state(jnp.float64)
    matrix = np.zeros((3, 3), complex)
    for j in range(3):
        fields = [np.zeros(model.grid.shape) for _ in range(3)]
        fields[j] = np.real(phases[j])
        tangent = ShallowWaterState(*(jnp.asarray(f) for f in fields), 0.0)
        _, out = _linearised(model, rest, tangent)
        for i, field in enumerate((out.u, out.v, out.eta)):
            matrix[i, j] = 2 * np.mean(np.asarray(field) * np.conj(phases[i]))
    return matrix, k, ell, phases


def _analytic_frequencies(model, k, ell):
    g, depth, f0 = float(model.gravity), float(model.mean_depth), float(model.coriolis)
    beta = 0.0 if model.beta is None else float(model.beta)
    k2 = k * k + ell * ell
    return np.sort(
        np.roots([1, beta * k / k2, -(f0**2 + g * depth * k2), -beta * k * g * depth]).real
    )


@pytest.mark.parametrize("plane", ["f_plane", "beta_plane"])
def test_linear_frequencies_converge_to_the_dispersion_relation(plane):
    errors = []
    for n in (32, 64):
        model = getattr(ShallowWater, plane)(n)
        matrix, k, ell, _ = _linear_symbol(model, 2, 1)
        omega = 1j * np.linalg.eigvals(matrix)  # exp(-i omega t)
        assert np.max(np.abs(omega.imag)) < 1e-12 * np.max(np.abs(omega))  # neutral waves
        numeric = np.sort(omega.real)
        exact = _analytic_frequencies(model, k, ell)
        errors.append(np.abs(numeric - exact) / np.abs(exact).clip(1e-30))
        if plane == "f_plane":
            assert abs(numeric[1]) < 1e-12 * float(model.coriolis)  # steady geostrophic mode
    errors = np.array(errors)
    keep = slice(None) if plane == "beta_plane" else [0, 2]
    assert np.all(errors[1][keep] < 0.005), errors  # Poincare (and Rossby) within 0.5%
    assert np.all(np.abs(np.log2(errors[0][keep] / errors[1][keep]) - 2) < 0.15)  # 2nd order


@pytest.mark.parametrize(("plane", "which"), [("f_plane", 2), ("beta_plane", 1)])
def test_waves_propagate_at_the_predicted_frequency(plane, which):
    # which = 2: the eastward Poincare wave; which = 1: the Rossby wave.
    model = getattr(ShallowWater, plane)(32)
    matrix, k, ell, phases = _linear_symbol(model, 2, 1)
    values, vectors = np.linalg.eig(matrix)
    order = np.argsort((1j * values).real)
    vector = vectors[:, order[which]]
    amplitude = 1e-6 / np.max(np.abs(vector))
    state = ShallowWaterState(
        *(jnp.asarray(np.real(amplitude * c * p)) for c, p in zip(vector, phases, strict=True))
    )
    exact = _analytic_frequencies(model, k, ell)[which]
    period = 2 * np.pi / abs(exact)
    dt = min(hybrax.max_time_step(model, model.rest_state(jnp.float64), 2.8), period / 200)
    n = int(0.25 * period / dt)
    final = _run(hybrax.RK4(model, dt), state, n)
    projection = [
        2 * np.mean(np.asarray(f) * np.conj(p))
        for f, p in zip((final.u, final.v, final.eta), phases, strict=True)
    ]
    rotation = np.vdot(amplitude * vector, projection) / np.vdot(
        amplitude * vector, amplitude * vector
    )
    measured = -np.angle(rotation) / (n * dt)
    assert abs(np.abs(rotation) - 1) < 1e-6  # no growth or decay
    assert measured == pytest.approx(exact, rel=0.02)


# ---------------------------------------------------------------- adjustment and vortices
def test_geostrophic_adjustment_leaves_a_geostrophic_jet():
    model = ShallowWater.f_plane(32)
    state = model.geostrophic_adjustment_state(height=10.0, dtype=jnp.float64)
    dt = 600.0
    per_inertial_period = int(2 * np.pi / 1e-4 / dt)
    final, (v, eta) = hybrax.rollout(
        hybrax.RK4(model, dt),
        state,
        6 * per_inertial_period,
        save_every=1,
        observe=lambda s: (s.v, s.eta),
    )
    # average over the last inertial period: filters the inertia-gravity waves
    mean_v = np.asarray(v[-per_inertial_period:]).mean(axis=0)
    mean_eta = np.asarray(eta[-per_inertial_period:]).mean(axis=0)
    assert abs(float(model.mass(final) - model.mass(state))) < 1e-14 * float(model.mass(state))
    dx = model.grid.spacing[0]
    geostrophic = 9.81 / 1e-4 * (np.roll(mean_eta, -1, 0) - np.roll(mean_eta, 1, 0)) / (2 * dx)
    assert np.corrcoef(mean_v.ravel(), geostrophic.ravel())[0, 1] > 0.99
    assert np.abs(mean_v).max() > 0.2  # jets of order g eta / (f L_d) = 1 m/s


def test_balanced_vortex_is_nearly_steady_on_the_f_plane_and_drifts_northwest_on_beta():
    steady = ShallowWater.f_plane(48)
    state = steady.vortex_state(amplitude=-5.0, radius=5e5, dtype=jnp.float64)
    tendency = _tendency(steady, state)
    speed = float(jnp.sqrt(jnp.mean(state.u**2 + state.v**2)))
    change = float(jnp.sqrt(jnp.mean(tendency.u**2 + tendency.v**2)))
    assert change < 0.05 * 1e-4 * speed  # Rossby number ~0.01: geostrophic to O(Ro)

    model = ShallowWater.beta_plane(48, mean_depth=100.0)  # deformation radius 310 km
    state = model.vortex_state(amplitude=-5.0, radius=4e5, dtype=jnp.float64)
    x, y = (jnp.asarray(a) for a in _points(model, 0.5, 0.5))

    def centre(s):
        weight = jnp.maximum(-s.eta - 1.0, 0.0)
        return jnp.stack([jnp.sum(weight * x), jnp.sum(weight * y)]) / jnp.sum(weight)

    _, track = hybrax.rollout(
        hybrax.RK4(model, 1800.0), state, 5 * 48, save_every=48, observe=centre
    )
    west, north = -np.diff(np.asarray(track)[:, 0]), np.diff(np.asarray(track)[:, 1])
    assert np.all(west > 5e3) and np.all(north > 0)  # cyclones drift north-west


# --------------------------------------------------------------- gradients, transforms
def test_gradients_match_finite_differences():
    model = ShallowWater.beta_plane(24, drag=1e-6)
    state = _random_smooth_state(model, jax.random.key(2))

    def loss(m):
        final = _run(hybrax.RK4(m, 600.0), state, 30)
        return jnp.mean(final.eta**2) + jnp.mean(final.u**2)

    # one compilation for the gradient and every finite-difference evaluation
    value_and_grad = eqx.filter_jit(eqx.filter_value_and_grad(loss))
    grads = value_and_grad(model)[1]
    for name in ("drag", "coriolis", "beta", "gravity"):
        value = float(getattr(model, name))
        eps = 1e-5 * abs(value)
        plus, minus = (
            value_and_grad(eqx.tree_at(lambda m, n=name: getattr(m, n), model, jnp.asarray(v)))[0]
            for v in (value + eps, value - eps)
        )
        fd = float(plus - minus) / (2 * eps)
        assert float(getattr(grads, name)) == pytest.approx(fd, rel=1e-6), name


def test_jit_vmap_ensemble_and_float32():
    model = ShallowWater.beta_plane(24, drag=1e-6)
    members = [_random_smooth_state(model, k) for k in jax.random.split(jax.random.key(3), 3)]
    states64 = jax.tree.map(lambda *xs: jnp.stack(xs), *members)
    states32 = jax.tree.map(lambda a: a.astype(jnp.float32), states64)
    stepper = hybrax.RK4(model, 600.0)
    batched = jax.jit(jax.vmap(lambda s: _run(stepper, s, 20)))(states32)
    assert batched.u.dtype == jnp.float32 and batched.time.dtype == jnp.float32
    for i in range(3):
        single = _run(stepper, members[i], 20)  # float64, one member
        scale = float(jnp.max(jnp.abs(single.eta)))
        np.testing.assert_allclose(batched.eta[i], single.eta, rtol=0, atol=1e-5 * scale)


# -------------------------------------------------------------------------- bad input
def test_bad_input_messages(wrong_type):
    model = ShallowWater.f_plane(32)
    rest = model.rest_state()
    with pytest.raises(ConfigurationError, match=r"Courant number .* use dt <= "):
        hybrax.check_time_step(hybrax.RK4(model, 5000.0), rest, 2.8)
    assert hybrax.check_time_step(hybrax.RK4(model, 1500.0), rest, 2.8) is rest
    vortex = model.vortex_state(amplitude=-3000.0, radius=5e5)  # its geostrophic flow is fast
    hybrax.check_time_step(hybrax.RK4(model, 700.0), rest, 2.8)
    with pytest.raises(ConfigurationError, match="Courant number"):
        hybrax.check_time_step(hybrax.RK4(model, 700.0), vortex, 2.8)
    with pytest.raises(eqx.EquinoxRuntimeError, match="Courant"):  # checked under jit too
        eqx.filter_jit(lambda s: hybrax.check_time_step(hybrax.RK4(model, 700.0), s, 2.8))(vortex)
    zeros = jnp.zeros((32, 32))
    with pytest.raises(ConfigurationError, match=r"for an ensemble use jax\.vmap"):
        model.tendency(ShallowWaterState(jnp.zeros((2, 32, 32)), zeros, zeros), 0.0)
    with pytest.raises(ConfigurationError, match=r"state\.eta must have shape \(32, 32\)"):
        model.tendency(ShallowWaterState(zeros, zeros, jnp.zeros((32, 31))), 0.0)
    with pytest.raises(ConfigurationError, match="share one dtype"):
        model.tendency(ShallowWaterState(zeros.astype(jnp.float32), zeros, zeros), 0.0)
    with pytest.raises(ConfigurationError, match="mean_depth must be positive"):
        ShallowWater(32, mean_depth=-10.0)
    with wrong_type(
        "forcing", ConfigurationError, "forcing must be an AbstractShallowWaterForcing"
    ):
        ShallowWater(32, forcing=lambda s, m, t: s)
    with pytest.raises(ConfigurationError, match="relaxation_time must be positive"):
        HeightRelaxation(zeros, 0.0)
    with wrong_type("state", ConfigurationError, "expects a ShallowWaterState"):
        model.tendency(hybrax.ODEState(zeros), 0.0)
