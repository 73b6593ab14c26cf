"""trivy (`trivy config`) and tfsec, when installed: a second opinion merged into Sentinel's.

Both are optional. trivy is the successor of tfsec and ships its checks inside the binary, so
it runs offline with `--skip-check-update` (no check bundle download), `--skip-version-check`
and `--disable-telemetry`. tfsec is deprecated upstream and not installable from PyPI, npm or
Debian; its JSON parser is tested on output in tfsec's documented format
(tests/fixtures/scanners/tfsec.json), and the live path is untested on this machine.
Results are written to a file, not stdout, because `run_process` truncates stdout for display.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from schemas.errors import ToolError
from tools.process import run_process
from tools.scan import CheckFailure, ScanReport, severity_from_text


def _load(text: str, tool: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ToolError(f"{tool} printed output that is not JSON: {text[:200]!r}") from exc


def aqua_check_id(raw: object) -> str:
    """One id per Aqua check whichever tool or version reports it: trivy prints `AWS-0011`
    (older releases `AVD-AWS-0011`), tfsec `AVD-AWS-0011`. Both read as `AWS-0011`, the id
    of the check's page (avd.aquasec.com/misconfig/aws-0011) and of tools/render/waivers.py."""
    text = str(raw)
    return text.removeprefix("AVD-")


def parse_trivy_json(text: str, duration_s: float = 0.0) -> ScanReport:
    """`trivy config --format json`: Results[].Misconfigurations[] with Status FAIL."""
    doc = _load(text, "trivy")
    if not isinstance(doc, dict):
        raise ToolError("trivy JSON output has an unexpected shape")
    failures: list[CheckFailure] = []
    passed = 0
    for result in doc.get("Results") or []:
        summary = result.get("MisconfSummary") or {}
        passed += int(summary.get("Successes") or 0)
        for m in result.get("Misconfigurations") or []:
            if m.get("Status", "FAIL") != "FAIL":
                continue
            cause = m.get("CauseMetadata") or {}
            failures.append(
                CheckFailure(
                    tool="trivy",
                    rule_id=aqua_check_id(m.get("ID") or m.get("AVDID")),
                    resource=cause.get("Resource") or None,
                    message=f"{m.get('Title', '')}: {m.get('Message', '')}".strip(": "),
                    source="hcl",
                    severity=severity_from_text(m.get("Severity")),
                    guideline=m.get("Resolution") or m.get("PrimaryURL") or None,
                    file=result.get("Target"),
                )
            )
    return ScanReport(tool="trivy", failures=failures, passed=passed, duration_s=duration_s)


def parse_tfsec_json(text: str, duration_s: float = 0.0) -> ScanReport:
    """`tfsec --format json`: results[] (null when clean), each a failed check."""
    doc = _load(text, "tfsec")
    if not isinstance(doc, dict):
        raise ToolError("tfsec JSON output has an unexpected shape")
    failures = [
        CheckFailure(
            tool="tfsec",
            rule_id=aqua_check_id(r.get("rule_id") or r.get("long_id")),
            resource=r.get("resource") or None,
            message=str(r.get("description") or r.get("rule_description") or ""),
            source="hcl",
            severity=severity_from_text(r.get("severity")),
            guideline=r.get("resolution") or next(iter(r.get("links") or []), None),
            file=(r.get("location") or {}).get("filename"),
        )
        for r in doc.get("results") or []
        if not r.get("status")  # tfsec: 0 = failed, 1 = passed (with --include-passed)
    ]
    return ScanReport(tool="tfsec", failures=failures, duration_s=duration_s)


async def _run_to_file(
    argv: list[str], out: Path, tool: str, env: Mapping[str, str], timeout_s: float, ok: set[int]
) -> tuple[str, float]:
    result = await run_process(argv, cwd=None, env=env, timeout_s=timeout_s)
    text = read_output(out)
    if result.returncode not in ok or text is None:
        raise ToolError(
            f"{tool} exited {result.returncode}: {(result.stderr or result.stdout)[-500:]}"
        )
    return text, result.duration_s


def read_output(path: Path) -> str | None:
    """A result file a tool wrote, or None when it wrote none."""
    return path.read_text(encoding="utf-8") if path.is_file() else None


class TrivyScanner:
    """`trivy config` on a Terraform directory, offline."""

    tool = "trivy"

    def __init__(
        self, binary: Path, *, cache_dir: Path, env: Mapping[str, str], timeout_s: float = 300
    ) -> None:
        self.binary, self.cache_dir, self.env, self.timeout_s = binary, cache_dir, env, timeout_s

    async def scan(self, hcl_dir: Path) -> ScanReport:
        tmp = Path(tempfile.mkdtemp(prefix="crew-trivy-"))
        try:
            out = tmp / "trivy.json"
            argv = [str(self.binary), "config", "--format", "json", "--output", str(out)]
            argv += ["--quiet", "--skip-check-update", "--skip-version-check"]
            argv += ["--disable-telemetry", "--cache-dir", str(self.cache_dir), str(hcl_dir)]
            text, took = await _run_to_file(argv, out, "trivy", self.env, self.timeout_s, {0})
            return parse_trivy_json(text, took)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


class TfsecScanner:
    """`tfsec` on a Terraform directory (exit 1 means findings, not an error)."""

    tool = "tfsec"

    def __init__(self, binary: Path, *, env: Mapping[str, str], timeout_s: float = 300) -> None:
        self.binary, self.env, self.timeout_s = binary, env, timeout_s

    async def scan(self, hcl_dir: Path) -> ScanReport:
        tmp = Path(tempfile.mkdtemp(prefix="crew-tfsec-"))
        try:
            out = tmp / "tfsec.json"
            argv = [str(self.binary), str(hcl_dir), "--format", "json", "--out", str(out)]
            argv += ["--no-color", "--no-module-downloads", "--soft-fail"]
            text, took = await _run_to_file(argv, out, "tfsec", self.env, self.timeout_s, {0, 1})
            return parse_tfsec_json(text, took)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
