"""The failure alerts of deploy/grafana fire when they should, checked with `promtool test rules`
on synthetic series: each Grafana rule's PromQL (query A) and threshold (C) become one
Prometheus alerting rule with the same meaning."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.unit.support import venv_tool

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy/grafana/provisioning/alerting/infra-crew-alerts.yaml"
_OPS = {"gt": ">", "lt": "<"}


def _as_prometheus_rules() -> dict[str, Any]:
    rules = []
    for group in yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"]:
        for rule in group["rules"]:
            query = next(q for q in rule["data"] if q["refId"] == "A")["model"]["expr"]
            threshold = next(q for q in rule["data"] if q["refId"] == "C")["model"]
            evaluator = threshold["conditions"][0]["evaluator"]
            op, value = _OPS[evaluator["type"]], evaluator["params"][0]
            rules.append({"alert": rule["uid"], "expr": f"({query}) {op} {value}"})
    return {"groups": [{"name": "infra-crew", "rules": rules}]}


def _firing(rule: str, at: str, *labels: dict[str, str]) -> dict[str, Any]:
    return {
        "eval_time": at,
        "alertname": rule,
        "exp_alerts": [{"exp_labels": each} for each in labels],
    }


def test_a_run_ending_failed_and_a_failed_rollback_page(tmp_path: Path) -> None:
    promtool = venv_tool("promtool", "run scripts/ensure-promtool: Debian package prometheus")
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(_as_prometheus_rules()))
    series = [
        # two replicas report the cluster's FAILED count; a run fails at minute 30
        {"series": 'crew_runs{state="FAILED",instance="api"}', "values": "0x29 1x120"},
        {"series": 'crew_runs{state="FAILED",instance="worker"}', "values": "0x30 1x120"},
        {"series": 'crew_runs{state="DONE",instance="api"}', "values": "0+1x150"},
        # one worker's rollback fails at minute 30
        {
            "series": 'crew_rollbacks_total{trigger="apply_failure",outcome="failed",'
            'instance="worker"}',
            "values": "0x29 1x120",
        },
        {
            "series": 'crew_rollbacks_total{trigger="requested",outcome="ok",instance="worker"}',
            "values": "0+1x150",
        },
    ]
    tests = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    # quiet before; firing after; quiet again an hour later (not forever)
                    _firing("infra-crew-run-failed", "20m"),
                    _firing("infra-crew-run-failed", "35m", {}),
                    _firing("infra-crew-run-failed", "140m"),
                    _firing("infra-crew-rollback-failed", "20m"),
                    _firing("infra-crew-rollback-failed", "35m", {"trigger": "apply_failure"}),
                    _firing("infra-crew-rollback-failed", "140m"),
                ],
            }
        ],
    }
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests))
    result = subprocess.run(
        [promtool, "test", "rules", "tests.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
