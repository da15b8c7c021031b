"""A stepper wrapper applying a filter (e.g. pyqg's small-scale filter) after every step."""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
from jaxtyping import ArrayLike, PyTree

from hybrax.core import AbstractStepper, ConfigurationError, check_stepper

from ._adams_bashforth import AB3State

__all__ = ["Filtered"]


class Filtered(AbstractStepper):
    """Run ``stepper`` and apply ``filter`` to the model state after every step.

    This is how pyqg controls the enstrophy cascade: its exponential filter multiplies the
    spectral PV once per step, outside the tendency (see `TwoLayerQG.apply_filter`).
    Wrapping keeps the filter separate from the integrator, so the same model runs with
    `AdamsBashforth3` (pyqg's scheme), `hybrax.RK4` or `hybrax.ETDRK4`. When the wrapped
    stepper carries a history (an `AB3State`), only the model state is filtered.

    Parameters
    ----------
    stepper
        Any stepper.
    filter
        ``filter(state) -> state`` for the model state (e.g. the bound method
        ``model.apply_filter``).

    Examples
    --------
    >>> import hybrax
    >>> model = hybrax.climate.TwoLayerQG.eddy(num_points=32)
    >>> stepper = hybrax.climate.Filtered(hybrax.RK4(model, 7200.0), model.apply_filter)
    >>> final, _ = hybrax.rollout(stepper, model.initial_state(), 10, save_every=None)
    """

    stepper: AbstractStepper
    filter: Callable[[PyTree], PyTree]

    def __check_init__(self):
        check_stepper(self.stepper, "Filtered")
        if not callable(self.filter):
            raise ConfigurationError(
                f"Filtered: filter must be a function state -> state (e.g. model.apply_filter), "
                f"got {type(self.filter).__name__}"
            )

    @property
    def dt(self) -> ArrayLike:
        return self.stepper.dt

    def init(self, state: PyTree) -> PyTree:
        """The wrapped stepper's ``init`` (e.g. `AdamsBashforth3.init`), else ``state``."""
        init = getattr(self.stepper, "init", None)
        return state if init is None else init(state)

    def prepare(self) -> Filtered:
        return Filtered(self.stepper.prepare(), self.filter)

    def step(self, state: PyTree) -> PyTree:
        new = self.stepper.step(state)
        if isinstance(new, AB3State):
            return eqx.tree_at(lambda s: s.state, new, self.filter(new.state))
        return self.filter(new)
