"""PlanSpec-to-code on the goal corpus with the real terraform: a small sample of corpus goals
whose designs together use every catalog type the corpus's designs use, and two or more of
every type a design repeats (counted instances: "a billing queue and a shipping queue",
"three services"), rendered by Forge and checked by
`terraform validate` (one `init` shared by all through the provider links, two validations at
a time). tests/unit/test_corpus_renders.py renders every design without terraform."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections import Counter
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
    """Greedy covers, in corpus order so the sample is stable: the fewest designs that have
    two or more of every type some design repeats (counted instances: queues, services with
    their load balancers, databases, ...), then whatever types those leave out."""
    planned = {gid: d for gid, d in designs().items() if isinstance(d, PlanSpec)}

    def types(gid: str, repeated: bool) -> set[str]:
        seen = Counter(c.type for c in planned[gid].components)
        return {t for t, n in seen.items() if n >= 2 or not repeated}

    chosen: dict[str, PlanSpec] = {}
    for repeated in (True, False):
        wanted = set().union(*(types(gid, repeated) for gid in planned)) - {"cloudwatch_alarms"}
        wanted -= set().union(*(types(gid, repeated) for gid in chosen))
        while wanted:
            gid = max(planned, key=lambda g: len(wanted & types(g, repeated)))
            chosen[gid] = planned[gid]
            wanted -= types(gid, repeated)
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
    assert 2 <= len(chosen) <= 14, sorted(chosen)
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
