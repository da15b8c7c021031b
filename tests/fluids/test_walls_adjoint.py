"""The hand-written backward passes of the tendency, central (`_central_adjoint`) and upwind
and van Leer (`_tvd_adjoint`), equal reverse-mode autodiff of the plain implementation
(`_advection_diffusion`) to round-off, for every boundary kind, an obstacle, 2-D and 3-D
(float64: tests/conftest.py enables it), and at the limiter's kinks."""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybrax.fluids import (
    Boundaries,
    CentralInterpolation,
    Cylinder,
    FlowState,
    FreeSlip,
    IncompressibleNavierStokes,
    Inflow,
    Outflow,
    Periodic,
    UpwindInterpolation,
    VanLeerInterpolation,
    Wall,
)
from hybrax.fluids._central_adjoint import central_rates
from hybrax.fluids._fv_advection import as_interpolation
from hybrax.fluids._tvd_adjoint import tvd_rates
from hybrax.grids import StaggeredGrid

GRID = StaggeredGrid((7, 6), (1.0, 0.8))
GRID3 = StaggeredGrid((5, 4, 4), (1.0, 0.8, 0.7))
PROFILE = jnp.linspace(0.2, 1.0, 6)

CASES = {
    "moving lid": IncompressibleNavierStokes.lid_driven_cavity(6, 100.0, lid_velocity=1.3),
    "periodic x, wall and free slip": IncompressibleNavierStokes(
        GRID,
        Boundaries(Periodic(), Periodic(), Wall(-0.3), FreeSlip()),
        0.01,
        forcing=0.2 * jnp.ones(GRID.face_shape(0)),
    ),
    "periodic y, wall and outflow": IncompressibleNavierStokes(
        GRID, Boundaries(Wall(0.5), Outflow(), Periodic(), Periodic()), 0.02, forcing=0.4
    ),
    "inflow, convective outflow": IncompressibleNavierStokes(
        GRID,
        Boundaries(Inflow(PROFILE), Outflow(convective_velocity=0.7), FreeSlip(), Wall(0.4)),
        0.01,
        drag=0.2,
        forcing=0.3,
    ),
    "inflow, outflow, cylinder": IncompressibleNavierStokes(
        GRID,
        Boundaries(Inflow(PROFILE), Outflow(), Wall(), Wall()),
        0.01,
        obstacle=Cylinder(jnp.array([0.4, 0.4]), 0.15, 0.05),
    ),
    "3-D box": IncompressibleNavierStokes(
        GRID3,
        Boundaries(
            Wall(0.5),
            Outflow(convective_velocity=1.0),
            Periodic(),
            Periodic(),
            Wall(0.2),
            FreeSlip(),
        ),
        0.02,
        drag=0.05,
    ),
}


def _random_faces(grid, seed):
    key = jax.random.PRNGKey(seed)
    return tuple(
        jax.random.normal(jax.random.fold_in(key, a), grid.face_shape(a), jnp.float64)
        for a in range(grid.ndim)
    )


SCHEMES = {"central": central_rates, "upwind": tvd_rates, "van_leer": tvd_rates}


def _check_vjp(model, velocity, cotangent, hand_written_rates):
    differentiable, static = eqx.partition((velocity, model), eqx.is_inexact_array)

    def rates(leaves, hand_written):
        v, m = eqx.combine(leaves, static)
        return hand_written_rates((v, m)) if hand_written else m._advection_diffusion(v)

    @jax.jit
    def values_and_grads(leaves):
        values, pullback = jax.vjp(lambda d: rates(d, True), leaves)
        reference_values, reference_pullback = jax.vjp(lambda d: rates(d, False), leaves)
        return values, reference_values, pullback(cotangent)[0], reference_pullback(cotangent)[0]

    values, reference_values, grads, reference_grads = values_and_grads(differentiable)
    for value, reference in zip(values, reference_values, strict=True):
        np.testing.assert_allclose(value, reference, rtol=1e-13)  # the model's forward pass
    paths = jax.tree_util.tree_leaves_with_path(reference_grads)
    for (path, reference), grad in zip(paths, jax.tree.leaves(grads), strict=True):
        name = jax.tree_util.keystr(path)
        scale = float(jnp.max(jnp.abs(reference)))
        if not any(word in name for word in ("permeability", "profile", "obstacle")):
            assert scale > 0, name  # velocities, viscosity, drag, forcing, wall speeds
        np.testing.assert_allclose(grad, reference, rtol=0, atol=1e-13 * scale, err_msg=name)


# upwind's backward pass is van Leer's without the slopes: two cases keep the default run short
PAIRS = [(name, scheme) for name in CASES for scheme in ("central", "van_leer")]
PAIRS += [("moving lid", "upwind"), ("inflow, convective outflow", "upwind")]


@pytest.mark.parametrize(("name", "scheme"), PAIRS)
def test_hand_written_vjp_equals_autodiff(name, scheme):
    model = eqx.tree_at(lambda m: m.scheme, CASES[name], as_interpolation(scheme))
    velocity = _random_faces(model.grid, 1)  # any velocity (the limiter's kinks: below)
    _check_vjp(model, velocity, _random_faces(model.grid, 2), SCHEMES[scheme])


@pytest.mark.parametrize("name", ["inflow, convective outflow"])
def test_van_leer_vjp_at_ties_takes_autodiffs_side(name):
    """Velocities of -1, 0 and 1 and constant blocks: zero carriers (the right-hand state,
    as ``velocity > 0`` is False) and one-sided differences that vanish (the limiter's
    kink, slope derivative zero) everywhere; the same one-sided choices as autodiff."""
    model = eqx.tree_at(lambda m: m.scheme, CASES[name], VanLeerInterpolation())
    key = jax.random.PRNGKey(4)
    velocity = []
    for a in range(model.grid.ndim):
        shape = model.grid.face_shape(a)
        q = jax.random.randint(jax.random.fold_in(key, a), shape, -1, 2).astype(jnp.float64)
        velocity.append(q.at[: shape[0] // 2].set(1.0))  # a constant block: l = r = 0
    _check_vjp(model, tuple(velocity), _random_faces(model.grid, 2), tvd_rates)


class _MyVanLeer(VanLeerInterpolation):
    """A user's scheme (a subclass): the tendency cannot know its backward pass."""


@pytest.mark.parametrize(
    ("scheme", "hand_written", "custom"),
    [
        (CentralInterpolation(), True, True),
        (UpwindInterpolation(), True, True),
        (VanLeerInterpolation(), True, True),
        (CentralInterpolation(), False, False),
        (VanLeerInterpolation(), False, False),
        (_MyVanLeer(), True, False),
    ],
)
def test_the_tendency_takes_the_hand_written_path_for_built_in_schemes(
    scheme, hand_written, custom
):
    model = dataclasses.replace(
        CASES["moving lid"], scheme=scheme, hand_written_backward=hand_written
    )
    u, v = _random_faces(model.grid, 1)
    state = FlowState(u, v, jnp.zeros(model.grid.cell_shape), jnp.zeros(()))
    text = str(jax.make_jaxpr(lambda s: model.tendency(s, 0.0))(state))
    assert ("custom_vjp" in text) == custom


def test_the_tendency_pulls_back_like_the_plain_tendency():
    """Through `tendency`, the dispatched backward pass (van Leer's) equals the plain
    path's."""
    model = dataclasses.replace(CASES["periodic y, wall and outflow"], scheme="van_leer")
    plain = dataclasses.replace(model, hand_written_backward=False)
    u, v = _random_faces(model.grid, 1)
    state = FlowState(u, v, jnp.zeros(model.grid.cell_shape), jnp.zeros(()))
    cotangent = state.with_velocity(_random_faces(model.grid, 2))

    @jax.jit
    def pullbacks(state):
        models = (model, plain)
        return [jax.vjp(lambda s, m=m: m.tendency(s, 0.0), state)[1](cotangent)[0] for m in models]

    mine, reference = pullbacks(state)
    for a, b in zip((mine.u, mine.v), (reference.u, reference.v), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-13 * float(jnp.max(jnp.abs(b))))


def test_forward_mode_needs_the_plain_path():
    """`jax.jvp` cannot pass a custom VJP: ``hand_written_backward=False`` gives it the
    plain tendency, whose tangent equals the hand-written pass's transpose."""
    model = CASES["moving lid"]
    plain = dataclasses.replace(model, hand_written_backward=False)
    u, v = _random_faces(model.grid, 1)
    du, dv = _random_faces(model.grid, 2)
    state = FlowState(u, v, jnp.zeros(model.grid.cell_shape), jnp.zeros(()))
    tangent = FlowState(du, dv, jnp.zeros(model.grid.cell_shape), jnp.zeros(()))

    def rate(m, s):
        return m.tendency(s, 0.0).u

    with pytest.raises(TypeError, match="forward-mode"):
        jax.jvp(lambda s: rate(model, s), (state,), (tangent,))
    _, forward = jax.jvp(lambda s: rate(plain, s), (state,), (tangent,))
    cotangent = _random_faces(model.grid, 3)[0]
    (backward,) = jax.vjp(lambda s: rate(model, s), state)[1](cotangent)
    np.testing.assert_allclose(
        jnp.vdot(forward, cotangent),
        jnp.vdot(du, backward.u) + jnp.vdot(dv, backward.v),
        rtol=1e-12,
    )


def test_lyapunov_spectrum_switches_to_plain_autodiff():
    """`hybrax.lyapunov_spectrum` linearises the step forward: it runs a walled model with
    the plain tendency (the same step), where the default hand-written backward pass would
    raise TypeError; the exponents equal those of the plain model."""
    import hybrax
    from hybrax.fluids import ProjectedRK

    model = IncompressibleNavierStokes.lid_driven_cavity(6, 100.0)
    plain = dataclasses.replace(model, hand_written_backward=False)
    start = model.initial_state()
    spectra = [
        hybrax.lyapunov_spectrum(
            ProjectedRK(m, 0.01), start, 10, k=2, reorthonormalize_every=5, progress=False
        )
        for m in (model, plain)
    ]
    np.testing.assert_allclose(spectra[0], spectra[1], rtol=1e-12)
