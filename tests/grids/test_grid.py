"""Grid: transforms, wavenumbers, spectral operators, dealiasing, filters, bad input."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybrax.errors import ConfigurationError
from hybrax.grids import Grid

TOL = {"float32": 2e-4, "float64": 1e-11}


def _tol(dtype):
    return TOL[jnp.dtype(dtype).name]


@pytest.mark.parametrize(
    "shape, length",
    [((16,), 2 * math.pi), ((32, 16), (2.0, 3.0)), ((8, 12, 16), 1.0)],
)
def test_geometry(shape, length):
    grid = Grid(shape, length)
    lengths = length if isinstance(length, tuple) else (length,) * len(shape)
    assert grid.ndim == len(shape)
    assert grid.spectral_shape == (*shape[:-1], shape[-1] // 2 + 1)
    assert grid.num_points == math.prod(shape)
    np.testing.assert_allclose(grid.spacing, [L / n for L, n in zip(lengths, shape, strict=True)])
    coords = grid.coordinates(jnp.float64)
    assert len(coords) == len(shape) and all(c.shape == shape for c in coords)
    for axis, c in enumerate(coords):
        step = np.diff(np.moveaxis(np.asarray(c), axis, 0), axis=0)
        np.testing.assert_allclose(step, grid.spacing[axis])
    for axis, k in enumerate(grid.wavenumbers(jnp.float64)):
        assert k.ndim == grid.ndim and k.shape[axis] == grid.spectral_shape[axis]
        assert k.size == grid.spectral_shape[axis]
    k_last = np.asarray(grid.wavenumbers(jnp.float64)[-1]).ravel()
    np.testing.assert_allclose(k_last, 2 * np.pi / lengths[-1] * np.arange(shape[-1] // 2 + 1))


@pytest.mark.parametrize("shape", [(16,), (16, 8), (8, 6, 10)])
def test_round_trip_and_normalisation(shape, dtype):
    grid = Grid(shape, 3.0)
    key = jax.random.key(0)
    field = jax.random.normal(key, (2, *shape), dtype)  # a leading layer axis
    field_hat = grid.to_spectral(field)
    assert field_hat.shape == (2, *grid.spectral_shape)
    assert field_hat.real.dtype == dtype
    np.testing.assert_allclose(grid.to_physical(field_hat), field, atol=_tol(dtype))
    # forward normalisation: the zero mode is the mean, Parseval with hermitian weights
    mean = field.reshape(2, -1).mean(axis=1)
    np.testing.assert_allclose(
        field_hat[(slice(None),) + (0,) * len(shape)].real, mean, atol=_tol(dtype)
    )
    weights = grid.hermitian_weights(dtype)
    power = jnp.sum(weights * jnp.abs(field_hat) ** 2, axis=tuple(range(1, field_hat.ndim)))
    np.testing.assert_allclose(
        power, jnp.mean(field**2, axis=tuple(range(1, field.ndim))), rtol=_tol(dtype)
    )


def test_fourier_amplitudes_are_resolution_independent():
    for n in (8, 32):
        grid = Grid((n,), 2 * np.pi)
        (x,) = grid.coordinates(jnp.float64)
        f_hat = grid.to_spectral(3.0 * jnp.cos(2 * x) + 0.5)
        np.testing.assert_allclose(f_hat[0].real, 0.5, atol=1e-14)
        np.testing.assert_allclose(f_hat[2].real, 1.5, atol=1e-14)


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_derivatives_of_trigonometric_polynomials(order, dtype):
    grid = Grid((32, 16, 8), (2 * np.pi, np.pi, 4.0))
    x, y, z = grid.coordinates(dtype)
    a, b, c = 3.0, 2.0 * 2, 2 * np.pi / 4.0 * 2  # resolved wavenumbers on each axis
    f = jnp.sin(a * x + 0.3) * jnp.cos(b * y) * jnp.sin(c * z)
    f_hat = grid.to_spectral(f)
    exact = [
        a**order * jnp.sin(a * x + 0.3 + order * np.pi / 2) * jnp.cos(b * y) * jnp.sin(c * z),
        b**order * jnp.sin(a * x + 0.3) * jnp.cos(b * y + order * np.pi / 2) * jnp.sin(c * z),
        c**order * jnp.sin(a * x + 0.3) * jnp.cos(b * y) * jnp.sin(c * z + order * np.pi / 2),
    ]
    for axis in range(3):
        result = grid.to_physical(grid.derivative(f_hat, axis, order))
        scale = max(a, b, c) ** order
        np.testing.assert_allclose(result, exact[axis], atol=_tol(dtype) * scale)
    gradient = grid.to_physical(grid.gradient(f_hat))
    assert gradient.shape == (3, *grid.shape)


def test_odd_derivatives_drop_the_nyquist_mode():
    grid = Grid((16, 8))
    x, y = grid.coordinates(jnp.float64)
    nyquist = jnp.cos(8 * x) + jnp.cos(4 * y)  # pure Nyquist modes on each axis
    f_hat = grid.to_spectral(nyquist)
    for axis in range(2):
        assert jnp.max(jnp.abs(grid.derivative(f_hat, axis, 1))) < 1e-13
        assert jnp.max(jnp.abs(grid.derivative(f_hat, axis, 3))) < 1e-13
    d2 = grid.to_physical(grid.derivative(f_hat, 0, 2))
    np.testing.assert_allclose(d2, -64 * jnp.cos(8 * x), atol=1e-12)


def test_spectral_accuracy_is_exponential():
    """The derivative of the analytic periodic function exp(sin x) converges exponentially."""
    errors = []
    sizes = (8, 12, 16, 20, 24)
    for n in sizes:
        grid = Grid((n,))
        (x,) = grid.coordinates(jnp.float64)
        f = jnp.exp(jnp.sin(x))
        df = grid.to_physical(grid.derivative(grid.to_spectral(f), 0))
        errors.append(float(jnp.max(jnp.abs(df - jnp.cos(x) * f))))
    # log(error) linear in N: each +4 points gains more than a factor 30 until round-off
    ratios = [e0 / e1 for e0, e1 in itertools.pairwise(errors)]
    assert all(r > 30 for r in ratios), (errors, ratios)
    assert errors[-1] < 1e-12


def test_laplacian_and_poisson_solve(dtype):
    grid = Grid((32, 32), (2.0, 4.0))
    x, y = grid.coordinates(dtype)
    kx, ky = 2 * np.pi / 2.0 * 3, 2 * np.pi / 4.0 * 2
    psi = jnp.sin(kx * x) * jnp.cos(ky * y)
    psi_hat = grid.to_spectral(psi + 1.5)  # a mean the Poisson solve cannot recover
    lap = grid.to_physical(grid.laplacian(psi_hat))
    np.testing.assert_allclose(lap, -(kx**2 + ky**2) * psi, atol=_tol(dtype) * 100)
    back = grid.to_physical(grid.inverse_laplacian(grid.laplacian(psi_hat)))
    np.testing.assert_allclose(back, psi, atol=_tol(dtype))
    k2 = grid.wavenumber_squared(dtype)
    assert k2[0, 0] == 0 and k2.shape == grid.spectral_shape
    assert grid.inverse_laplacian(psi_hat)[0, 0] == 0


def test_dealias_mask_counts_and_removes_aliasing():
    grid = Grid((24, 18))
    mask = np.asarray(grid.dealias_mask(jnp.float64))
    # |n_x| < 8 -> 15 rows; n_y in 0..5 (|n| < 6) -> 6 columns
    assert mask.sum() == 15 * 6
    # a product of 2/3-truncated fields, truncated again, equals the exact product
    # computed on a grid fine enough to hold it, then projected back
    key1, key2 = jax.random.split(jax.random.key(1))
    f_hat = grid.dealias(grid.to_spectral(jax.random.normal(key1, grid.shape, jnp.float64)))
    g_hat = grid.dealias(grid.to_spectral(jax.random.normal(key2, grid.shape, jnp.float64)))
    aliased = grid.dealias(grid.to_spectral(grid.to_physical(f_hat) * grid.to_physical(g_hat)))
    from hybrax.grids import resample

    fine = Grid((48, 36))
    exact = fine.to_spectral(
        fine.to_physical(resample(f_hat, grid, fine))
        * fine.to_physical(resample(g_hat, grid, fine))
    )
    exact = grid.dealias(resample(exact, fine, grid))
    np.testing.assert_allclose(aliased, exact, atol=1e-14)
    # without dealiasing the same product does alias
    f_full = grid.to_spectral(jax.random.normal(key1, grid.shape, jnp.float64))
    raw = grid.to_spectral(grid.to_physical(f_full) ** 2)
    exact_raw = resample(
        fine.to_spectral(fine.to_physical(resample(f_full, grid, fine)) ** 2), fine, grid
    )
    assert jnp.max(jnp.abs(grid.dealias(raw) - grid.dealias(exact_raw))) > 1e-3


def test_exponential_filter_matches_pyqg_form():
    grid = Grid((64, 64), 1e6)
    filt = np.asarray(grid.exponential_filter(jnp.float64))
    kx, ky = (np.asarray(k) for k in grid.wavenumbers(jnp.float64))
    dx = grid.spacing[0]
    wv = np.sqrt((kx * dx) ** 2 + (ky * dx) ** 2)
    expected = np.where(wv > 0.65 * np.pi, np.exp(-23.6 * (wv - 0.65 * np.pi) ** 4), 1.0)
    np.testing.assert_allclose(filt, expected, rtol=1e-12)
    assert filt[0, 0] == 1 and filt[32, 32] < 1e-3
    with pytest.raises(ConfigurationError, match="even int"):
        grid.exponential_filter(order=3)
    with pytest.raises(ConfigurationError, match="cutoff"):
        grid.exponential_filter(cutoff=1.5)


def test_operators_under_jit_vmap_grad():
    grid = Grid((16, 16))

    @jax.jit
    def energy_of_gradient(field):
        f_hat = grid.to_spectral(field)
        return jnp.sum(grid.to_physical(grid.gradient(f_hat)) ** 2)

    fields = jax.random.normal(jax.random.key(2), (3, 16, 16), jnp.float64)
    batched = jax.vmap(energy_of_gradient)(fields)
    assert batched.shape == (3,)
    np.testing.assert_allclose(batched[1], energy_of_gradient(fields[1]), rtol=1e-12)
    # grad of sum |D f|^2 is 2 D^T D f = -2 D D f (D is skew; it drops the Nyquist modes)
    g = jax.grad(energy_of_gradient)(fields[0])
    f_hat = grid.to_spectral(fields[0])
    twice = sum(grid.derivative(grid.derivative(f_hat, a), a) for a in range(2))
    expected = -2 * grid.to_physical(twice)
    np.testing.assert_allclose(g, expected, atol=1e-10)
    # and against central finite differences in one direction
    direction = jax.random.normal(jax.random.key(3), (16, 16), jnp.float64)
    eps = 1e-6
    fd = (
        energy_of_gradient(fields[0] + eps * direction)
        - energy_of_gradient(fields[0] - eps * direction)
    ) / (2 * eps)
    np.testing.assert_allclose(jnp.sum(g * direction), fd, rtol=1e-7)


@pytest.mark.parametrize(
    "shape, error, match",
    [
        ((63, 64), ConfigurationError, "even ints >= 4"),
        ((64, 2), ConfigurationError, "even ints >= 4"),
        ((64.0,), None, "even ints >= 4"),
        ((8, 8, 8, 8), ConfigurationError, "1 to 3 axes"),
    ],
)
def test_bad_grid_shapes(shape, error, match, wrong_type):
    raises = (
        pytest.raises(error, match=match)
        if error
        else wrong_type("shape", ConfigurationError, match)
    )
    with raises:
        Grid(shape)


def test_odd_size_message_suggests_even_sizes():
    with pytest.raises(ConfigurationError, match=r"use e.g. \(64, 64\)"):
        Grid((63, 64))


def test_bad_domain_and_fields(wrong_type):
    with pytest.raises(ConfigurationError, match="domain_length"):
        Grid((8, 8), -1.0)
    with pytest.raises(ConfigurationError, match="2 axes"):
        Grid((8, 8), (1.0, 2.0, 3.0))
    grid = Grid((16, 16))
    with pytest.raises(ConfigurationError, match=r"must end in the axes \(16, 16\)"):
        grid.to_spectral(jnp.zeros((16, 8)))
    with wrong_type("field", ConfigurationError, "real floating"):
        grid.to_spectral(jnp.zeros((16, 16), jnp.int32))
    with pytest.raises(ConfigurationError, match="to_spectral"):
        grid.to_physical(jnp.zeros((16, 16), jnp.complex64))
    with pytest.raises(ConfigurationError, match="axis"):
        grid.derivative(jnp.zeros((16, 9), jnp.complex64), axis=2)
    with pytest.raises(ConfigurationError, match="physical field"):
        grid.check_spectral("w_hat", jnp.zeros((16, 16)), model="M")
    with pytest.raises(ConfigurationError, match="complex"):
        grid.check_spectral("w_hat", jnp.zeros((16, 9)), model="M")
    with pytest.raises(ConfigurationError, match="vmap"):
        grid.check_spectral("w_hat", jnp.zeros((4, 16, 9), jnp.complex64), model="M")


def test_spectral_state_and_courant_number_arguments(wrong_type):
    from hybrax.grids import SpectralState, courant_number

    with wrong_type("field_hat", ConfigurationError, "field_hat must be an array"):
        SpectralState("x")
    grid = Grid((8, 8))
    with pytest.raises(ConfigurationError, match="dt must be positive and finite"):
        courant_number(grid, jnp.zeros((2, 8, 8)), float("nan"))
