"""The documentation site: the API reference covers every public name, and
``mkdocs build --strict`` passes (a broken cross-reference, a docstring griffe cannot parse or
a missing benchmark table fails it).

The build needs the ``docs`` extra (``pip install -e ".[docs]"``); without it that test is
skipped. The code blocks of the guide pages run only with ``--runslow``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _generator():
    spec = importlib.util.spec_from_file_location("generate_api", DOCS / "generate_api.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _documented() -> set[str]:
    """Every ``::: path`` and every ``[`path`][]`` link in the reference pages."""
    text = "\n".join(p.read_text() for p in sorted((DOCS / "api").glob("*.md")))
    return set(re.findall(r"^::: (\S+)", text, re.M)) | set(re.findall(r"`(\S+)`\]\[\]", text))


@pytest.mark.parametrize("package", list(_generator().PACKAGES))
def test_every_public_name_is_in_the_api_reference(package):
    generator = _generator()
    module = importlib.import_module(package)
    documented = _documented()
    missing = []
    for name in module.__all__:
        if isinstance(getattr(module, name), types.ModuleType):
            continue
        home = generator.home(package, name)
        if f"{home}.{name}" not in documented:
            missing.append(f"{package}.{name}")
    assert not missing, f"not in docs/api: {missing}; run `python docs/generate_api.py`"
    page = DOCS / "api" / generator.page(package)
    assert page.read_text() == generator.render(package), (
        f"{page.relative_to(ROOT)} is out of date; run `python docs/generate_api.py`"
    )


def test_mkdocs_build_strict(tmp_path):
    for plugin in ("mkdocs", "material", "mkdocstrings_handlers.python", "mkdocs_jupyter"):
        if importlib.util.find_spec(plugin) is None:
            pytest.skip(f'{plugin} is not installed (pip install -e ".[docs]")')
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    log = result.stdout + result.stderr
    problems = [line for line in log.splitlines() if line.startswith(("WARNING", "ERROR"))]
    assert result.returncode == 0, "\n".join(problems) or log[-3000:]
    assert "rollout" in (site / "api" / "core" / "index.html").read_text()
    assert (site / "notebooks" / "basics" / "index.html").exists()


def test_guide_examples_run(full_size, tmp_path, monkeypatch):
    """Every ``python`` block of docs/guide runs (minutes on a 2-core CPU: --runslow only),
    in a temporary folder (examples that write files write there)."""
    if not full_size:
        pytest.skip("the guide's examples take minutes; run with --runslow")
    monkeypatch.chdir(tmp_path)
    ran = 0
    for page in sorted((DOCS / "guide").glob("*.md")):
        for index, block in enumerate(re.findall(r"```python\n(.*?)```", page.read_text(), re.S)):
            exec(compile(block, f"{page.name}, block {index}", "exec"), {})
            ran += 1
    assert ran >= 5, f"only {ran} guide examples found"


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.stem)
def test_notebooks_are_stored_executed(path):
    """The docs site shows the notebooks as stored (mkdocs-jupyter never runs them): each one
    is stored executed top to bottom, in order, without an error (``docs/execute_notebooks.py``
    writes them; the suite runs every notebook again, so a stale output cannot hide a break)."""
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code" and cell.source.strip()]
    counts = [cell.execution_count for cell in code]
    assert None not in counts, f"{path.name}: run python docs/execute_notebooks.py {path.stem}"
    assert counts == sorted(counts), f"{path.name}: cells were run out of order: {counts}"
    errors = [o for cell in code for o in cell.outputs if o.output_type == "error"]
    assert not errors, f"{path.name}: stored with an error: {errors[0].ename}"
    assert any(o.output_type == "display_data" for cell in code for o in cell.outputs), path.name
