"""PlanSpec-to-code on the goal corpus with the real terraform: a small sample of corpus goals
whose designs together use every catalog type the corpus's designs use, plus designs with
counted instances ("a billing queue and a shipping queue"), rendered by Forge and checked by
`terraform validate` (one `init` shared by all through the provider links, two validations at
a time). tests/unit/test_corpus_renders.py renders every design without terraform."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from crew.container import build_terraform_runner
from crew.settings import Settings
from schemas.plan import PlanSpec
from tests.unit.test_corpus_renders import designs
from tools.terraform import TerraformRunner
from tools.workspace import write_workspace

pytestmark = pytest.mark.integration

PARALLEL = 2


def sample() -> dict[str, PlanSpec]:
    """Greedy cover: the fewest designs that use every component type seen in the corpus,
    then the design with the most counted instances (components numbered or named by the
    goal), in corpus order so the sample is stable."""
    planned = {gid: d for gid, d in designs().items() if isinstance(d, PlanSpec)}
    wanted = {c.type for d in planned.values() for c in d.components}
    chosen: dict[str, PlanSpec] = {}
    while wanted:
        gid = max(planned, key=lambda g: len(wanted & {c.type for c in planned[g].components}))
        chosen[gid] = planned[gid]
        wanted -= {c.type for c in planned[gid].components}

    def counted(plan: PlanSpec) -> int:
        return sum(1 for c in plan.components if c.name.endswith(("_2", "_queue", "_bucket",
                                                                  "_worker", "_db")))  # fmt: skip

    most = max(planned, key=lambda g: counted(planned[g]))
    if counted(planned[most]):
        chosen.setdefault(most, planned[most])
    return chosen


@pytest.fixture
def runner(
    make_settings: Callable[..., Settings], terraform_bin: Path, aws_env: dict[str, str]
) -> TerraformRunner:
    return build_terraform_runner(make_settings(), dict(os.environ))


async def test_a_covering_sample_of_corpus_designs_validates(
    runner: TerraformRunner, tmp_path: Path
) -> None:
    chosen = sample()
    assert 2 <= len(chosen) <= 10, sorted(chosen)
    for gid, plan in chosen.items():
        write_workspace(plan, tmp_path / gid)
    first = tmp_path / next(iter(chosen))
    init = await runner.init(first)
    assert init.ok, init.diagnostics
    for gid in list(chosen)[1:]:
        shutil.copytree(first / ".terraform", tmp_path / gid / ".terraform", symlinks=True)
        shutil.copy(first / ".terraform.lock.hcl", tmp_path / gid / ".terraform.lock.hcl")

    failures: dict[str, object] = {}
    semaphore = asyncio.Semaphore(PARALLEL)

    async def validate(gid: str) -> None:
        async with semaphore:
            checked = await runner.validate(tmp_path / gid)
        if not checked.ok or checked.warnings:
            failures[gid] = checked.diagnostics

    await asyncio.gather(*(validate(gid) for gid in chosen))
    assert failures == {}
