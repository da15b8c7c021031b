"""Vortex-shedding diagnostics from a time series: dominant frequency and Strouhal number."""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from hybrax.core import ConfigurationError, check_parameter, concrete_or_none

__all__ = ["dominant_frequency", "strouhal_number"]

_METHODS = ("crossings", "fft")


def dominant_frequency(
    signal: Float[Array, " time"], dt: ArrayLike, method: str = "crossings"
) -> Array:
    """Frequency (1/time) of a periodic signal sampled every ``dt``.

    Parameters
    ----------
    signal
        Samples at equal spacing ``dt``, shape ``(n,)``, at least 8; a lift history, say.
        Drop the start-up transient first.
    dt
        Sampling interval (time units), positive.
    method
        ``"crossings"`` (default): upward crossings of the signal's mean, each located by
        linear interpolation between samples; the frequency is ``(crossings - 1)`` over the
        time between the first and last crossing. Exact for a pure sine up to the
        interpolation error ``O((f dt)^2)``, and blind to even harmonics (the drag's 2f in a
        lift signal does not add crossings). It needs at least two crossings and a signal
        that crosses its mean once per period (no strong odd harmonics or noise).
        ``"fft"``: the peak of the Hann-windowed periodogram of the mean-free signal,
        refined by a parabola through the log-magnitudes of the peak and its two
        neighbours: robust to noise, accurate to a small fraction of ``1 / (n dt)``.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> t = jnp.arange(2000.0) * 0.01
    >>> lift = 0.8 * jnp.sin(2 * jnp.pi * 3.03 * t + 0.4)
    >>> round(float(dominant_frequency(lift, 0.01)), 4)
    3.03
    >>> round(float(dominant_frequency(lift, 0.01, "fft")), 2)
    3.03
    """
    signal = check_parameter(signal, "signal")
    if signal.ndim != 1 or signal.shape[0] < 8:
        raise ConfigurationError(
            f"signal must be a 1-D time series of at least 8 samples, got shape {signal.shape}"
        )
    if method not in _METHODS:
        raise ConfigurationError(f"method must be one of {_METHODS}, got {method!r}")
    dt = jnp.asarray(check_parameter(dt, "dt", positive=True, scalar=True), signal.dtype)
    x = signal - jnp.mean(signal)
    # a constant signal has no frequency (the periodogram's peak would be noise)
    flat = jnp.all(x == 0)
    if method == "crossings":
        frequency, count = _crossing_frequency(x, dt)
        return _checked(frequency, flat | (count < 2), count)
    return _checked(_spectral_peak(x, dt), flat, None)


def _checked(frequency: Array, bad: Array, count: Array | None) -> Array:
    """``frequency``, or an error for a signal without a period (constant, or fewer than
    two upward crossings of its mean): a `ConfigurationError` when concrete, an
    `equinox.error_if` when traced."""
    hint = (
        "dominant_frequency: the signal has no measurable period (it is constant or crosses "
        "its mean upwards fewer than 2 times); pass a longer history that spans at least "
        "two periods after the transient"
    )
    known = concrete_or_none(bad)
    if known is None:
        return eqx.error_if(frequency, bad, hint)
    if bool(known):
        got = "" if count is None else f" (got {int(count)} upward crossings)"
        raise ConfigurationError(hint + got)
    return frequency


def _crossing_frequency(x: Array, dt: Array) -> tuple[Array, Array]:
    up = (x[:-1] < 0) & (x[1:] >= 0)
    fraction = x[:-1] / jnp.where(up, x[:-1] - x[1:], 1.0)  # where in [i, i+1] it crosses
    times = (jnp.arange(x.shape[0] - 1, dtype=x.dtype) + fraction) * dt
    count = jnp.sum(up)
    first = jnp.min(jnp.where(up, times, jnp.inf))
    last = jnp.max(jnp.where(up, times, -jnp.inf))
    frequency = (count - 1).astype(x.dtype) / (last - first)
    return jnp.where(count >= 2, frequency, jnp.nan), count


def _spectral_peak(x: Array, dt: Array) -> Array:
    n = x.shape[0]
    window = 0.5 - 0.5 * jnp.cos(2 * jnp.pi * jnp.arange(n, dtype=x.dtype) / n)
    power = jnp.abs(jnp.fft.rfft(x * window)) + jnp.finfo(x.dtype).tiny
    k = jnp.clip(jnp.argmax(power.at[0].set(0.0)), 1, power.shape[0] - 2)
    lo, mid, hi = (jnp.log(power[k + s]) for s in (-1, 0, 1))
    curvature = lo - 2 * mid + hi
    offset = jnp.where(curvature < 0, 0.5 * (lo - hi) / jnp.where(curvature < 0, curvature, -1), 0)
    return (k.astype(x.dtype) + offset) / (n * dt)


def strouhal_number(
    lift: Float[Array, " time"],
    dt: ArrayLike,
    length: ArrayLike,
    velocity: ArrayLike,
    method: str = "crossings",
) -> Array:
    """Strouhal number ``St = f length / velocity`` of vortex shedding, with ``f`` the
    `dominant_frequency` of the lift history (one lift period is one pair of shed vortices).

    Parameters
    ----------
    lift
        Lift (or lift coefficient) history sampled every ``dt``, after the start-up
        transient, shape ``(n,)``.
    dt
        Sampling interval (time units), positive.
    length
        Body size (the cylinder's diameter; length units), positive.
    velocity
        Reference speed (DFG: the mean inflow speed, 2/3 of the peak; length/time), positive.
    method
        ``"crossings"`` or ``"fft"``, see `dominant_frequency`.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> t = jnp.arange(3000.0) * 0.005  # DFG 2D-2: D = 0.1, U_mean = 1, St = 0.3 -> f = 3
    >>> lift = jnp.sin(2 * jnp.pi * 3.0 * t) + 0.1 * jnp.sin(4 * jnp.pi * 3.0 * t)
    >>> round(float(strouhal_number(lift, 0.005, 0.1, 1.0)), 4)
    0.3
    """
    frequency = dominant_frequency(lift, dt, method)
    length = check_parameter(length, "length", positive=True, scalar=True)
    velocity = check_parameter(velocity, "velocity", positive=True, scalar=True)
    dtype = frequency.dtype
    return frequency * jnp.asarray(length, dtype) / jnp.asarray(velocity, dtype)
