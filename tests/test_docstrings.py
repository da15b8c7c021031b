"""Every public docstring's examples run, with :mod:`doctest`, as they are written.

The objects are those each package exports in ``__all__`` (classes with their methods and
properties, functions, and the package docstrings); an object exported by several packages runs
once. The tests run with x64 on and strict dtype promotion (``conftest.py``), so the examples
are written to pass there. Output is compared with ``ELLIPSIS`` and ``NORMALIZE_WHITESPACE``.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import types

import pytest

PACKAGES = (
    "hybrax",
    "hybrax.core",
    "hybrax.errors",
    "hybrax.grids",
    "hybrax.fluids",
    "hybrax.climate",
    "hybrax.md",
    "hybrax.nn",
    "hybrax.hybrid",
    "hybrax.parallel",
    "hybrax.io",
    "hybrax.experiments",
)
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _public_doctests() -> dict[str, doctest.DocTest]:
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests: dict[str, doctest.DocTest] = {}
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        for test in finder.find(package, package_name, module=package):
            if test.name == package_name:  # the package docstring itself, not its members
                tests.setdefault(test.name, test)
        for name in package.__all__:
            obj = getattr(package, name)
            if isinstance(obj, types.ModuleType):
                continue
            if not (inspect.isclass(obj) or inspect.isroutine(obj)):
                continue  # constants: their docstring is their type's
            module = inspect.getmodule(obj)
            if module is None or not module.__name__.startswith("hybrax"):
                continue
            qualname = f"{module.__name__}.{obj.__qualname__}"
            for test in finder.find(obj, qualname, module=module):
                if test.examples:
                    tests.setdefault(test.name, test)
    return dict(sorted(tests.items()))


DOCTESTS = _public_doctests()


def test_there_are_examples():
    assert len(DOCTESTS) > 100


@pytest.mark.parametrize("name", list(DOCTESTS))
def test_docstring_example(name):
    test = DOCTESTS[name]
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    output: list[str] = []
    result = runner.run(test, out=output.append, clear_globs=False)
    assert result.failed == 0, "".join(output)
