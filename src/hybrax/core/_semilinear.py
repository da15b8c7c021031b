"""The shared part of the steppers for semilinear models ``du/dt = L u + N(u, t)``."""

import abc
from collections.abc import Callable
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from equinox import AbstractVar
from jaxtyping import Array, ArrayLike, PyTree

from ._contract import AbstractSemilinearDynamics, AbstractStepper, check_dynamics
from ._state import is_inexact_array, mul

__all__ = ["AbstractSemilinearStepper"]


class RestrictedCoefficients(eqx.Module):
    """A semilinear stepper's coefficients for a model whose ``N`` is restricted to some of
    its modes (`AbstractSemilinearDynamics.nonlinear_is_restricted`)."""

    restricted: PyTree  # the stages' coefficients, on restrict(L)
    propagator: PyTree  # per leaf of L, on every mode: a step's factor when N = 0


def _inexact(linear: ArrayLike) -> Array:
    """``L`` as an array; an integer ``L`` promoted to the default float."""
    linear = jnp.asarray(linear)
    if not jnp.issubdtype(linear.dtype, jnp.inexact):
        linear = linear.astype(jnp.result_type(float))
    return linear


class AbstractSemilinearStepper(AbstractStepper):
    """A stepper for an `AbstractSemilinearDynamics` that treats the diagonal linear part
    ``L`` through per-mode coefficients depending only on ``L`` and ``dt``
    (`hybrax.ETDRK4`, `hybrax.CrankNicolsonRK4`).

    It checks that the model is semilinear and builds the coefficients leaf by leaf of
    ``dynamics.linear_operator()`` (an integer ``L`` is promoted to the default float).
    ``step`` may recompute them each call (right also when ``L`` carries a parameter being
    differentiated); `prepare` stores them in ``coefficients`` once, which
    `hybrax.rollout` does per rollout.

    A subclass with a `_leaf_propagator` (`hybrax.ETDRK4`) gives a model with
    `nonlinear_is_restricted` (``N`` supported on a subset of its modes) coefficients on
    that subset (`AbstractSemilinearDynamics.restrict` of ``L``) and, for the other modes,
    the propagator of a step with ``N = 0``: `_stage_coefficients` returns both, and
    `_finish` puts the propagated outside modes back around the stages' result.

    A subclass declares the fields ``dynamics``, ``dt`` and ``coefficients`` (default
    ``None``), its ``order``, and implements `_leaf_coefficients` and ``step`` (and
    optionally `_leaf_propagator`).
    """

    dynamics: AbstractVar[AbstractSemilinearDynamics]
    dt: AbstractVar[ArrayLike]
    coefficients: AbstractVar[PyTree | None]

    def __check_init__(self):
        check_dynamics(self.dynamics, type(self).__name__, semilinear=True)

    @abc.abstractmethod
    def _leaf_coefficients(self, linear: Array) -> PyTree:
        """The coefficients for one inexact leaf of the linear operator."""

    # The factor a step multiplies a mode by when ``N`` is zero, from that mode's
    # coefficients (one leaf of `_leaf_coefficients`). A subclass whose ``step`` runs its
    # stages on the modes of a restricted ``N`` (`_finish`) defines it as a method; None
    # keeps the stages on every mode. CrankNicolsonRK4 keeps None: at 64^3 and 128^3 its
    # stages on NavierStokes3D's box were 4-15% slower than on the whole spectrum (one
    # core, 2026-12-06), against 0-25% faster for ETDRK4.
    _leaf_propagator: ClassVar[Callable[[PyTree], Array] | None] = None

    def _compute_coefficients(self) -> PyTree:
        dynamics = self.dynamics
        linear = jax.tree.map(_inexact, dynamics.linear_operator())
        if self._leaf_propagator is None or not dynamics.nonlinear_is_restricted:
            return jax.tree.map(self._leaf_coefficients, linear)
        return RestrictedCoefficients(
            jax.tree.map(self._leaf_coefficients, dynamics.restrict(linear)),
            jax.tree.map(lambda lin: self._leaf_propagator(self._leaf_coefficients(lin)), linear),
        )

    def _stage_coefficients(self) -> tuple[PyTree, PyTree | None]:
        """The coefficients the stages use (on the modes `restrict` keeps, when the model's
        ``N`` is restricted) and the propagator of the other modes (``None`` if none)."""
        coefficients = self.coefficients
        if coefficients is None:
            coefficients = self._compute_coefficients()
        if isinstance(coefficients, RestrictedCoefficients):
            return coefficients.restricted, coefficients.propagator
        return coefficients, None

    def _finish(self, state: PyTree, out: PyTree, propagator: PyTree | None) -> PyTree:
        """The step's result from the stages' ``out``: ``out`` itself, or, for a restricted
        ``N``, ``propagator * state`` with the restricted modes replaced by ``out``."""
        if propagator is None:
            return out
        outside = jax.tree.map(
            lambda p, u: mul(p, u) if is_inexact_array(u) else u, propagator, state
        )
        return self.dynamics.embed(outside, out)

    def prepare(self) -> "AbstractSemilinearStepper":
        if self.coefficients is not None:
            return self
        return eqx.tree_at(
            lambda s: s.coefficients,
            self,
            self._compute_coefficients(),
            is_leaf=lambda x: x is None,
        )
