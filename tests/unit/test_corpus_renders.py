"""PlanSpec-to-code over the whole goal corpus (bench/corpus/goals.jsonl), without terraform:
every goal Atlas designs (unsupported asks as warnings, so that every design it *can* make is
made) renders through Forge's renderer without error, every resource it names is on the
allow-list, and the workspace passes the pre-plan guard (python-hcl2 parse + allow-list) once
per distinct shape of design. tests/integration/test_corpus_to_code.py runs terraform
validate on a sample of them."""

from __future__ import annotations

from collections import Counter
from functools import lru_cache
from pathlib import Path

from fixtures.corpus import load_corpus
from nodes.atlas import plan_goal
from schemas.plan import DesignBlocked, PlanSpec
from tools.guard import check_workspace
from tools.render import RESOURCE_TYPES, render_workspace_files
from tools.workspace import write_workspace

CASES = load_corpus()


@lru_cache(maxsize=1)
def designs() -> dict[str, PlanSpec | DesignBlocked]:
    return {
        case.id: plan_goal(
            case.goal, goal_id=case.id, plan_id=f"{case.id}-r1", unsupported_asks="warn"
        )
        for case in CASES
    }


def shape(plan: PlanSpec) -> tuple[object, ...]:
    """What changes the rendered HCL's structure: component types, which optional
    parameters are set, and the environment (prod turns protections on)."""
    return (
        plan.environment.value,
        tuple(
            sorted(
                (c.type, tuple(sorted(k for k, v in c.params.items() if v not in (None, False))))
                for c in plan.components
            )
        ),
    )


def test_most_corpus_goals_give_a_design() -> None:
    found = designs()
    planned = [gid for gid, d in found.items() if isinstance(d, PlanSpec)]
    blocked = {
        gid: [r.constraint for r in d.reasons]
        for gid, d in found.items()
        if isinstance(d, DesignBlocked)
    }
    # Blocked with unsupported asks as warnings: nothing buildable was asked for, the goal
    # names nothing, or the budget is below what the goal needs.
    for gid, constraints in blocked.items():
        assert set(constraints) <= {"description", "title", "design", "budget.monthly_usd",
                                    "workload"}, (gid, constraints)  # fmt: skip
    assert len(planned) >= 0.85 * len(found), blocked


def test_every_design_renders() -> None:
    failures: dict[str, str] = {}
    rendered = 0
    for gid, design in designs().items():
        if isinstance(design, DesignBlocked):
            continue
        try:
            files = render_workspace_files(design)
        except ValueError as exc:  # RenderError, or a parameter the catalog refuses
            failures[gid] = str(exc)
            continue
        types = {line.split('"')[1] for line in files["main.tf"].splitlines()
                 if line.startswith('resource "')}  # fmt: skip
        if not types <= RESOURCE_TYPES:
            failures[gid] = f"outside the allow-list: {sorted(types - RESOURCE_TYPES)}"
        rendered += 1
    assert failures == {}
    assert rendered >= 0.85 * len(CASES)


def test_each_shape_of_design_passes_the_guard(tmp_path: Path) -> None:
    shapes: dict[tuple[object, ...], str] = {}
    for gid, design in designs().items():
        if isinstance(design, PlanSpec):
            shapes.setdefault(shape(design), gid)
    checked = Counter[str]()
    for gid in shapes.values():
        design = designs()[gid]
        assert isinstance(design, PlanSpec)
        workspace = tmp_path / gid
        write_workspace(design, workspace)
        result = check_workspace(workspace)
        checked.update(result.files)
    assert checked["main.tf"] == len(shapes)
