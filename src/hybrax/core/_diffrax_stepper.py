"""Bridge: any diffrax solver as a hybrax Stepper over one macro step."""

from __future__ import annotations

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import ArrayLike, PyTree

from ._contract import AbstractDynamics, AbstractStepper, check_dynamics, check_tendency
from ._errors import ConfigurationError
from ._state import get_time, scalar_like, time_or_zero, with_time

__all__ = ["DiffraxStepper"]


class DiffraxStepper(AbstractStepper):
    """Advance a Dynamics by ``dt`` with any `diffrax` solver.

    Inside one macro step of length ``dt`` the solver takes either ``num_substeps`` equal
    steps (``stepsize_controller=None``, the default) or adaptive steps chosen by the given
    controller (e.g. ``diffrax.PIDController(rtol=1e-6, atol=1e-6)``), starting from
    ``dt / num_substeps``. Use it for implicit or adaptive solvers; for fixed-step explicit
    Runge–Kutta the native `RK4` is cheaper.

    Parameters
    ----------
    dynamics
        The right-hand side.
    dt
        Macro step (model time units), positive.
    solver
        A diffrax solver, default ``diffrax.Tsit5()``.
    num_substeps
        Number of solver steps per macro step (fixed stepping), or the initial step
        ``dt / num_substeps`` (adaptive stepping). Static.
    stepsize_controller
        ``None`` for fixed steps, or a diffrax step-size controller.
    max_steps
        Cap on internal solver steps per macro step (adaptive stepping). Static.
    adjoint
        diffrax adjoint used for gradients through the macro step.

    Examples
    --------
    >>> import diffrax, hybrax
    >>> model = hybrax.climate.Lorenz63()
    >>> stepper = hybrax.DiffraxStepper(model, dt=0.05, solver=diffrax.Dopri5(),
    ...     stepsize_controller=diffrax.PIDController(rtol=1e-8, atol=1e-8))
    >>> final, _ = hybrax.rollout(stepper, model.initial_state(), 20)
    """

    dynamics: AbstractDynamics
    dt: ArrayLike
    solver: diffrax.AbstractSolver = diffrax.Tsit5()
    num_substeps: int = eqx.field(static=True, default=1)
    stepsize_controller: diffrax.AbstractStepSizeController | None = None
    max_steps: int = eqx.field(static=True, default=4096)
    adjoint: diffrax.AbstractAdjoint = diffrax.RecursiveCheckpointAdjoint()

    def __check_init__(self):
        check_dynamics(self.dynamics, "DiffraxStepper")
        for name, value, wanted, example in (
            ("solver", self.solver, diffrax.AbstractSolver, "diffrax.Tsit5()"),
            (
                "stepsize_controller",
                self.stepsize_controller,
                (diffrax.AbstractStepSizeController, type(None)),
                "None or diffrax.PIDController(rtol=1e-6, atol=1e-6)",
            ),
            (
                "adjoint",
                self.adjoint,
                diffrax.AbstractAdjoint,
                "diffrax.RecursiveCheckpointAdjoint()",
            ),
        ):
            if not isinstance(value, wanted):
                shown = f"the class {value.__name__}" if isinstance(value, type) else repr(value)
                raise ConfigurationError(
                    f"DiffraxStepper: {name} must be a diffrax object such as {example}, got "
                    f"{shown[:80]}"
                )
        for name in ("num_substeps", "max_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(
                    f"DiffraxStepper: {name} must be an int >= 1, got {value!r}"
                )

    @property
    def order(self) -> int | None:  # type: ignore[override]
        """The wrapped solver's order for an ODE (``solver.order(terms)``); ``None`` if the
        solver does not report one."""
        try:
            order = self.solver.order(diffrax.ODETerm(lambda t, y, args: y))
        except Exception:  # a solver without an ODE order (e.g. SDE-only): undeclared
            return None
        return order if isinstance(order, int) else None

    def step(self, state: PyTree) -> PyTree:
        self.dynamics.check_state(state)
        t0 = time_or_zero(state)
        h = scalar_like(self.dt, t0)
        has_time = get_time(state) is not None

        complex_leaves = jax.tree.map(jnp.iscomplexobj, state)

        def vector_field(t, y, args):
            y = _from_real(y, complex_leaves)
            dy = self.dynamics.tendency(with_time(y, t), t)
            check_tendency(dy, y, self.dynamics)
            if has_time:  # keep the time leaf constant inside the solve
                dy = with_time(dy, jnp.zeros_like(t0))
            return _to_real(dy, complex_leaves)

        fixed = self.stepsize_controller is None
        if fixed:  # exactly num_substeps equal steps ending at t0 + h
            fractions = jnp.linspace(0, 1, self.num_substeps + 1, dtype=jnp.result_type(t0))
            controller = diffrax.StepTo(ts=t0 + h * fractions)
        else:
            controller = self.stepsize_controller
        solution = diffrax.diffeqsolve(
            diffrax.ODETerm(vector_field),
            self.solver,
            t0=t0,
            t1=t0 + h,
            dt0=None if fixed else h / self.num_substeps,
            y0=_to_real(state, complex_leaves),
            stepsize_controller=controller,
            max_steps=self.num_substeps if fixed else self.max_steps,
            adjoint=self.adjoint,
            saveat=diffrax.SaveAt(t1=True),
        )
        out = jax.tree.map(lambda y: y[0], solution.ys)
        return with_time(_from_real(out, complex_leaves), t0 + h)


def _to_real(tree: PyTree, complex_leaves: PyTree) -> PyTree:
    """Complex leaves as ``(..., 2)`` real arrays (real, imaginary); others unchanged."""

    def split(x, is_complex):
        return jnp.stack([jnp.real(x), jnp.imag(x)], axis=-1) if is_complex else x

    return jax.tree.map(split, tree, complex_leaves)


def _from_real(tree: PyTree, complex_leaves: PyTree) -> PyTree:
    """Inverse of `_to_real`."""

    def join(x, is_complex):
        return jax.lax.complex(x[..., 0], x[..., 1]) if is_complex else x

    return jax.tree.map(join, tree, complex_leaves)
