"""The shared part of the steppers for semilinear models ``du/dt = L u + N(u, t)``."""

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
from equinox import AbstractVar
from jaxtyping import Array, ArrayLike, PyTree

from ._contract import AbstractSemilinearDynamics, AbstractStepper, check_dynamics

__all__ = ["AbstractSemilinearStepper"]


class AbstractSemilinearStepper(AbstractStepper):
    """A stepper for an `AbstractSemilinearDynamics` that treats the diagonal linear part
    ``L`` through per-mode coefficients depending only on ``L`` and ``dt``
    (`hybrax.ETDRK4`, `hybrax.CrankNicolsonRK4`).

    It checks that the model is semilinear and builds the coefficients leaf by leaf of
    ``dynamics.linear_operator()`` (an integer ``L`` is promoted to the default float).
    ``step`` may recompute them each call (right also when ``L`` carries a parameter being
    differentiated); `prepare` stores them in ``coefficients`` once, which
    `hybrax.rollout` does per rollout.

    A subclass declares the fields ``dynamics``, ``dt`` and ``coefficients`` (default
    ``None``), its ``order``, and implements `_leaf_coefficients` and ``step``.
    """

    dynamics: AbstractVar[AbstractSemilinearDynamics]
    dt: AbstractVar[ArrayLike]
    coefficients: AbstractVar[PyTree | None]

    def __check_init__(self):
        check_dynamics(self.dynamics, type(self).__name__, semilinear=True)

    @abc.abstractmethod
    def _leaf_coefficients(self, linear: Array) -> PyTree:
        """The coefficients for one inexact leaf of the linear operator."""

    def _compute_coefficients(self) -> PyTree:
        def per_leaf(linear):
            linear = jnp.asarray(linear)
            if not jnp.issubdtype(linear.dtype, jnp.inexact):
                linear = linear.astype(jnp.result_type(float))
            return self._leaf_coefficients(linear)

        return jax.tree.map(per_leaf, self.dynamics.linear_operator())

    def prepare(self) -> "AbstractSemilinearStepper":
        if self.coefficients is not None:
            return self
        return eqx.tree_at(
            lambda s: s.coefficients,
            self,
            self._compute_coefficients(),
            is_leaf=lambda x: x is None,
        )
