"""Sentinel figures: checkov in-process vs CLI, total Sentinel time, price table coverage.

`.venv/bin/python -m bench.sentinel` prints a table. Workspaces are generated: N resources
(buckets with their configuration, queues, log groups, alarms) in .tf files, and a plan JSON
of the same resources in `terraform show -json` shape, so no cloud or terraform is needed.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from catalog.prices import load_prices
from crew.container import build_sentinel
from crew.settings import Settings
from sentinel.engine import Subject
from sentinel.pricing import FREE, PRICED_TYPES
from tools.checkov import CheckovScanner, scan_in_process
from tools.render.allowlist import RESOURCE_TYPES

KINDS = (
    ("aws_s3_bucket", 'bucket_prefix = "b-"'),
    ("aws_sqs_queue", "sqs_managed_sse_enabled = true"),
    ("aws_cloudwatch_log_group", "retention_in_days = 30"),
    (
        "aws_cloudwatch_metric_alarm",
        'alarm_name = "a"\n  comparison_operator = "GreaterThanThreshold"'
        '\n  evaluation_periods = 1\n  metric_name = "CPUUtilization"\n  namespace = "AWS/EC2"'
        '\n  period = 60\n  statistic = "Average"\n  threshold = 80',
    ),
    ("aws_kms_key", "enable_key_rotation = true"),
)


def workspace(n: int, root: Path) -> tuple[Path, Path]:
    root.mkdir(parents=True, exist_ok=True)
    blocks, changes = [], []
    for i in range(n):
        rtype, body = KINDS[i % len(KINDS)]
        blocks.append(f'resource "{rtype}" "r{i}" {{\n  {body}\n}}\n')
        values: dict[str, Any] = {}
        for line in body.splitlines():
            k, _, v = line.strip().partition(" = ")
            values[k] = json.loads(v) if v[:1] in '"0123456789tf' else v
        changes.append(
            {
                "address": f"{rtype}.r{i}",
                "mode": "managed",
                "type": rtype,
                "name": f"r{i}",
                "change": {"actions": ["create"], "before": None, "after": values},
            }
        )
    (root / "main.tf").write_text(
        'provider "aws" {\n  region = "eu-west-1"\n}\n\n' + "\n".join(blocks)
    )
    resources = [
        {
            "address": c["address"],
            "mode": "managed",
            "type": c["type"],
            "name": c["name"],
            "provider_name": "registry.terraform.io/hashicorp/aws",
            "schema_version": 0,
            "values": c["change"]["after"],
        }
        for c in changes
    ]
    plan = {
        "format_version": "1.2",
        "terraform_version": "1.11.4",
        "planned_values": {"root_module": {"resources": resources}},
        "resource_changes": changes,
        "configuration": {
            "provider_config": {
                "aws": {"name": "aws", "expressions": {"region": {"constant_value": "eu-west-1"}}}
            },
            "root_module": {"resources": []},
        },
    }
    path = root / "plan.json"
    path.write_text(json.dumps(plan))
    return root, path


def timed(fn: Any, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def main() -> None:
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        hcl, plan = workspace(10, Path(tmp) / "w10")
        scan_in_process(hcl, plan)
        rows.append(
            (
                "checkov import + first in-process scan (10 resources)",
                f"{time.perf_counter() - started:.2f} s",
            )
        )
        inproc = timed(lambda: scan_in_process(hcl, plan), 5)
        cli = CheckovScanner(
            mode="cli",
            cli=[str(Path(sys.executable).parent / "checkov")],
            env={"PATH": "/usr/bin:/bin", "HOME": tmp},
        )
        cli_s = timed(lambda: asyncio.run(cli.scan(hcl_dir=hcl, plan_json=plan)), 2)
        rows.append(
            ("checkov in-process, HCL + plan (10 resources, median of 5)", f"{inproc:.3f} s")
        )
        rows.append(("checkov CLI, same inputs (median of 2)", f"{cli_s:.2f} s"))
        rows.append(("CLI / in-process", f"{cli_s / inproc:.0f}x"))
        sentinel = build_sentinel(Settings(extra_scanners=False, data_dir=Path(tmp) / "d"), {})
        for n in (10, 30):
            hcl, plan = workspace(n, Path(tmp) / f"s{n}")
            subject = Subject(
                plan_id=f"bench-{n}",
                plan_json=json.loads(plan.read_text()),
                plan_json_path=plan,
                hcl_dir=hcl,
                budget_monthly_usd=1000,
            )
            took = timed(lambda s=subject: asyncio.run(sentinel.validate(s, datetime.now(UTC))), 5)
            rows.append(
                (
                    f"Sentinel total, {n}-resource plan (in-process, median of 5)",
                    f"{took:.3f} s (target < 2 s)",
                )
            )
    table = load_prices()
    rows.append(("price table", f"{len(table.skus)} SKUs x {len(table.regions)} regions"))
    rows.append(
        (
            "resource types priced / free (no charge of their own)",
            f"{len(PRICED_TYPES)} / {len(FREE)}",
        )
    )
    covered = RESOURCE_TYPES & (PRICED_TYPES | set(FREE))
    rows.append(
        (
            "types Forge renders with a price or known free",
            f"{len(covered)} of {len(RESOURCE_TYPES)}",
        )
    )
    width = max(len(k) for k, _ in rows)
    print(f"{'measure':<{width}}  value")
    for k, v in rows:
        print(f"{k:<{width}}  {v}")


if __name__ == "__main__":
    main()
