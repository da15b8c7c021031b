"""Run the notebooks at their quick size and store the outputs, for the documentation site.

The docs build never runs code (``mkdocs-jupyter`` with ``execute: false``): it shows each
notebook as stored. This script stores the outputs: it executes each notebook in a fresh kernel
from the ``notebooks/`` folder, at the quick size (``HYBRAX_QUICK=1``; not the test suite's
smoke size), and writes the executed notebook back in place::

    python docs/execute_notebooks.py                        # every notebook (~30 min on 2 cores)
    python docs/execute_notebooks.py kolmogorov_flow basics  # some of them

A notebook that fails is left as it was and the script exits with status 1 after the others.
Run it after changing a notebook, and commit the outputs with the change; the test suite runs
every notebook again (at smoke size, outputs discarded) so a stale output cannot hide a broken
notebook.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def execute(path: Path, timeout: int = 3600) -> float:
    """Execute ``path`` in place; return the wall time in seconds."""
    notebook = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": path.parent}},
    ).execute()
    nbformat.write(notebook, path)
    return time.perf_counter() - start


def main(names: list[str]) -> int:
    os.environ["HYBRAX_QUICK"] = "1"
    os.environ.pop("HYBRAX_SMOKE", None)
    os.environ.setdefault("TQDM_DISABLE", "1")
    paths = [NOTEBOOKS / f"{n.removesuffix('.ipynb')}.ipynb" for n in names] or sorted(
        NOTEBOOKS.glob("*.ipynb")
    )
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        print(f"no such notebook: {', '.join(missing)}", file=sys.stderr)
        return 2
    failed = []
    for path in paths:
        try:
            print(f"{path.name}: {execute(path):.0f} s", flush=True)
        except Exception as error:  # report and go on with the others
            print(f"{path.name}: FAILED ({type(error).__name__}: {error})", file=sys.stderr)
            failed.append(path.name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
