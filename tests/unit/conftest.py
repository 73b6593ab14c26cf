"""Fixtures for the fast unit suite: example goals, the example PlanSpec, recorded terraform
output. Nothing here starts a server or needs a binary besides /bin/sh and python."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest

from schemas.goal import GoalStatement
from schemas.inputs import load_goal
from schemas.plan import PlanSpec
from tests.unit.support import ARTIFACT_EXAMPLES, EXAMPLES, tf_fixture


@pytest.fixture
def object_storage_goal() -> GoalStatement:
    return load_goal(EXAMPLES / "goal-object-storage.json")


@pytest.fixture
def web_api_goal() -> GoalStatement:
    return load_goal(EXAMPLES / "goal-web-api.json")


@pytest.fixture
def example_plan() -> PlanSpec:
    """The PlanSpec Atlas makes for examples/goal-object-storage.json (committed example)."""
    return PlanSpec.model_validate_json(
        (ARTIFACT_EXAMPLES / "PlanSpec.json").read_text(encoding="utf-8")
    )


@pytest.fixture
def show_plan_json() -> dict[str, Any]:
    """`terraform show -json crew.tfplan` recorded for the example PlanSpec."""
    doc: dict[str, Any] = json.loads(tf_fixture("show-plan.json"))
    return doc


@pytest.fixture
async def reaper() -> AsyncIterator[list[int]]:
    """Pids a test started (or orphaned); whatever is still running afterwards is killed."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, 9)
