"""Online metrics of Ross et al. (2023) for `TwoLayerQG` runs: distances between a (coarse,
parameterised) model's statistics and a reference's, and similarity scores."""

from __future__ import annotations

import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from hybrax.core import ConfigurationError
from hybrax.grids import Grid, SpectralState

from ._qg import TwoLayerQG, _constants

__all__ = ["qg_distances", "qg_similarities", "wasserstein_distance"]


def wasserstein_distance(samples: ArrayLike, reference: ArrayLike) -> Float[Array, ""]:
    """Wasserstein-1 distance between the empirical distributions of two sets of samples,
    ``int |F(x) - G(x)| dx`` (as `scipy.stats.wasserstein_distance`, unweighted).

    Both arguments are flattened; their sizes may differ. Units: those of the samples.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from hybrax.climate import wasserstein_distance
    >>> float(wasserstein_distance(jnp.array([0.0, 1.0, 3.0]), jnp.array([5.0, 6.0, 8.0])))
    5.0
    """
    u = jnp.sort(jnp.ravel(jnp.asarray(samples)))
    v = jnp.sort(jnp.ravel(jnp.asarray(reference)))
    if u.size == 0 or v.size == 0:
        raise ConfigurationError("wasserstein_distance: samples and reference must be non-empty")
    dtype = jnp.result_type(u, v)
    u, v = u.astype(dtype), v.astype(dtype)
    points = jnp.sort(jnp.concatenate([u, v]))
    widths = jnp.diff(points)
    at = points[:-1]
    u_cdf = jnp.searchsorted(u, at, side="right").astype(dtype) / u.size
    v_cdf = jnp.searchsorted(v, at, side="right").astype(dtype) / v.size
    return jnp.sum(jnp.abs(u_cdf - v_cdf) * widths)


@functools.lru_cache(maxsize=16)
def _bins(grid: Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, int]:
    """pyqg's ``calc_ispec`` rings (averaging, truncated), computed with pyqg's own NumPy
    arithmetic so that the modes on ring edges (the diagonals ``|n_x| = |n_y|``) fall into
    the same ring as in pyqg: per-mode ring index (-1 outside), modes per ring, ring
    centres, the normalisation ``2 pi / (dk dl)`` and the number of rings below the
    cutoff of Ross et al.'s spectral distances (the first ``k_x`` where pyqg's filter acts,
    ``k_x dx > 0.65 pi``)."""
    (ly, lx), (ny, nx) = grid.domain_length, grid.shape
    dk, dl = 2.0 * math.pi / lx, 2.0 * math.pi / ly
    ll = dl * np.append(np.arange(0.0, ny / 2), np.arange(-ny / 2, 0.0))
    kk = dk * np.arange(0.0, nx // 2 + 1)
    k, l = np.meshgrid(kk, ll)
    wv = np.sqrt(k**2 + l**2)
    kmax = np.minimum(np.abs(ll).max(), np.abs(kk).max())
    dkr = np.sqrt(dk**2 + dl**2)
    edges = np.arange(0, kmax, dkr)
    index = np.full(wv.shape, -1, np.int64)
    for i, left in enumerate(edges):
        if i == edges.size - 1:
            ring = (wv >= left) & (wv <= left + dkr)
        else:
            ring = (wv >= left) & (wv < edges[i + 1])
        index[ring] = i
    counts = np.bincount(index[index >= 0], minlength=edges.size).astype(np.float64)
    centres = edges + dkr / 2
    wvx = np.sqrt((kk * (lx / nx)) ** 2)
    cutoff = kk[np.argmax(wvx > 0.65 * math.pi)]
    keep = int(np.sum(centres < cutoff))
    return index.ravel(), counts, centres, 2 * math.pi / (dk * dl), keep


def _isotropic(grid: Grid, density: Array) -> Array:
    """pyqg's ``calc_ispec(model, density)`` (averaging over rings) of a per-mode density of
    shape ``(..., *grid.spectral_shape)``: the first and last ``k_x`` columns halved, the
    mean over each ring times ``2 pi k / (dk dl)``."""
    index, counts, centres, norm, _ = _bins(grid)
    half = np.ones(grid.spectral_shape[-1])
    half[0] = half[-1] = 0.5
    weighted = density * jnp.asarray(half, density.dtype)
    lead = weighted.shape[:-2]
    flat = weighted.reshape(*lead, -1)
    valid = index.ravel() >= 0
    sums = jnp.zeros((*lead, counts.size), density.dtype)
    sums = sums.at[..., index.ravel()[valid]].add(flat[..., valid])
    scale = centres * norm / np.maximum(counts, 1)
    return sums * jnp.asarray(scale, density.dtype)


def _check_trajectory(owner: str, name: str, model, states) -> tuple[int, ...]:
    if not isinstance(model, TwoLayerQG):
        raise ConfigurationError(
            f"{owner}: expected a TwoLayerQG model, got {type(model).__name__}"
        )
    if not isinstance(states, SpectralState):
        raise ConfigurationError(
            f"{owner}: {name} must be a SpectralState trajectory (rollout's saved states), got "
            f"{type(states).__name__}"
        )
    shape = tuple(jnp.shape(states.field_hat))
    expected = (2, *model.grid.spectral_shape)
    if len(shape) < 4 or shape[-3:] != expected:
        raise ConfigurationError(
            f"{owner}: {name}.field_hat must have shape (..., time, "
            f"{', '.join(map(str, expected))})"
            f" (snapshots stacked along a time axis, e.g. hybrax.rollout's saved states), got "
            f"{shape}"
        )
    return shape[:-3]


def _fields(model: TwoLayerQG, field_hat: Array) -> dict[str, Array]:
    """q, full u and v (mean flow included), u^2 + v^2 and relative vorticity squared on the
    grid, each ``(..., 2, ny, nx)``."""
    real = field_hat.real.dtype
    kx, ky, k2 = _constants(model.grid, np.dtype(real))[:3]
    psi = jax.vmap(model._inversion)(field_hat.reshape(-1, *field_hat.shape[-3:]))
    psi = psi.reshape(field_hat.shape)
    u_hat = jax.lax.complex(ky * psi.imag, -ky * psi.real)  # -i k_y psi
    v_hat = jax.lax.complex(-kx * psi.imag, kx * psi.real)  # i k_x psi
    zeta_hat = jax.lax.complex(-k2 * psi.real, -k2 * psi.imag)
    q, u, v, zeta = (
        model.grid.irfft(x, norm="forward") for x in (field_hat, u_hat, v_hat, zeta_hat)
    )
    mean = jnp.stack([model.upper_velocity, model.lower_velocity]).astype(real)[:, None, None]
    u = u + mean
    return {"q": q, "u": u, "v": v, "KE": u * u + v * v, "Ens": zeta * zeta}


def _spectra(model: TwoLayerQG, field_hat: Array) -> dict[str, Array]:
    """Time- and run-mean isotropic KE and enstrophy (PV variance) spectra, pyqg's
    ``KEspec`` and ``Ensspec`` (``(2, bins)``)."""
    real = field_hat.real.dtype
    k2 = _constants(model.grid, np.dtype(real))[2]
    flat = field_hat.reshape(-1, *field_hat.shape[-3:])
    psi = jax.vmap(model._inversion)(flat)
    abs2 = lambda z: jnp.mean(z.real * z.real + z.imag * z.imag, axis=0)  # noqa: E731
    return {
        "KEspec": _isotropic(model.grid, k2 * abs2(psi)),
        "Ensspec": _isotropic(model.grid, abs2(flat)),
    }


def qg_distances(
    model: TwoLayerQG,
    states: SpectralState,
    reference_model: TwoLayerQG,
    reference_states: SpectralState,
    *,
    num_ending_steps: int = 10,
) -> dict[str, Float[Array, ""]]:
    """Distances between the statistics of two `TwoLayerQG` trajectories (Ross et al. 2023,
    pyqg-parameterization-benchmarks' ``diagnostic_differences``), per layer ``z = 1, 2``.

    Typically ``model`` is a coarse (parameterised) model and the reference the filtered and
    coarse-grained high-resolution run (`AbstractSpectralCoarsener.coarse_state`); the
    two may have different resolutions of the same domain.

    - ``distrib_diff_{q,u,v,KE,Ens}{z}``: Wasserstein-1 distance (`wasserstein_distance`)
      between the distributions of PV ``q`` (1/s), full velocities ``u + U_z``, ``v`` (m/s),
      ``u^2 + v^2`` (m^2/s^2) and squared relative vorticity (1/s^2), pooled over space, runs
      and the last ``num_ending_steps`` snapshots.
    - ``spectral_diff_{KEspec,Ensspec}{z}``: root-mean-square difference between the time-
      and run-mean isotropic spectra (pyqg's ``KEspec`` = ``|k|^2 |psi_hat|^2`` and
      ``Ensspec`` = ``|q_hat|^2``, ring-averaged as pyqg's ``calc_ispec``) over the rings
      below both models' "2/3 Nyquist" wavenumber (the first ``k_x`` the model filter
      touches, ``k_x dx > 0.65 pi``).
    - ``timeseries_diff_KE{z}``: root-mean-square difference between the run-mean layer
      kinetic-energy time series (m^2/s^2; equal numbers of snapshots required).
    - ``relative_diff_KE``: ``|<KE>/<KE_ref> - 1|`` of the depth-averaged kinetic energy
      averaged over all snapshots (the issue's "within 10%" criterion).

    Parameters
    ----------
    model, reference_model
        The two models (their grids and mean flows are used).
    states, reference_states
        Trajectories: `SpectralState` with ``field_hat`` of shape
        ``(*runs, time, 2, ny, nk)`` (e.g. `hybrax.rollout`'s saved states, vmapped over
        runs). Spin-up should be cut off by the caller; spectra average all snapshots.
    num_ending_steps
        Snapshots (from the end) pooled for the distributions (default 10, as the paper).

    Returns
    -------
    A dict of scalar distances (lower is better; 0, up to round-off, for identical
    statistics).

    Examples
    --------
    >>> import jax, hybrax
    >>> from hybrax.climate import TwoLayerQG, qg_distances
    >>> model = TwoLayerQG.eddy(16)
    >>> stepper = model.pyqg_stepper(3600.0)
    >>> _, states = hybrax.rollout(stepper, model.initial_state(), 12, save_every=4)
    >>> louder = hybrax.grids.SpectralState(1.1 * states.field_hat, states.time)
    >>> distances = qg_distances(model, louder, model, states)
    >>> round(float(distances["relative_diff_KE"]), 6)  # KE is quadratic in q
    0.21
    """
    owner = "qg_distances"
    lead = _check_trajectory(owner, "states", model, states)
    reference_lead = _check_trajectory(owner, "reference_states", reference_model, reference_states)
    if not isinstance(num_ending_steps, int) or num_ending_steps < 1:
        raise ConfigurationError(
            f"{owner}: num_ending_steps must be a positive int, got {num_ending_steps!r}"
        )
    if not all(
        math.isclose(a, b, rel_tol=1e-12)
        for a, b in zip(model.grid.domain_length, reference_model.grid.domain_length, strict=True)
    ):
        raise ConfigurationError(
            f"{owner}: the models must share the domain, got sides {model.grid.domain_length} "
            f"and {reference_model.grid.domain_length}"
        )
    if lead[-1] != reference_lead[-1]:
        raise ConfigurationError(
            f"{owner}: the KE time series need the same number of snapshots, got {lead[-1]} "
            f"and {reference_lead[-1]}"
        )
    return _distances(
        model, states.field_hat, reference_model, reference_states.field_hat, num_ending_steps
    )


@eqx.filter_jit
def _distances(
    model: TwoLayerQG,
    field_hat: Array,
    reference_model: TwoLayerQG,
    reference_hat: Array,
    num_ending_steps: int,
) -> dict[str, Array]:
    out: dict[str, Array] = {}
    window = slice(-num_ending_steps, None)
    ours = _fields(model, field_hat[..., window, :, :, :])
    theirs = _fields(reference_model, reference_hat[..., window, :, :, :])
    for name in ("q", "u", "v", "KE", "Ens"):
        for z in (0, 1):
            out[f"distrib_diff_{name}{z + 1}"] = wasserstein_distance(
                ours[name][..., z, :, :], theirs[name][..., z, :, :]
            )
    keep = min(_bins(model.grid)[4], _bins(reference_model.grid)[4])
    spectra, reference_spectra = (
        _spectra(model, field_hat),
        _spectra(reference_model, reference_hat),
    )
    for name in ("KEspec", "Ensspec"):
        for z in (0, 1):
            difference = spectra[name][z, :keep] - reference_spectra[name][z, :keep]
            out[f"spectral_diff_{name}{z + 1}"] = jnp.sqrt(jnp.mean(difference * difference))
    series = _kinetic_energy_series(model, field_hat)
    reference_series = _kinetic_energy_series(reference_model, reference_hat)
    for z in (0, 1):
        difference = series[:, z] - reference_series[:, z]
        out[f"timeseries_diff_KE{z + 1}"] = jnp.sqrt(jnp.mean(difference * difference))
    mean_ke = _depth_mean(model, series)
    out["relative_diff_KE"] = jnp.abs(mean_ke / _depth_mean(reference_model, reference_series) - 1)
    return out


def _kinetic_energy_series(model: TwoLayerQG, field_hat: Array) -> Array:
    """Run-mean layer kinetic energy per snapshot, ``(time, 2)``."""
    flat = field_hat.reshape(-1, *field_hat.shape[-4:])
    energy = jax.vmap(jax.vmap(lambda f: model.kinetic_energy(SpectralState(f, 0.0))))(flat)
    return jnp.mean(energy, axis=0)


def _depth_mean(model: TwoLayerQG, series: Array) -> Array:
    depths = model.layer_depths.astype(series.dtype)
    return jnp.mean(jnp.sum(series * depths / jnp.sum(depths), axis=-1))


def qg_similarities(
    distances: dict[str, ArrayLike], baseline_distances: dict[str, ArrayLike]
) -> dict[str, Float[Array, ""]]:
    """Similarity scores ``1 - d(model, target) / d(baseline, target)`` per metric (Ross et
    al. 2023, ``diagnostic_similarities``): 1 for a perfect match, 0 for no better than the
    baseline (typically the unparameterised coarse model), negative when worse.

    Examples
    --------
    >>> from hybrax.climate import qg_similarities
    >>> qg_similarities({"spectral_diff_KEspec1": 1.0}, {"spectral_diff_KEspec1": 4.0})
    {'spectral_diff_KEspec1': Array(0.75, dtype=float..., weak_type=True)}
    """
    missing = sorted(set(distances) - set(baseline_distances))
    if missing:
        raise ConfigurationError(
            f"qg_similarities: baseline_distances lacks {missing}; compute both with qg_distances"
        )
    return {
        k: 1 - jnp.asarray(d) / jnp.asarray(baseline_distances[k]) for k, d in distances.items()
    }
