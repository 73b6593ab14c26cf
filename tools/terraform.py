"""Typed wrapper around the terraform CLI.

Every command runs through `tools.process.run_process` with `-json` output where terraform has
it; diagnostics are parsed into `schemas.build.Diagnostic` and progress lines are the
`@message` of terraform's machine-readable UI. Providers come from a filesystem mirror
(`CREW_TF_PLUGIN_DIR`) through a generated CLI configuration with a shared plugin cache, so a
new workspace links the provider instead of copying it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crew.errors import ToolError, ToolNotFoundError
from schemas.build import Diagnostic, DiagnosticSeverity
from tools.process import ProcessResult, run_process

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]

#: Variables passed through to terraform: providers read credentials, endpoints and proxies
#: from these, as their ecosystems document.
PASSTHROUGH_PREFIXES = ("AWS_", "TF_VAR_", "TF_LOG")
PASSTHROUGH_NAMES = ("PATH", "HOME", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "SSL_CERT_FILE")


def passthrough_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The part of a process environment terraform may see (nothing else leaks in)."""
    return {
        k: v
        for k, v in environ.items()
        if k in PASSTHROUGH_NAMES or k.startswith(PASSTHROUGH_PREFIXES)
    }


@dataclass(frozen=True)
class StepResult:
    ok: bool
    diagnostics: list[Diagnostic]
    duration_s: float

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is DiagnosticSeverity.ERROR]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is DiagnosticSeverity.WARNING]


@dataclass(frozen=True)
class PlanOutcome(StepResult):
    has_changes: bool = False


@dataclass(frozen=True)
class ApplyOutcome(StepResult):
    added: int = 0
    changed: int = 0
    destroyed: int = 0
    outputs: dict[str, Any] = field(default_factory=dict)


class TerraformRunner:
    """Runs terraform commands in a workspace directory; one instance per process."""

    def __init__(
        self,
        *,
        binary: Path | None,
        plugin_dir: Path | None,
        plugin_cache_dir: Path,
        cli_config_path: Path,
        env: Mapping[str, str],
        plan_timeout_s: float,
        apply_timeout_s: float,
    ) -> None:
        self.binary = binary
        self.plugin_dir = plugin_dir
        self.plugin_cache_dir = plugin_cache_dir
        self.cli_config_path = cli_config_path
        self.plan_timeout_s = plan_timeout_s
        self.apply_timeout_s = apply_timeout_s
        self._base_env = dict(env)
        self._configured = False
        self._init_lock = asyncio.Lock()

    # -- set-up ---------------------------------------------------------------------------

    def check(self) -> Path:
        """Fail with a message that says what to set when terraform or the mirror is missing."""
        if self.binary is None:
            raise ToolNotFoundError(
                "terraform was not found on PATH: install terraform >= 1.5 or set "
                "CREW_TERRAFORM_BIN to its path"
            )
        if not self.binary.is_file():
            raise ToolNotFoundError(
                f"CREW_TERRAFORM_BIN={self.binary} does not exist: point it at the terraform binary"
            )
        if self.plugin_dir is not None and not self.plugin_dir.is_dir():
            raise ToolNotFoundError(
                f"CREW_TF_PLUGIN_DIR={self.plugin_dir} does not exist: point it at an unpacked "
                "provider mirror (a directory holding registry.terraform.io/hashicorp/aws/...)"
            )
        return self.binary

    def _ensure_cli_config(self) -> None:
        if self._configured:
            return
        self.plugin_cache_dir.mkdir(parents=True, exist_ok=True)
        self.cli_config_path.parent.mkdir(parents=True, exist_ok=True)
        lines = [f"plugin_cache_dir = {json.dumps(str(self.plugin_cache_dir))}"]
        if self.plugin_dir is not None:
            lines += [
                "provider_installation {",
                "  filesystem_mirror {",
                f"    path    = {json.dumps(str(self.plugin_dir))}",
                '    include = ["registry.terraform.io/*/*"]',
                "  }",
                "  direct {",
                '    exclude = ["registry.terraform.io/*/*"]',
                "  }",
                "}",
            ]
        self.cli_config_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self._configured = True

    def _env(self) -> dict[str, str]:
        return {
            **self._base_env,
            "TF_CLI_CONFIG_FILE": str(self.cli_config_path),
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",  # no version check call to HashiCorp
        }

    async def _run(
        self, args: list[str], cwd: Path, timeout_s: float, progress: Progress | None = None
    ) -> ProcessResult:
        binary = self.check()
        self._ensure_cli_config()

        def on_line(line: str) -> None:
            if progress is None:
                return
            message = _json_message(line)
            if message:
                progress(message)

        return await run_process(
            [str(binary), *args],
            cwd=cwd,
            env=self._env(),
            timeout_s=timeout_s,
            on_stdout_line=on_line,
        )

    # -- commands -------------------------------------------------------------------------

    async def version(self) -> str:
        result = await self._run(["version", "-json"], Path.cwd(), 60)
        try:
            return str(json.loads(result.stdout)["terraform_version"])
        except (ValueError, KeyError) as exc:
            raise ToolError(
                f"unexpected `terraform version -json` output: {result.stdout[:200]}"
            ) from exc

    @contextlib.asynccontextmanager
    async def _plugin_cache_lock(self) -> AsyncIterator[None]:
        """Hold the shared plugin cache for one `terraform init`.

        Terraform documents its plugin cache as not safe for concurrent `init`s (two at once
        fail with "failed to create directory ... file exists"), and every worker task and every
        crew process on this data dir shares one cache. An asyncio lock orders this process's
        tasks; a non-blocking flock polled with sleeps orders processes and stays cancellable.
        """
        async with self._init_lock:
            self.plugin_cache_dir.mkdir(parents=True, exist_ok=True)
            with (self.plugin_cache_dir / ".crew-init.lock").open("a") as handle:
                while True:
                    try:
                        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        await asyncio.sleep(0.05)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)

    async def init(self, workdir: Path, progress: Progress | None = None) -> StepResult:
        async with self._plugin_cache_lock():
            result = await self._run(
                ["init", "-json", "-input=false", "-no-color"],
                workdir,
                self.plan_timeout_s,
                progress,
            )
        diagnostics = _stream_diagnostics(result)
        if result.returncode != 0 and self.plugin_dir is None:
            diagnostics.append(
                Diagnostic(
                    severity=DiagnosticSeverity.ERROR,
                    summary="no provider mirror configured",
                    detail="CREW_TF_PLUGIN_DIR is unset and no mirror was detected, so terraform "
                    "tried the public registry; set CREW_TF_PLUGIN_DIR to an unpacked provider "
                    "mirror for offline use",
                )
            )
        return StepResult(result.returncode == 0, diagnostics, result.duration_s)

    async def validate(self, workdir: Path) -> StepResult:
        result = await self._run(["validate", "-json", "-no-color"], workdir, self.plan_timeout_s)
        try:
            doc = json.loads(result.stdout)
        except ValueError as exc:
            raise ToolError(
                f"terraform validate printed no JSON (exit {result.returncode}): "
                f"{(result.stderr or result.stdout)[:500]}"
            ) from exc
        diagnostics = [_diagnostic(d) for d in doc.get("diagnostics", [])]
        return StepResult(bool(doc.get("valid")), diagnostics, result.duration_s)

    async def plan(
        self,
        workdir: Path,
        planfile: str,
        progress: Progress | None = None,
        *,
        destroy: bool = False,
    ) -> PlanOutcome:
        args = [
            "plan",
            "-json",
            "-input=false",
            "-no-color",
            "-detailed-exitcode",
            f"-out={planfile}",
        ]
        if destroy:
            args.append("-destroy")
        result = await self._run(args, workdir, self.plan_timeout_s, progress)
        diagnostics = _stream_diagnostics(result)
        # -detailed-exitcode: 0 no changes, 1 error, 2 changes present
        return PlanOutcome(
            ok=result.returncode in (0, 2),
            diagnostics=diagnostics,
            duration_s=result.duration_s,
            has_changes=result.returncode == 2,
        )

    async def show_plan(self, workdir: Path, planfile: str) -> dict[str, Any]:
        result = await self._run(
            ["show", "-json", "-no-color", planfile], workdir, self.plan_timeout_s
        )
        if result.returncode != 0:
            raise ToolError(f"terraform show failed: {(result.stderr or result.stdout)[:500]}")
        try:
            doc: dict[str, Any] = json.loads(result.stdout)
        except ValueError as exc:
            raise ToolError("terraform show printed invalid JSON") from exc
        return doc

    async def apply(
        self, workdir: Path, planfile: str, progress: Progress | None = None
    ) -> ApplyOutcome:
        """Apply exactly the saved plan file (terraform refuses it if the state moved on)."""
        result = await self._run(
            ["apply", "-json", "-input=false", "-no-color", "-auto-approve", planfile],
            workdir,
            self.apply_timeout_s,
            progress,
        )
        return _apply_outcome(result)

    async def destroy(self, workdir: Path, progress: Progress | None = None) -> ApplyOutcome:
        result = await self._run(
            ["apply", "-destroy", "-json", "-input=false", "-no-color", "-auto-approve"],
            workdir,
            self.apply_timeout_s,
            progress,
        )
        return _apply_outcome(result)

    async def outputs(self, workdir: Path) -> dict[str, Any]:
        result = await self._run(["output", "-json", "-no-color"], workdir, self.plan_timeout_s)
        if result.returncode != 0:
            return {}
        try:
            raw = json.loads(result.stdout or "{}")
        except ValueError:
            return {}
        return {
            name: ("<sensitive>" if item.get("sensitive") else item.get("value"))
            for name, item in raw.items()
        }


def _json_message(line: str) -> str | None:
    try:
        doc = json.loads(line)
    except ValueError:
        return line.strip() or None
    if not isinstance(doc, dict):
        return None
    message = doc.get("@message")
    return str(message) if message else None


def _diagnostic(raw: Mapping[str, Any]) -> Diagnostic:
    rng = raw.get("range") or {}
    severity = (
        DiagnosticSeverity.WARNING if raw.get("severity") == "warning" else DiagnosticSeverity.ERROR
    )
    return Diagnostic(
        severity=severity,
        summary=str(raw.get("summary", "")),
        detail=str(raw.get("detail", "")),
        address=raw.get("address"),
        filename=rng.get("filename"),
        line=(rng.get("start") or {}).get("line"),
    )


def _stream_lines(result: ProcessResult) -> list[dict[str, Any]]:
    docs = []
    for line in result.stdout.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict):
            docs.append(doc)
    return docs


def _stream_diagnostics(result: ProcessResult) -> list[Diagnostic]:
    diagnostics = [
        _diagnostic(doc["diagnostic"])
        for doc in _stream_lines(result)
        if doc.get("type") == "diagnostic" and isinstance(doc.get("diagnostic"), dict)
    ]
    if result.returncode not in (0, 2) and not any(
        d.severity is DiagnosticSeverity.ERROR for d in diagnostics
    ):
        # Failed before the JSON UI started (bad CLI config, crash): keep what it said.
        text = (result.stderr or result.stdout).strip()[-2000:]
        diagnostics.append(
            Diagnostic(
                severity=DiagnosticSeverity.ERROR,
                summary=f"terraform exited with code {result.returncode}",
                detail=text,
            )
        )
    return diagnostics


def _apply_outcome(result: ProcessResult) -> ApplyOutcome:
    added = changed = destroyed = 0
    outputs: dict[str, Any] = {}
    for doc in _stream_lines(result):
        if doc.get("type") == "change_summary":
            changes = doc.get("changes") or {}
            added = int(changes.get("add", 0))
            changed = int(changes.get("change", 0))
            destroyed = int(changes.get("remove", 0))
        elif doc.get("type") == "outputs":
            outputs = {
                name: ("<sensitive>" if item.get("sensitive") else item.get("value"))
                for name, item in (doc.get("outputs") or {}).items()
            }
    return ApplyOutcome(
        ok=result.returncode == 0,
        diagnostics=_stream_diagnostics(result),
        duration_s=result.duration_s,
        added=added,
        changed=changed,
        destroyed=destroyed,
        outputs=outputs,
    )
