import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
import hybrax.md as md


def test_minimum_image_and_shift():
    box = md.PeriodicBox(jnp.array([10.0, 8.0, 6.0]))
    d = box.displacement(jnp.array([0.5, 7.5, 0.1]), jnp.array([9.5, 0.5, 5.9]))
    np.testing.assert_allclose(d, [1.0, -1.0, 0.2], atol=1e-12)
    r = box.shift(jnp.array([9.9, 0.1, 5.0]), jnp.array([0.2, -0.2, 1.5]))
    np.testing.assert_allclose(r, [0.1, 7.9, 0.5], atol=1e-12)
    assert np.all(np.asarray(box.wrap(jnp.array([[-0.5, 8.5, 12.1]]))) >= 0)


def test_free_space_is_plain_difference():
    space = md.FreeSpace()
    np.testing.assert_allclose(space.displacement(jnp.ones(3) * 7, jnp.zeros(3)), [7.0] * 3)
    np.testing.assert_allclose(space.shift(jnp.zeros(3), jnp.ones(3) * 100), [100.0] * 3)


def test_box_is_a_differentiable_leaf():
    def dist(lengths):
        box = md.PeriodicBox(lengths)
        d = box.displacement(jnp.array([0.5, 0.0, 0.0]), jnp.array([9.5, 0.0, 0.0]))
        return d[0]

    # d = 0.5 - 9.5 + L  ->  d d / d Lx = 1
    grad = jax.grad(dist)(jnp.array([10.0, 10.0, 10.0]))
    np.testing.assert_allclose(grad, [1.0, 0.0, 0.0])


@pytest.mark.parametrize("lengths", [[1.0, 2.0], [0.0, 1.0, 1.0], [-1.0, 2.0, 2.0]])
def test_bad_box(lengths):
    with pytest.raises(ValueError, match="PeriodicBox"):
        md.PeriodicBox(jnp.array(lengths))


@pytest.mark.parametrize(
    "lengths", [float("inf"), float("nan"), -5.0, 0.0, 10.0 + 1.0j, True, "10", None]
)
def test_box_sides_must_be_positive_finite_reals(lengths, wrong_type):
    """Probe row 57: PeriodicBox(inf) was accepted and neighbor_list then failed with
    "cannot convert float NaN to integer"."""
    if lengths is None or isinstance(lengths, str):
        raises = wrong_type("lengths", hybrax.ConfigurationError, "PeriodicBox lengths")
    else:
        raises = pytest.raises(hybrax.ConfigurationError, match="PeriodicBox lengths")
    with raises:
        md.PeriodicBox(lengths)
