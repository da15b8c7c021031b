"""Test configuration: 8 host CPU devices, float64 available, strict dtype promotion.

XLA_FLAGS must be set before jax is first imported, so this file does it at import time.
"""

import contextlib
import os
import re

_flags = os.environ.get("XLA_FLAGS", "")
if "--xla_backend_optimization_level" not in _flags:
    # LLVM at -O1 instead of -O2 for the tests (and the notebook kernels, which inherit the
    # environment): on a quiet 2-core machine tests/grids + tests/climate/test_lorenz.py use 7%
    # less CPU (71 vs 76 s; -O0 is slower for run-bound tests). IEEE semantics are unchanged
    # (no fast-math); benchmarks and user code never see this flag.
    _flags += " --xla_backend_optimization_level=1"
if "--xla_cpu_use_fusion_emitters" not in _flags:
    # XLA's older (elemental) CPU fusion code generator instead of the MLIR fusion emitters:
    # on one pinned core tests/core/test_stepper_contract.py + tests/fluids/test_navier_stokes.py
    # take 94 instead of 136 CPU-s (compile-bound), and the run-bound kolmogorov-correction
    # quick run + tests/md/test_integrators.py 158 instead of 167. Same IEEE semantics;
    # benchmarks and user code never see this flag either. (-O0 on top halves the compile
    # time again but doubles the run-bound tests: 234 vs 127 CPU-s.)
    # This emitter fuses a Python-unrolled chain of stencil reads exponentially (12
    # image-point sweeps took > 24 GB): repeat such work in a lax loop.
    _flags += " --xla_cpu_use_fusion_emitters=false"
os.environ["XLA_FLAGS"] = (_flags + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
if (
    os.environ.get("HYBRAX_TEST_COMPILE_CACHE", "1") == "1"
    and "JAX_COMPILATION_CACHE_DIR" not in os.environ
):
    # One persistent compilation cache for the whole run, shared by the xdist workers, the
    # notebook kernels and the subprocesses tests start (they inherit the environment): a
    # program compiled once (same HLO, same flags) is read back instead of compiled again.
    # Made here, in the first process that imports this file, and removed when that process
    # exits (it removes only this folder, which it made).
    import atexit
    import shutil
    import tempfile

    _cache = tempfile.mkdtemp(prefix="hybrax-tests-jax-cache-")
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
# Notebooks run by the suite (nbmake kernels inherit this) may use a smoke size for work whose
# claims a test already asserts at the quick size (see notebooks/kolmogorov_correction.ipynb).
os.environ.setdefault("HYBRAX_SMOKE", "1")

import jax  # noqa: E402 (XLA_FLAGS must be set first)
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


# The order in which files are handed to the xdist workers. pyproject's addopts run the suite
# with ``--dist loadfile --no-loadscope-reorder``: a worker runs a whole file, so it compiles the
# file's programs once (tests/climate + tests/core: 9% less CPU than one test at a time, 4% less
# than worksteal), and the longest files start first, so that the run ends on short files
# instead of one worker idling while the other finishes a long one.
_LONG_FIRST = (
    "notebooks/",
    "tests/test_docstrings.py",
    "tests/test_properties.py",
    "tests/parallel/",
    "tests/experiments/",
    "tests/md/",
    "tests/fluids/",
    "tests/climate/",
    "tests/core/",
    "tests/hybrid/",
)


def pytest_collection_modifyitems(config, items):
    def rank(item) -> int:
        return next(
            (i for i, prefix in enumerate(_LONG_FIRST) if item.nodeid.startswith(prefix)),
            len(_LONG_FIRST),
        )

    items.sort(key=rank)  # stable: each file keeps its tests in order


@pytest.fixture(scope="session")
def full_size(request) -> bool:
    """True under --runslow: slow tests use their full size, else a reduced one."""
    return bool(request.config.getoption("--runslow"))


@pytest.fixture(scope="session")
def type_checked(request) -> bool:
    """True when the suite runs under jaxtyping's runtime checks (pyproject's addopts;
    ``--jaxtyping-packages=``, empty, turns them off)."""
    return bool(request.config.getoption("--jaxtyping-packages", default=None))


@pytest.fixture(scope="session")
def wrong_type(type_checked):
    """``wrong_type(parameter, error, match)``: ``pytest.raises`` for an argument of the wrong type.

    Without jaxtyping's runtime checks the library's own check runs: ``error`` with a message
    matching ``match``. Under them (``--jaxtyping-packages=hybrax,...``, as in pyproject's addopts)
    the annotation check runs first and raises ``jaxtyping.TypeCheckError`` naming
    ``parameter``, unless the annotation admits the value (an ``int`` or ``bool`` where a
    ``float`` is annotated, under the PEP 484 numeric tower): then the library's own error, with
    its message, is still required.
    """
    from jaxtyping import TypeCheckError

    @contextlib.contextmanager
    def raises(parameter: str, error: type[Exception], match: str):
        if not type_checked:
            with pytest.raises(error, match=match):
                yield
            return
        with pytest.raises((TypeCheckError, error)) as caught:
            yield
        message = str(caught.value)
        if isinstance(caught.value, TypeCheckError):
            assert f"parameter '{parameter}'" in message, message
        else:
            assert re.search(match, message), f"{match!r} not in {message!r}"

    return raises


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    import jax.numpy as jnp

    return jnp.dtype(request.param)


def _finite_difference(fn, x, direction=None, eps=1e-4):
    """Fourth-order central difference of ``fn`` at ``x`` along ``direction`` (float64).

    ``(-f(x+2e) + 8 f(x+e) - 8 f(x-e) + f(x-2e)) / (12 eps)``: truncation error O(eps^4),
    so eps = 1e-4 leaves ~1e-10 relative error for smooth functions.
    """
    import jax

    if direction is None:
        direction = jax.tree.map(lambda v: 1.0 + 0 * v, x)

    def at(scale):
        return fn(jax.tree.map(lambda v, d: v + scale * eps * d, x, direction))

    return (-at(2) + 8 * at(1) - 8 * at(-1) + at(-2)) / (12 * eps)


@pytest.fixture(scope="session")
def finite_difference():
    """``finite_difference(fn, x, direction=None, eps=1e-4)``: 4th-order central difference."""
    return _finite_difference


@pytest.fixture(scope="module", autouse=True)
def _release_compiled_programs():
    """Drop jax's compiled programs after each test module.

    A test worker runs ~700 tests over half an hour; keeping every executable it compiled grew
    each worker to ~6 GB and two clean CI runs lost a worker to a crash inside XLA late in the
    run. Modules rarely share a compiled program, so this costs little compile time.
    """
    yield
    jax.clear_caches()
