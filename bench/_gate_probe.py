"""One process of `bench.gate_latency`: drive goals to the gate the way `crew run` does.

Run as a script with the product tree to measure first on PYTHONPATH (the benchmark runs it
once against a baseline checkout and once against this tree), so it imports only the standard
library and product APIs that both trees have: `open_services`, `submit_goal`, `Worker`,
`run_detail`. For each goal file it submits the goal, claims the run and drives it in this
process (`crew run`'s `_drive_here`), timing every node update through the `on_event` hook
the worker offers, then prints one JSON line: the drive's marks and the run detail.

The first goal of a process pays the process's cold costs (imports done lazily, checkov's
first scan); the benchmark reports it as `cold` and the next as `warm` (a long-lived worker).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any


def _marker(marks: list[tuple[str, str, float]]) -> Any:
    """The worker's `on_event` hook: when each node's update arrived."""

    def sink(kind: str, node: str, payload: Any) -> None:
        if kind == "update" and not node.startswith("__"):
            marks.append(("update", node, time.perf_counter()))

    return sink


async def main(goal_files: list[Path]) -> None:
    from crew.container import open_services
    from crew.service import run_detail, submit_goal
    from crew.settings import Settings
    from crew.worker import Worker
    from schemas.inputs import load_goal

    settings = Settings()
    async with open_services(settings) as services:
        for goal_file in goal_files:
            goal = load_goal(goal_file)
            worker = Worker(services)
            marks: list[tuple[str, str, float]] = []
            sink = _marker(marks)
            started = time.perf_counter()
            record, _ = await submit_goal(services, goal)
            claimed = await services.runs.claim(
                record.run_id, worker.worker_id, settings.lease_ttl_s
            )
            assert claimed is not None, "a new run is claimable"
            await worker.drive_and_release(claimed, sink)
            stopped = time.perf_counter()
            detail = await run_detail(services, record.run_id, with_audit=True)
            line = {
                "goal": str(goal_file),
                "started": started,
                "stopped": stopped,
                "marks": marks,
                "detail": detail.model_dump(mode="json"),
            }
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    asyncio.run(main([Path(p) for p in sys.argv[1:]]))
