"""A gate decision made in a terminal shows in the server's metrics.

`crew approve` drives the run in its own process, which nobody scrapes; the server (API only
here, so it cannot have driven the run itself) counts decisions from the audit log that
process wrote. Before, `crew_approval_decisions_total` was counted by the driving process
alone and stayed at 0 on the server."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from crew.settings import Settings
from tests.conftest import example_goal
from tests.integration._fleet import CREW, crew_env, metric, scrape, serve_in_process

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def crew(env: dict[str, str], cwd: Path, *args: str) -> dict[str, Any]:
    result = subprocess.run(
        [str(CREW), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, f"crew {args}: exit {result.returncode}\n{result.stderr}"
    detail: dict[str, Any] = json.loads(result.stdout)
    return detail


async def test_a_cli_approval_counts_in_the_servers_metrics(
    database_url: str,
    make_settings: Callable[..., Settings],
    aws_env: dict[str, str],
    terraform_bin: Path,
    tmp_path: Path,
) -> None:
    settings = make_settings(database_url=database_url)
    env = crew_env(aws_env, database_url=database_url, data_dir=str(settings.data_dir))
    goal = tmp_path / "goal.json"
    goal.write_text(json.dumps(example_goal(goal_id=f"cli-metrics-{tmp_path.name[-8:]}")))

    async with serve_in_process(settings, run_worker=False) as api:
        before = scrape((await api.get("/metrics")).text)
        assert metric(before, "crew_approval_decisions_total") == 0
        # zero-valued series exist before the first decision, so increase() sees it
        assert ({"decision": "approve", "channel": "cli"}, 0.0) in before[
            "crew_approval_decisions_total"
        ]

        waiting = await asyncio.to_thread(crew, env, tmp_path, "run", str(goal), "--json")
        assert waiting["state"] == "WAIT_FOR_APPROVE"
        done = await asyncio.to_thread(
            crew, env, tmp_path, "approve", waiting["run_id"], "--actor", "bob", "--json"
        )
        assert done["state"] == "DONE", done.get("error")

        after = scrape((await api.get("/metrics")).text)
    assert metric(after, "crew_approval_decisions_total", decision="approve", channel="cli") == 1
    assert metric(after, "crew_approval_decisions_total") == 1
    # the server drove nothing: it saw no terraform and no step of its own
    assert metric(after, "crew_terraform_duration_seconds_count") == 0
    assert metric(after, "crew_runs", state="DONE") == 1
