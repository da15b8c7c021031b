"""Surface albedo of the energy-balance models: constant, or with ice-albedo feedback."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from hybrax.core import parameter, scalar_like

__all__ = ["ConstantAlbedo", "IceAlbedo"]


class ConstantAlbedo(eqx.Module):
    """A surface albedo that does not depend on temperature or latitude.

    Parameters
    ----------
    value
        The albedo, dimensionless (default 0.3); differentiable.

    Examples
    --------
    >>> import hybrax, jax.numpy as jnp
    >>> float(hybrax.climate.ConstantAlbedo(0.3)(jnp.zeros(3), jnp.zeros(3))[0])
    0.3...
    """

    value: Float[Array, ""] = parameter("value", default=0.3, scalar=True, example="value=0.3")

    def __call__(
        self, temperature: Float[Array, "*points"], sin_latitude: Float[Array, "*points"]
    ) -> Float[Array, "*points"]:
        return jnp.broadcast_to(scalar_like(self.value, temperature), jnp.shape(temperature))


class IceAlbedo(eqx.Module):
    """Ice–albedo feedback: a bright ice cap where the surface is colder than a threshold.

    .. math::
        \\alpha(T, x) = \\alpha_\\text{ice} + (\\alpha_0 + \\alpha_2 P_2(x) - \\alpha_\\text{ice})
            \\, \\tfrac12 \\left[1 + \\tanh\\frac{T - T_\\text{ice}}{w}\\right]

    with ``x`` the sine of latitude and ``P_2(x) = (3x^2 - 1)/2``. The ice-free albedo
    ``alpha_0 + alpha_2 P_2`` grows toward the poles (North et al. 1981). The transition is a
    smooth ``tanh`` step of width ``w`` so that the model, its steady states and their
    gradients are differentiable; ``w -> 0`` recovers the step albedo of Budyko (1969) and
    North (1975), whose ice edge sits where ``T = T_ice``.

    Parameters
    ----------
    ice_free
        ``alpha_0`` (default 0.319: co-albedo 0.681 as North et al. 1981).
    ice_free_p2
        ``alpha_2`` (default 0.202, North et al. 1981).
    ice
        ``alpha_ice`` (default 0.62).
    threshold_temperature
        ``T_ice`` in °C (default -10).
    transition_width
        ``w`` in K (default 1.0).

    All parameters are differentiable leaves.

    Examples
    --------
    >>> import hybrax, jax.numpy as jnp
    >>> albedo = hybrax.climate.IceAlbedo()
    >>> a = albedo(jnp.array([-30.0, 20.0]), jnp.array([0.9, 0.0]))
    >>> bool(a[0] > 0.6 and a[1] < 0.3)
    True
    """

    ice_free: Float[Array, ""] = parameter(
        "ice_free", default=0.319, scalar=True, example="ice_free=0.319"
    )
    ice_free_p2: Float[Array, ""] = parameter(
        "ice_free_p2", default=0.202, scalar=True, example="ice_free_p2=0.202"
    )
    ice: Float[Array, ""] = parameter("ice", default=0.62, scalar=True, example="ice=0.62")
    threshold_temperature: Float[Array, ""] = parameter(
        "threshold_temperature", default=-10.0, scalar=True, example="threshold_temperature=-10.0"
    )
    transition_width: Float[Array, ""] = parameter(
        "transition_width", default=1.0, positive=True, scalar=True, example="transition_width=1.0"
    )

    def __call__(
        self, temperature: Float[Array, "*points"], sin_latitude: Float[Array, "*points"]
    ) -> Float[Array, "*points"]:
        a0, a2, ai, t_ice, width = (
            scalar_like(p, temperature)
            for p in (
                self.ice_free,
                self.ice_free_p2,
                self.ice,
                self.threshold_temperature,
                self.transition_width,
            )
        )
        x = sin_latitude.astype(temperature.dtype)
        ice_free = a0 + a2 * (1.5 * x * x - 0.5)
        melted = 0.5 * (1 + jnp.tanh((temperature - t_ice) / width))
        return ai + (ice_free - ai) * melted
