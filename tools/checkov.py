"""checkov, strictly offline: in-process through its Python API, or as a CLI subprocess.

In-process is the default because it is much faster once checkov is imported (bench/sentinel.py
measures both: tens of milliseconds against seconds for a fresh `checkov` process). It calls
checkov's terraform and terraform-plan runners directly, so none of the platform code runs
(no Prisma Cloud / Bridgecrew login, no guideline or policy download, no version check):
tests/unit/test_checkov_offline.py proves no socket leaves the process.

Two things make the CLI the right choice anyway, and `CheckovScanner` switches by itself:
custom checks (checkov loads them into process-global registries, and a user's Python check
is code we should not load into the worker) and `mode="cli"` in settings. The CLI runs with
`--skip-download`, `BC_SKIP_MAPPING` and `CKV_SKIP_PACKAGE_UPDATE_CHECK`, and an environment
with no API key.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from schemas.errors import ToolError
from tools.process import run_process
from tools.scan import CheckFailure, ScanReport
from tools.trivy import read_output

logger = logging.getLogger(__name__)

CheckovMode = Literal["in_process", "cli"]

#: What the CLI gets besides PATH/HOME: offline, quiet, no update check.
OFFLINE_ENV = {
    "BC_SKIP_MAPPING": "TRUE",
    "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true",
    "LOG_LEVEL": "ERROR",
    "PYTHONWARNINGS": "ignore",
}
FRAMEWORK_SOURCE = {"terraform": "hcl", "terraform_plan": "plan"}

#: checkov keeps its check registries in module globals: one scan at a time per process.
_LOCK = threading.Lock()
#: One import at a time (a worker's warm-up and its first scan may ask together).
_IMPORT_LOCK = threading.Lock()
_imported = False


def _import_checkov() -> None:
    """Import checkov's runners once, undoing what its import does to the process.

    Importing checkov adds a handler to the root logger and emits deprecation warnings from
    its dependencies; neither is ours to keep. Its parallel runner forks by default, which is
    unsafe in a threaded process holding database connections, so it is switched to serial
    (one workspace is small; bench/sentinel.py shows the time).
    """
    with _IMPORT_LOCK:
        _import_checkov_once()


def _import_checkov_once() -> None:
    global _imported
    if _imported:
        return
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import checkov.terraform.plan_runner
        import checkov.terraform.runner  # noqa: F401 - imported with warnings silenced
        from checkov.common.models.enums import ParallelizationType
        from checkov.common.parallelizer.parallel_runner import parallel_runner
    parallel_runner.type = ParallelizationType.NONE
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    _imported = True


def _records(report: Any, tool_source: str) -> tuple[list[CheckFailure], int]:
    failures = [
        CheckFailure(
            tool="checkov",
            rule_id=record.check_id,
            resource=record.resource or None,
            message=record.check_name,
            source=tool_source,
            guideline=record.guideline or None,
            file=record.file_path or None,
        )
        for record in report.failed_checks
    ]
    return failures, len(report.passed_checks)


def scan_in_process(hcl_dir: Path | None, plan_json: Path | None) -> list[ScanReport]:
    """Run checkov's terraform runner on `hcl_dir` and its plan runner on `plan_json`."""
    _import_checkov()
    from checkov.runner_filter import RunnerFilter
    from checkov.terraform.plan_runner import Runner as PlanRunner
    from checkov.terraform.runner import Runner as HclRunner

    reports: list[ScanReport] = []
    with _LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if hcl_dir is not None:
            started = time.monotonic()
            result = HclRunner().run(
                root_folder=str(hcl_dir),
                runner_filter=RunnerFilter(
                    framework=["terraform"], download_external_modules=False
                ),
            )
            reports.append(_report(result, "hcl", started, str(hcl_dir)))
        if plan_json is not None:
            started = time.monotonic()
            result = PlanRunner().run(
                root_folder=None,
                files=[str(plan_json)],
                runner_filter=RunnerFilter(framework=["terraform_plan"]),
            )
            reports.append(_report(result, "plan", started, str(plan_json)))
    return reports


def _report(result: Any, source: str, started: float, path: str) -> ScanReport:
    failures: list[CheckFailure] = []
    passed = 0
    for report in result if isinstance(result, list) else [result]:
        f, p = _records(report, source)
        failures += f
        passed += p
    return ScanReport(
        tool="checkov",
        failures=failures,
        passed=passed,
        duration_s=time.monotonic() - started,
        inputs=(path,),
    )


def parse_cli_json(text: str, duration_s: float = 0.0) -> list[ScanReport]:
    """`checkov -o json` output: one report object, or a list of them (one per framework)."""
    try:
        doc: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ToolError(f"checkov printed output that is not JSON: {text[:200]!r}") from exc
    reports: list[ScanReport] = []
    for entry in doc if isinstance(doc, list) else [doc]:
        if not isinstance(entry, dict):
            raise ToolError("checkov JSON output has an unexpected shape")
        if "check_type" not in entry:  # "no files found" prints a bare summary
            continue
        source = FRAMEWORK_SOURCE.get(str(entry["check_type"]), str(entry["check_type"]))
        results = entry.get("results") or {}
        failures = [
            CheckFailure(
                tool="checkov",
                rule_id=str(c["check_id"]),
                resource=c.get("resource") or None,
                message=str(c.get("check_name") or c["check_id"]),
                source=source,
                guideline=c.get("guideline") or None,
                file=c.get("file_path") or None,
            )
            for c in results.get("failed_checks") or []
        ]
        reports.append(
            ScanReport(
                tool="checkov",
                failures=failures,
                passed=len(results.get("passed_checks") or []),
                duration_s=duration_s,
            )
        )
    return reports


def _same_dir(a: Path, b: Path) -> bool:
    return a.resolve() == b.resolve()


class CheckovScanner:
    """checkov on a workspace's .tf files and its plan JSON; offline either way."""

    def __init__(
        self,
        *,
        mode: CheckovMode = "in_process",
        cli: Sequence[str] = ("checkov",),
        env: Mapping[str, str] | None = None,
        timeout_s: float = 300,
        observer: Callable[[float], None] | None = None,
    ) -> None:
        self.mode: CheckovMode = mode
        self.cli = tuple(cli)
        self.env = dict(env or {})
        self.timeout_s = timeout_s
        self.observer = observer
        """Told each scan's duration in seconds (the container wires the metrics)."""

    async def warm_up(self) -> None:
        """Import checkov now (seconds of work), so that a long-lived worker's first
        validation does not wait for it; nothing to do for the CLI."""
        if self.mode == "in_process":
            await asyncio.to_thread(_import_checkov)

    async def scan(
        self,
        *,
        hcl_dir: Path | None,
        plan_json: Path | None,
        external_checks_dir: Path | None = None,
    ) -> list[ScanReport]:
        if hcl_dir is None and plan_json is None:
            return []
        started = time.monotonic()
        try:
            if self.mode == "in_process" and external_checks_dir is None:
                return await asyncio.to_thread(scan_in_process, hcl_dir, plan_json)
            return await self.scan_cli(hcl_dir, plan_json, external_checks_dir)
        finally:
            if self.observer is not None:
                self.observer(time.monotonic() - started)

    async def scan_cli(
        self, hcl_dir: Path | None, plan_json: Path | None, external_checks_dir: Path | None
    ) -> list[ScanReport]:
        out_dir = Path(tempfile.mkdtemp(prefix="crew-checkov-"))
        try:
            return await self._scan_cli(hcl_dir, plan_json, external_checks_dir, out_dir)
        finally:
            shutil.rmtree(out_dir, ignore_errors=True)

    async def _scan_cli(
        self,
        hcl_dir: Path | None,
        plan_json: Path | None,
        external_checks_dir: Path | None,
        out_dir: Path,
    ) -> list[ScanReport]:
        # results go to a file: stdout is truncated for display by run_process
        argv = [*self.cli, "-o", "json", "--output-file-path", str(out_dir)]
        argv += ["--skip-download", "--compact"]
        frameworks = []
        if hcl_dir is not None:
            argv += ["-d", str(hcl_dir)]
            frameworks.append("terraform")
        if plan_json is not None:
            frameworks.append("terraform_plan")
            # checkov's plan runner also picks up plan JSON inside a scanned directory
            if hcl_dir is None or not _same_dir(plan_json.parent, hcl_dir):
                argv += ["-f", str(plan_json)]
        argv += ["--framework", *frameworks]
        if external_checks_dir is not None:
            argv += ["--external-checks-dir", str(external_checks_dir)]
        env = {**self.env, **OFFLINE_ENV}
        result = await run_process(argv, cwd=None, env=env, timeout_s=self.timeout_s)
        text = read_output(out_dir / "results_json.json")
        # checkov exits 1 when a check failed; anything else, or no results, is an error
        if result.returncode not in (0, 1) or text is None:
            raise ToolError(
                f"checkov exited {result.returncode}: {(result.stderr or result.stdout)[-500:]}"
            )
        return parse_cli_json(text, result.duration_s)
