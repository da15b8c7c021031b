"""A stepper wrapper applying a filter (e.g. pyqg's small-scale filter) after every step."""

from __future__ import annotations

from collections.abc import Callable

from jaxtyping import PyTree

from ._contract import AbstractStepper, AbstractStepperWrapper, check_stepper
from ._errors import ConfigurationError

__all__ = ["Filtered"]


class Filtered(AbstractStepperWrapper):
    """Run ``stepper`` and apply ``filter`` to the model state after every step.

    This is how pyqg controls the enstrophy cascade: its exponential filter multiplies the
    spectral PV once per step, outside the tendency (see `TwoLayerQG.apply_filter`).
    Wrapping keeps the filter separate from the integrator, so the same model runs with
    `hybrax.AdamsBashforth3` (pyqg's scheme), `hybrax.RK4` or `hybrax.ETDRK4`. The carry is
    the wrapped stepper's (see `hybrax.AbstractStepper.init`): when it holds more than the
    model state (a multistep history), only the model state is filtered.

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
    >>> stepper = hybrax.Filtered(hybrax.AdamsBashforth3(model, 7200.0), model.apply_filter)
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

    def prepare(self) -> Filtered:
        return Filtered(self.stepper.prepare(), self.filter)

    def step(self, state: PyTree) -> PyTree:
        new = self.stepper.step(state)
        return self.stepper.with_state(new, self.filter(self.stepper.state_of(new)))
