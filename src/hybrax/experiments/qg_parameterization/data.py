"""Reference data of the ``qg-parameterization`` workflow: high-resolution runs, filtered and
coarse-grained (operator 1 of Ross et al. 2023), with their sub-grid forcing."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

import hybrax
from hybrax.climate import SharpSpectralCoarsener
from hybrax.grids import SpectralState

from .settings import QGParameterizationSettings

__all__ = ["ReferenceData", "make_reference_data"]


class ReferenceData(eqx.Module):
    """Filtered, coarse-grained reference of one configuration.

    Attributes
    ----------
    windows
        Training samples: the filtered coarse PV at each sample and over the next
        ``unroll_steps`` coarse steps, ``field_hat`` ``(members * samples, unroll_steps +
        1, 2, N, N // 2 + 1)``, time in s.
    forcing
        The sub-grid PV forcing at each sample's first state (Ross et al.'s ``S_q_tot``),
        ``(members * samples, 2, N, N)``, 1/s^2.
    eval_start
        The filtered state each evaluation run starts from, one per member.
    eval_states
        The filtered reference at the ``eval_snapshots`` times after it, ``field_hat``
        ``(members, eval_snapshots, 2, N, N // 2 + 1)``.
    """

    windows: SpectralState
    forcing: Float[Array, "samples 2 ny nx"]
    eval_start: SpectralState
    eval_states: SpectralState


def coarsener(settings: QGParameterizationSettings, configuration: str) -> SharpSpectralCoarsener:
    """Operator 1 of Ross et al. (2023) from the reference grid to the coarse grid."""
    fine = settings.model(configuration, settings.reference_points)
    coarse = settings.model(configuration, settings.coarse_points)
    return SharpSpectralCoarsener(fine.grid, coarse.grid)


def make_reference_data(
    key: PRNGKeyArray, settings: QGParameterizationSettings, configuration: str
) -> ReferenceData:
    """Run the reference and keep what the workflow needs (`ReferenceData`).

    ``num_members`` random starts (`hybrax.climate.TwoLayerQG.initial_state`) at
    ``reference_points``^2 are spun up for ``spin_up_days``, then give ``num_samples``
    training samples ``sample_interval_days`` apart, then run ``eval_days`` more for the
    evaluation. Every kept state is filtered and coarse-grained by
    `hybrax.climate.SharpSpectralCoarsener` (spectral truncation and the coarse model's own
    small-scale filter); the forcing is its ``subgrid_forcing``. All members run at once.
    """
    return _make(key, settings, configuration)


@eqx.filter_jit
def _make(key, settings: QGParameterizationSettings, configuration: str) -> ReferenceData:
    s, f = settings, settings.factor
    fine = s.model(configuration, s.reference_points)
    coarse_model = s.model(configuration, s.coarse_points)
    stepper = s.reference_stepper(configuration)
    operator = coarsener(s, configuration)
    interval = s.steps(s.sample_interval_days)
    per_snapshot = s.steps(s.eval_days) // s.eval_snapshots

    def sample(carry, _):  # carry: the reference stepper's carry (AB3 history kept)
        model_state = stepper.state_of(carry)
        first = operator.coarse_state(model_state)
        forcing = operator.subgrid_forcing(fine, coarse_model, model_state)
        carry, window = hybrax.rollout(
            stepper, carry, s.unroll_steps * f, save_every=f, observe=operator.coarse_state
        )
        rest = (interval - s.unroll_steps) * f
        if rest:
            carry, _ = hybrax.rollout(stepper, carry, rest, save_every=None)
        window = jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), first, window)
        return carry, (window, forcing)

    def member(member_key):
        state = fine.initial_state(member_key)
        spin = s.steps(s.spin_up(configuration)) * f
        carry, _ = hybrax.rollout(stepper, state, spin, save_every=None)
        carry, (windows, forcing) = jax.lax.scan(sample, carry, None, length=s.num_samples)
        start = operator.coarse_state(stepper.state_of(carry))
        _, states = hybrax.rollout(
            stepper,
            carry,
            s.eval_snapshots * per_snapshot * f,
            save_every=per_snapshot * f,
            observe=operator.coarse_state,
        )
        return windows, forcing, start, states

    keys = jax.random.split(key, s.num_members)
    windows, forcing, start, states = jax.vmap(member)(keys)
    flat = lambda tree: jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), tree)  # noqa: E731
    return ReferenceData(flat(windows), flat(forcing), start, states)
