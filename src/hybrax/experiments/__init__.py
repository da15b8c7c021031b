"""Ready end-to-end workflows, run by ``hybrax run NAME`` and shown in the notebooks.

Each workflow is a small package ``hybrax.experiments.<name>`` (settings, data, model,
train, evaluate, report, workflow) on one scaffold (``_workflow.py``: settings base class,
run folders it owns, timed phases, metrics and run info). Its public surface is its
``__all__``: the settings class and its ``FULL`` / ``QUICK`` presets, ``run(settings, out)``
(and ``load_run(out)`` where a run leaves a model behind), plus the experiment's own
building blocks. Reusable science lives in the library (`hybrax.grids.coarse_grain`,
`hybrax.fluids.decorrelation_time`, `hybrax.hybrid.Curriculum`, ...).
"""

from ._kolmogorov import KolmogorovSettings, decorrelation_times
from ._registry import Workflow, get_workflow, list_workflows, register_workflow
from ._settings import WorkflowSettings

__all__ = [
    "KolmogorovSettings",
    "Workflow",
    "WorkflowSettings",
    "decorrelation_times",
    "get_workflow",
    "list_workflows",
    "register_workflow",
]
