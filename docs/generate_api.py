"""Write the API reference pages, ``docs/api/*.md``, from each package's ``__all__``.

Run ``python docs/generate_api.py`` after adding, renaming or removing a public name;
``tests/test_docs.py`` fails while the committed pages differ from what this writes. Each object
is documented once, on the page of the package that defines it (``hybrax.core`` for the
integrators that ``hybrax`` re-exports, the errors that ``hybrax.errors`` re-exports, ...); the
other packages that export it link there.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import types
from pathlib import Path

#: Package, title of its page; the page is ``api/<last part>.md``.
PACKAGES = {
    "hybrax": "Top level",
    "hybrax.core": "Contract, integrators, rollout",
    "hybrax.errors": "Errors",
    "hybrax.grids": "Grids",
    "hybrax.fluids": "Fluids",
    "hybrax.climate": "Climate",
    "hybrax.md": "Molecular dynamics",
    "hybrax.nn": "Neural networks",
    "hybrax.hybrid": "Hybrid models and training",
    "hybrax.parallel": "Parallel",
    "hybrax.io": "Input and output",
    "hybrax.experiments": "Experiments (workflows)",
    "hybrax.experiments.lorenz96": "Workflow lorenz96",
    "hybrax.experiments.lorenz96_closure": "Workflow lorenz96-closure",
    "hybrax.experiments.kolmogorov_correction": "Workflow kolmogorov-correction",
    "hybrax.experiments.fv_learned_interpolation": "Workflow fv-learned-interpolation",
    "hybrax.experiments.lj_neural_potential": "Workflow lj-neural-potential",
    "hybrax.experiments.qg_parameterization": "Workflow qg-parameterization",
}
API = Path(__file__).parent / "api"


def page(package: str) -> str:
    """The file name of ``package``'s reference page."""
    return f"{package.rsplit('.', 1)[-1]}.md"


def home(package: str, name: str) -> str:
    """The package whose page documents ``package.name``: the one that defines the object."""
    obj = getattr(importlib.import_module(package), name)
    module = getattr(obj, "__module__", None) if inspect.isclass(obj) or callable(obj) else None
    if module is None or not module.startswith("hybrax"):
        return package  # constants and aliases: documented where they are exported
    owners = [p for p in PACKAGES if p != "hybrax" and (module == p or module.startswith(p + "."))]
    return max(owners, key=len) if owners else package


def public_names(package: str) -> list[str]:
    """``package.__all__`` without the subpackages (they have pages of their own)."""
    module = importlib.import_module(package)
    return [n for n in module.__all__ if not isinstance(getattr(module, n), types.ModuleType)]


def _kind(package: str, name: str) -> int:
    obj = getattr(importlib.import_module(package), name)
    if inspect.isclass(obj):
        return 1 if issubclass(obj, BaseException) else 0
    return 2 if callable(obj) else 3


def render(package: str) -> str:
    """The Markdown of ``package``'s reference page."""
    names = public_names(package)
    own = sorted(
        (n for n in names if home(package, n) == package),
        key=lambda n: (_kind(package, n), n.lower()),
    )
    elsewhere = sorted((n for n in names if home(package, n) != package), key=str.lower)
    lines = [
        f"# `{package}`: {PACKAGES[package].lower() if package != 'hybrax' else 'top level'}",
        "",
        "<!-- written by docs/generate_api.py from __all__; do not edit by hand -->",
        "",
        f"::: {package}",
        "    options:",
        "      members: false",
        "      show_root_heading: false",
        "      show_root_toc_entry: false",
        "",
    ]
    if package == "hybrax":
        subpackages = [p for p in PACKAGES if p != "hybrax"]
        lines += ["Subpackages: " + ", ".join(f"[`{p}`]({page(p)})" for p in subpackages) + ".", ""]
    if elsewhere:
        lines += ["## Also exported here", ""]
        lines += [f"- `{package}.{n}`: see [`{home(package, n)}.{n}`][]" for n in elsewhere]
        lines.append("")
    for name in own:
        lines += [f"::: {package}.{name}", ""]
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    API.mkdir(exist_ok=True)
    for package in PACKAGES:
        (API / page(package)).write_text(render(package))
    return 0


if __name__ == "__main__":
    sys.exit(main())
