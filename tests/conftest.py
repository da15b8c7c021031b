"""Test configuration: 8 host CPU devices, float64 available, strict dtype promotion.

XLA_FLAGS must be set before jax is first imported, so this file does it at import time.
"""

import os

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")


def pytest_addoption(parser):
    parser.addoption(
        "--runslow",
        action="store_true",
        default=False,
        help="run the slow physics checks at full size (default: reduced size)",
    )


@pytest.fixture(scope="session")
def full_size(request) -> bool:
    """True under --runslow: slow tests use their full size, else a reduced one."""
    return bool(request.config.getoption("--runslow"))


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    import jax.numpy as jnp

    return jnp.dtype(request.param)
