"""Ready end-to-end workflows, run by `hybrax run NAME` and shown in the notebooks.

Each public module here registers one or more workflows with `register_workflow`.
"""

from ._registry import Workflow, get_workflow, list_workflows, register_workflow

__all__ = ["Workflow", "get_workflow", "list_workflows", "register_workflow"]
