"""OPA policies through Conftest on the plan JSON, when the org policy names a Rego directory.

Conftest is not installable from PyPI, npm or Debian here; the JSON parser is tested on output
in Conftest's documented `--output json` format (tests/fixtures/scanners/conftest.json) and the
live path is untested on this machine. Conftest never fetches policies unless told to
(`conftest pull`), so `conftest test` with a local `--policy` directory is offline.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from schemas.errors import ToolError
from schemas.validation import Severity
from tools.process import run_process
from tools.scan import CheckFailure, ScanReport


def _rule_id(namespace: str, kind: str, metadata: Mapping[str, Any]) -> str:
    details = metadata.get("details") if isinstance(metadata.get("details"), dict) else {}
    explicit = metadata.get("id") or metadata.get("rule_id") or (details or {}).get("id")
    return str(explicit) if explicit else f"{namespace}.{kind}"


def parse_conftest_json(
    text: str, *, deny_severity: Severity = Severity.HIGH, duration_s: float = 0.0
) -> ScanReport:
    """`conftest test --output json`: per file and namespace, failures and warnings.

    A `deny`/`violation` failure gets `deny_severity` (the org policy's choice); a `warn` is
    LOW. A rule may name itself and its resource in its result's metadata (`id`, `resource`).
    """
    try:
        doc: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ToolError(f"conftest printed output that is not JSON: {text[:200]!r}") from exc
    if not isinstance(doc, list):
        raise ToolError("conftest JSON output has an unexpected shape (expected a list)")
    failures: list[CheckFailure] = []
    passed = 0
    for entry in doc:
        namespace = str(entry.get("namespace") or "main")
        passed += int(entry.get("successes") or 0)
        for kind, severity in (("deny", deny_severity), ("warn", Severity.LOW)):
            key = "failures" if kind == "deny" else "warnings"
            for result in entry.get(key) or []:
                metadata = result.get("metadata") or {}
                failures.append(
                    CheckFailure(
                        tool="conftest",
                        rule_id=_rule_id(namespace, kind, metadata),
                        resource=metadata.get("resource") or None,
                        message=str(result.get("msg") or ""),
                        source="plan",
                        severity=severity,
                        file=entry.get("filename"),
                    )
                )
    return ScanReport(tool="conftest", failures=failures, passed=passed, duration_s=duration_s)


class ConftestRunner:
    """`conftest test` of one plan JSON against a directory of Rego policies."""

    def __init__(self, binary: Path, *, env: Mapping[str, str], timeout_s: float = 120) -> None:
        self.binary, self.env, self.timeout_s = binary, env, timeout_s

    async def test(
        self, plan_json: Path, policy_dir: Path, deny_severity: Severity = Severity.HIGH
    ) -> ScanReport:
        argv = [str(self.binary), "test", "--output", "json", "--no-color", "--all-namespaces"]
        argv += ["--policy", str(policy_dir), str(plan_json)]
        result = await run_process(argv, cwd=None, env=self.env, timeout_s=self.timeout_s)
        # conftest exits 1 when a policy failed; 2+ (or nothing on stdout) is an error
        if result.returncode not in (0, 1) or not result.stdout.strip():
            raise ToolError(
                f"conftest exited {result.returncode}: {(result.stderr or result.stdout)[-500:]}"
            )
        return parse_conftest_json(
            result.stdout, deny_severity=deny_severity, duration_s=result.duration_s
        )
