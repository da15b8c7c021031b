"""`FusedLearnedInterpolation`: one network call for every advective flux, bound once per
tendency or once per step (`ProjectedRK(freeze_scheme=True)`)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
import hybrax.nn
from hybrax.fluids import (
    BoundInterpolation,
    CentralInterpolation,
    FusedLearnedInterpolation,
    IncompressibleNavierStokes,
    ProjectedRK,
    UpwindInterpolation,
)

N = 8


class _Counting(eqx.Module):
    """A network whose output channels are ``weight[k] * sum(input)`` (array leaf
    ``weight``); it counts its calls (at trace time) in ``calls``."""

    weight: jax.Array
    calls: list = eqx.field(static=True)

    def __call__(self, x):
        self.calls.append(x.shape)
        total = jnp.sum(x, axis=0)
        return self.weight.reshape((-1,) + (1,) * total.ndim) * total


def _cnn(key=0, zero=False, stencil_size=4):
    net = hybrax.nn.PeriodicCNN(
        2, 2, 4 * (stencil_size - 1), hidden_channels=4, num_layers=2, key=jax.random.key(key)
    )
    if zero:
        net = jax.tree.map(lambda x: jnp.zeros_like(x) if eqx.is_array(x) else x, net)
    return net


def _periodic(state_model, key=1):
    """A random state of ``state_model`` whose duplicate periodic faces agree."""
    ku, kv = jax.random.split(jax.random.key(key))
    u = jax.random.normal(ku, (N, N))
    v = jax.random.normal(kv, (N, N))
    return state_model.initial_state(
        jnp.concatenate([u, u[:1]], axis=0), jnp.concatenate([v, v[:, :1]], axis=1)
    )


def _model(scheme):
    return IncompressibleNavierStokes.taylor_green(N, ndim=2, scheme=scheme)


@pytest.mark.parametrize("stencil_size", [2, 4])
@pytest.mark.parametrize(
    ("base", "reference"), [("central", CentralInterpolation()), ("upwind", UpwindInterpolation())]
)
def test_zero_network_is_the_polynomial_scheme(base, reference, stencil_size):
    net = _cnn(zero=True, stencil_size=stencil_size)
    fused = FusedLearnedInterpolation(net, stencil_size, base)
    state = _periodic(_model(reference))
    got, want = _model(fused).tendency(state, 0.0), _model(reference).tendency(state, 0.0)
    np.testing.assert_allclose(got.u, want.u, atol=1e-14)
    np.testing.assert_allclose(got.v, want.v, atol=1e-14)


def test_uniform_flow_is_kept_whatever_the_network():
    """The weights sum to one: a uniform flow has no advective tendency, and the periodic
    duplicate faces of a random state's tendency agree."""
    model = _model(FusedLearnedInterpolation(_cnn(key=3)))
    uniform = model.initial_state(jnp.full((N + 1, N), 0.7), jnp.full((N, N + 1), -0.4))
    rates = model.tendency(uniform, 0.0)
    assert float(jnp.max(jnp.abs(rates.u))) < 1e-14 and float(jnp.max(jnp.abs(rates.v))) < 1e-14
    rates = model.tendency(_periodic(model), 0.0)
    np.testing.assert_allclose(rates.u[0], rates.u[-1], atol=1e-14)
    np.testing.assert_allclose(rates.v[:, 0], rates.v[:, -1], atol=1e-14)


def test_shifted_state_gives_shifted_tendency():
    model = _model(FusedLearnedInterpolation(_cnn(key=4)))
    state = _periodic(model)

    def shift(s, dx, dy):
        u = jnp.roll(s.u[:-1], (dx, dy), axis=(0, 1))
        v = jnp.roll(s.v[:, :-1], (dx, dy), axis=(0, 1))
        return s.with_velocity(
            (jnp.concatenate([u, u[:1]], axis=0), jnp.concatenate([v, v[:, :1]], axis=1))
        )

    for dx, dy in ((1, 0), (0, 1), (3, 5)):
        got = model.tendency(shift(state, dx, dy), 0.0)
        want = shift(model.tendency(state, 0.0), dx, dy)
        np.testing.assert_allclose(got.u, want.u, atol=1e-13)
        np.testing.assert_allclose(got.v, want.v, atol=1e-13)


@pytest.mark.parametrize(("axis", "touched"), [(0, ((3, 4), (5,))), (1, ((3,), (4, 5)))])
def test_coefficients_sit_on_the_right_interfaces(axis, touched):
    """A correction at one place only: for u along x it sits on the cell centre
    (3.5, 5.5) h and changes u on faces x = 3 h and 4 h; along y on the edge (3, 5) h and
    changes u at y = 4.5 h and 5.5 h."""
    state = _periodic(_model("central"))
    plain = _model("central").tendency(state, 0.0)
    d = [[jnp.zeros((3, N, N)) for _ in range(2)] for _ in range(2)]
    d[0][axis] = d[0][axis].at[:, 3, 5].set(0.3)
    bound = BoundInterpolation(tuple(tuple(row) for row in d), 4, "central")
    rates = _model(bound).tendency(state, 0.0)
    changed = np.argwhere(np.abs(np.asarray(rates.u - plain.u)) > 1e-12)
    rows, cols = touched
    expected = {(r, c) for r in rows for c in cols}
    assert {tuple(x) for x in changed} == expected
    np.testing.assert_allclose(rates.v, plain.v, atol=1e-14)


def test_one_network_call_per_stage_or_per_step():
    """Counted while tracing (``filter_eval_shape``: nothing is compiled). The stepper's
    ``checkpoint_tendency`` traces the tendency once and applies it at every stage (JAX
    caches the trace of a checkpointed function), so the Python-side count needs it off."""
    calls = []
    net = _Counting(0.01 * jnp.arange(12.0), calls)
    model = _model(FusedLearnedInterpolation(net))
    state = _periodic(model)
    for freeze, expected in ((False, 3), (True, 1)):
        calls.clear()
        stepper = ProjectedRK(model, 0.02, freeze_scheme=freeze, checkpoint_tendency=False)
        eqx.filter_eval_shape(stepper.step, state)
        assert calls == [(2, N, N)] * expected
    # with the checkpoint, the three stages still evaluate the network three times: three
    # applications of the one checkpointed trace
    jaxpr = jax.make_jaxpr(lambda s: ProjectedRK(model, 0.02).step(s))(state)
    assert str(jaxpr).count("checkpoint[") + str(jaxpr).count("remat") >= 3
    out = eqx.filter_jit(ProjectedRK(model, 0.02, freeze_scheme=True).step)(state)
    assert float(jnp.max(jnp.abs(model.divergence(out)))) < 1e-12
    # 3-D: 3 components in, 27 channels out
    calls.clear()
    net3 = _Counting(0.01 * jnp.arange(27.0), calls)
    model3 = IncompressibleNavierStokes.taylor_green(
        4, ndim=3, scheme=FusedLearnedInterpolation(net3)
    )
    stepper3 = ProjectedRK(model3, 0.02, freeze_scheme=True)
    eqx.filter_eval_shape(stepper3.step, model3.taylor_green_state())
    assert calls == [(3, 4, 4, 4)]


def test_gradient_through_frozen_steps_matches_finite_differences():
    scheme = FusedLearnedInterpolation(_cnn(key=5), velocity_scale=2.0)
    state = _periodic(_model("central"), key=6)
    params, static = eqx.partition(scheme, eqx.is_inexact_array)

    def loss(p):
        stepper = ProjectedRK(_model(eqx.combine(p, static)), 0.01, freeze_scheme=True)
        final, _ = hybrax.rollout(stepper, state, 2, check_finite=False)
        return jnp.mean(final.u**3) + jnp.mean(final.v**2)

    value_and_grad = jax.jit(jax.value_and_grad(loss))
    _, grad = value_and_grad(params)
    leaves, tree = jax.tree.flatten(grad)
    keys = jax.random.split(jax.random.key(7), len(leaves))
    steps = [jax.random.normal(k, g.shape, g.dtype) for k, g in zip(keys, leaves, strict=True)]
    direction = jax.tree.unflatten(tree, steps)
    eps = 1e-6
    plus, _ = value_and_grad(jax.tree.map(lambda a, b: a + eps * b, params, direction))
    minus, _ = value_and_grad(jax.tree.map(lambda a, b: a - eps * b, params, direction))
    analytic = sum(jnp.vdot(g, s) for g, s in zip(leaves, steps, strict=True))
    assert abs(float(analytic)) > 1e-8
    np.testing.assert_allclose(float(analytic), float((plus - minus) / (2 * eps)), rtol=1e-5)


def test_bad_configuration(wrong_type):
    net = _cnn()
    fused = FusedLearnedInterpolation(net)
    with pytest.raises(hybrax.ConfigurationError, match="needs every side periodic"):
        IncompressibleNavierStokes.lid_driven_cavity(N, scheme=fused)
    with pytest.raises(hybrax.ConfigurationError, match="stencil_size"):
        FusedLearnedInterpolation(net, stencil_size=3)
    with pytest.raises(hybrax.ConfigurationError, match="base"):
        FusedLearnedInterpolation(net, base="weno")
    with pytest.raises(hybrax.ConfigurationError, match="velocity_scale"):
        FusedLearnedInterpolation(net, velocity_scale=0.0)
    with wrong_type("network", hybrax.ConfigurationError, "network must be callable"):
        FusedLearnedInterpolation(3.0)
    wrong = FusedLearnedInterpolation(_cnn(stencil_size=2))  # 4 channels; stencil 4 needs 12
    state = _periodic(_model("central"))
    with pytest.raises(hybrax.ConfigurationError, match=r"network must return shape \(12, 8, 8\)"):
        _model(wrong).tendency(state, 0.0)
    with pytest.raises(hybrax.ConfigurationError, match="needs the whole state"):
        fused(jnp.zeros(12), jnp.zeros(9), 0)
