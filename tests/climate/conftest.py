"""Shared fixtures of the climate tests."""

import numpy as np
import pytest


def _random_qg_pv(n: int, seed: int = 1, peak: float = 12.0, length: float = 1e6) -> np.ndarray:
    """A random two-layer PV field (float64 NumPy, 1/s, shape ``(2, n, n)``, std 2e-6) with
    random phases and energy peaked at wavenumber index ``peak`` (near the deformation scale
    for the default 12 on a 1000 km domain), built in NumPy so that no eager JAX op compiles."""
    k = 2 * np.pi / length
    ky = np.fft.fftfreq(n, 1 / n)[:, None] * k
    kx = np.fft.rfftfreq(n, 1 / n)[None, :] * k
    index = np.sqrt(kx**2 + ky**2) / k
    amplitude = index * np.exp(-((index / peak) ** 2))
    phases = np.random.default_rng(seed).uniform(0, 2 * np.pi, (2, n, n // 2 + 1))
    q = np.fft.irfftn(amplitude * np.exp(1j * phases), s=(n, n), axes=(-2, -1), norm="forward")
    return 2e-6 * q / np.std(q)


@pytest.fixture(scope="session")
def random_qg_pv():
    """``random_qg_pv(n, seed=1, peak=12.0)``: a random eddying two-layer PV field."""
    return _random_qg_pv
