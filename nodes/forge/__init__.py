"""Forge, the builder: PlanSpec -> Terraform workspace -> plan; apply; rollback.

`build` renders the vetted templates, guards the workspace and plans (`build.py`); `apply`
runs exactly the validated plan file once (`apply.py`); `rollback` brings the stack back to
its state before the apply, within the SLA (`rollback.py`). Layout, locks and the SLA budget
are in `common.py`.
"""

from __future__ import annotations

from nodes.forge.apply import apply
from nodes.forge.build import build, build_workspace, summarize_plan
from nodes.forge.common import ACTOR, ROLLBACK_BEGIN_SLA_S, ROLLBACK_FINISH_SLA_S
from nodes.forge.rollback import restore_previous_state, rollback

__all__ = [
    "ACTOR",
    "ROLLBACK_BEGIN_SLA_S",
    "ROLLBACK_FINISH_SLA_S",
    "apply",
    "build",
    "build_workspace",
    "restore_previous_state",
    "rollback",
    "summarize_plan",
]
