"""The README's ten-line example runs as printed."""

import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"


def test_ten_line_example_runs(capsys):
    code = re.search(r"## Ten lines\n\n```python\n(.*?)```", README.read_text(), re.S).group(1)
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)
    exponents = np.asarray(namespace["exponents"])
    assert exponents.shape == (3,) and np.all(np.diff(exponents) < 0)
    assert 1.4 < exponents[0] < 2.0  # Lorenz-96 K=40 F=8: about 1.7
    gradient = float(capsys.readouterr().out.strip().splitlines()[-1])
    assert np.isfinite(gradient) and gradient > 0  # stronger forcing, more energy


def test_ci_runs_exactly_the_readme_test_command():
    """`.ci/run` is the README's test command, character for character."""
    ci = (README.parent / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci in README.read_text()
