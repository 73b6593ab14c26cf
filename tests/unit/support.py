"""Plain helpers and constants shared by the unit tests (fixtures live in conftest.py)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from schemas.goal import GoalStatement

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
ARTIFACT_EXAMPLES = EXAMPLES / "artifacts"
FIXTURES = ROOT / "tests" / "fixtures"
TF_FIXTURES = FIXTURES / "terraform"

#: The run every example artifact and recorded terraform fixture belongs to.
EXAMPLE_RUN_ID = "20261124T182440-5f3c9a1e"
EXAMPLE_PLAN_ID = f"{EXAMPLE_RUN_ID}-r1"


def goal_dict(name: str = "goal-object-storage.json", **changes: Any) -> dict[str, Any]:
    """An example goal as a dict, with top-level fields replaced."""
    data: dict[str, Any] = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    data.update(changes)
    return data


def make_goal(name: str = "goal-object-storage.json", **changes: Any) -> GoalStatement:
    return GoalStatement.model_validate(goal_dict(name, **changes))


def tf_fixture(name: str) -> str:
    return (TF_FIXTURES / name).read_text(encoding="utf-8")


def recorded_typo_line() -> int:
    """The line of the unsupported argument the error fixtures added to the example's bucket
    (tests/record_terraform_fixtures.py puts it right after the resource's first line)."""
    lines = (FIXTURES / "golden" / "object-storage" / "main.tf").read_text().splitlines()
    return lines.index('resource "aws_s3_bucket" "objects" {') + 2


def venv_tool(name: str, install_hint: str) -> str:
    """`name` installed beside this Python (the dev extras, or `make test`'s set-up scripts,
    put it there), else on PATH; the test skips naming it and how to get it when absent."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.is_file() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed ({install_hint})")
    return found
