"""Typed wrapper around the terraform CLI.

Every command runs through `tools.process.run_process` with `-json` output where terraform has
it; diagnostics are parsed into `schemas.build.Diagnostic` and progress lines are the
`@message` of terraform's machine-readable UI. Providers come from an unpacked filesystem
mirror (`CREW_TF_PLUGIN_DIR`) through a generated CLI configuration, so a new workspace links the
provider instead of copying it; without a mirror, a shared plugin cache saves downloading it for
every workspace.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import logging
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from schemas.build import Diagnostic, DiagnosticSeverity
from schemas.errors import ToolError, ToolNotFoundError, ToolTimeoutError
from schemas.progress import TerraformOperation
from tools.guard import check_workspace
from tools.process import ProcessResult, processes_in, run_process, running_in
from tools.terraform_output import (
    ApplyOutcome,
    PlanOutcome,
    StepResult,
    _apply_outcome,
    _diagnostic,
    _json_message,
    _stream_diagnostics,
    managed_addresses,
)
from tools.terraform_progress import ProgressTracker, ResourceProgress, parse_ui_line

__all__ = [
    "ApplyOutcome",
    "PlanOutcome",
    "ResourceProgress",
    "StepResult",
    "TerraformRunner",
    "_apply_outcome",
    "_diagnostic",
    "_json_message",
    "_stream_diagnostics",
    "managed_addresses",
    "passthrough_env",
]

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]

#: Per-step logs (one file per terraform command) live here inside the workspace.
LOG_DIR = "logs"
#: Terraform's dependency lock file, in each workspace.
LOCK_FILE = ".terraform.lock.hcl"
#: How often `wait_for_orphans` looks again.
ORPHAN_POLL_S = 0.2
#: Linux keeps this many characters of a command name (/proc/PID/comm).
COMM_LENGTH = 15
#: Exit codes of a command that worked; `plan -detailed-exitcode` also exits 2 when the plan
#: has changes (0 no changes, 1 error), which is the usual success of a plan.
_SUCCESS = frozenset({0})
_PLAN_SUCCESS = frozenset({0, 2})

#: Variables passed through to terraform: providers read credentials, endpoints and proxies
#: from these, as their ecosystems document.
PASSTHROUGH_PREFIXES = ("AWS_", "TF_VAR_", "TF_LOG")
PASSTHROUGH_NAMES = ("PATH", "HOME", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "SSL_CERT_FILE")


def plugin_cache_lines(cache_dir: Path) -> list[str]:
    """CLI configuration for one provider cache shared by every workspace.

    Forge's workspaces start without a dependency lock file, and without one terraform >= 1.4
    ignores the cache and downloads the provider again (hundreds of MB for hashicorp/aws) into
    each workspace. `plugin_cache_may_break_dependency_lock_file` lets it link the cached
    package instead; the cost its name warns of (the lock file records only this platform's
    checksum) does not apply to a workspace that lives for one plan and apply on this machine.
    """
    return [
        f"plugin_cache_dir = {json.dumps(str(cache_dir))}",
        "plugin_cache_may_break_dependency_lock_file = true",
    ]


def passthrough_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The part of a process environment terraform may see (nothing else leaks in)."""
    return {
        k: v
        for k, v in environ.items()
        if k in PASSTHROUGH_NAMES or k.startswith(PASSTHROUGH_PREFIXES)
    }


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
        observer: Callable[[str, float, bool], None] | None = None,
    ) -> None:
        self.observer = observer
        """Told (command, seconds, succeeded) after each command (the container wires the
        metrics)."""
        self.binary = binary
        self.plugin_dir = plugin_dir
        self.plugin_cache_dir = plugin_cache_dir
        self.cli_config_path = cli_config_path
        self.plan_timeout_s = plan_timeout_s
        self.apply_timeout_s = apply_timeout_s
        self._base_env = dict(env)
        self._configured = False
        self._guarded: dict[str, str] = {}
        """Workspaces the pre-plan guard found clean, by digest (check_workspace's memory)."""
        self._init_lock = asyncio.Lock()
        self._lock_file_lock = asyncio.Lock()
        self._version: tuple[tuple[Path, float], dict[str, Any]] | None = None

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
        self.cli_config_path.parent.mkdir(parents=True, exist_ok=True)
        lines: list[str] = []
        if self.plugin_dir is None:
            self.plugin_cache_dir.mkdir(parents=True, exist_ok=True)
            lines += plugin_cache_lines(self.plugin_cache_dir)
        else:
            # Terraform links each workspace straight to an unpacked mirror. A plugin cache in
            # between adds nothing and races: every `init` re-creates the cache's link to the
            # mirror, and a validate/plan in another workspace resolving it at that moment
            # fails ("no package ... cached in .terraform/providers").
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
        self,
        args: list[str],
        cwd: Path,
        timeout_s: float,
        progress: Progress | None = None,
        *,
        step: str | None = None,
        ok_codes: frozenset[int] = _SUCCESS,
        resources: ResourceProgress | None = None,
        operation: TerraformOperation = "apply",
    ) -> ProcessResult:
        """Run one terraform command in `cwd`.

        With a `step` name, `cwd` is a workspace: the pre-plan guard checks it first (nothing
        runs if it refuses), and every output line goes to `logs/<step>.log` in it as it
        arrives, so a human can follow a long apply. `ok_codes` are the exit codes the
        observer counts as success (`plan -detailed-exitcode` exits 2 for a plan with changes).
        With `resources`, each UI line that moves a resource (started, still creating,
        complete, errored, planned) is folded into a `StepProgress` of `operation` and
        reported as it arrives, and once more, finished, when the command exits.
        """
        binary = self.check()
        self._ensure_cli_config()
        if step is not None:
            check_workspace(cwd, self._guarded)
        tracker = (
            ProgressTracker(resources.step, operation, datetime.now(UTC))
            if resources is not None
            else None
        )

        with _step_log(cwd, step) as log:

            def on_line(line: str) -> None:
                message = _json_message(line)
                if log is not None and message:
                    log.write(f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%S.%fZ} {message}\n")
                    log.flush()
                if progress is not None and message:
                    progress(message)
                if tracker is not None and resources is not None:
                    _report_progress(tracker, resources, line)

            started, ok = time.monotonic(), False
            try:
                result = await run_process(
                    [str(binary), *args],
                    cwd=cwd,
                    env=self._env(),
                    timeout_s=timeout_s,
                    on_stdout_line=on_line,
                    # Workspace steps write to a file, not a pipe: an apply orphaned by a
                    # crash of this process must finish and record what it created.
                    output_file=None if step is None else cwd / LOG_DIR / f"{step}.stdout",
                )
                ok = result.returncode in ok_codes
            finally:
                if self.observer is not None:
                    self.observer(step or args[0], time.monotonic() - started, ok)
                if tracker is not None and resources is not None:
                    _report_progress(tracker, resources, None)
            if log is not None:
                log.write(f"exit {result.returncode} after {result.duration_s:.1f}s\n")
                if result.stderr:
                    log.write(result.stderr[-4000:] + "\n")
            return result

    def _lock_timeout(self) -> str:
        """Wait for the state lock rather than fail: after a crash, the apply this process
        started may still be running (tools/process.py) and holds the lock until it has
        recorded everything it created; the rollback must destroy after it, not beside it."""
        return f"-lock-timeout={int(self.apply_timeout_s)}s"

    async def wait_for_orphans(self, workdir: Path, progress: Progress | None = None) -> None:
        """Wait until no terraform (or provider plugin) started by an earlier, crashed process
        still runs in `workdir`.

        A kill -9 of crew leaves its terraform apply running (see `_run`), and commands that
        read the state without its lock (`state pull`) would see it half-written: a rollback
        would then miss what the apply creates after the look. Whoever calls this holds the run
        (and, for a rollback, the stack lock), so terraform in its workspace is an orphan.
        Raises ToolTimeoutError after the apply timeout, since the orphan is then no ordinary
        apply.
        """
        binary_name = (self.binary.name if self.binary else "terraform")[:COMM_LENGTH]

        def is_terraform(name: str) -> bool:
            return name == binary_name or name.startswith("terraform-provi")

        orphans = processes_in(workdir, is_terraform)
        if not orphans:
            return
        message = f"waiting for terraform left running by a stopped worker (pids {orphans})"
        logger.warning("%s in %s", message, workdir)
        if progress is not None:
            progress(message)
        deadline = time.monotonic() + self.apply_timeout_s
        while running := [pid for pid in orphans if running_in(pid, workdir)]:
            if time.monotonic() > deadline:
                raise ToolTimeoutError(
                    f"terraform left by a stopped worker (pids {running}) still runs in "
                    f"{workdir} after {self.apply_timeout_s:.0f}s; stop it, then retry"
                )
            await asyncio.sleep(ORPHAN_POLL_S)

    # -- commands -------------------------------------------------------------------------

    async def version(self) -> str:
        return str((await self._version_doc())["terraform_version"])

    async def _version_doc(self) -> dict[str, Any]:
        """`terraform version -json`, asked once per binary (a new binary is asked again)."""
        binary = self.check()
        key = (binary, binary.stat().st_mtime)
        if self._version is not None and self._version[0] == key:
            return self._version[1]
        result = await self._run(["version", "-json"], Path.cwd(), 60)
        try:
            doc = json.loads(result.stdout)
            str(doc["terraform_version"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ToolError(
                f"unexpected `terraform version -json` output: {result.stdout[:200]}"
            ) from exc
        self._version = (key, doc)
        return self._version[1]

    async def _write_lock_file(self, workdir: Path) -> None:
        """Give a workspace a dependency lock file before `init`, when providers come from
        the mirror.

        Without one, init computes the provider's checksum from the mirror and warns that the
        lock file it wrote is incomplete ("Incomplete lock file information for providers").
        `terraform providers lock -fs-mirror` records the same selection and checksums, for
        this machine's platform (the only one a workspace here runs on), without the warning;
        it runs once per provider requirements, and each workspace gets a copy.
        """
        versions = workdir / "versions.tf"
        lock_file = workdir / LOCK_FILE
        if self.plugin_dir is None or lock_file.exists() or not versions.is_file():
            return
        doc = await self._version_doc()
        requirements = versions.read_bytes()
        key = hashlib.sha256(
            b"\0".join([requirements, str(self.plugin_dir).encode(), json.dumps(doc).encode()])
        ).hexdigest()[:24]
        kept = self.cli_config_path.parent / "tf-locks" / f"{key}.lock.hcl"
        async with self._lock_file_lock:
            if not kept.is_file():
                kept.parent.mkdir(parents=True, exist_ok=True)
                with tempfile.TemporaryDirectory(dir=kept.parent) as tmp:
                    (Path(tmp) / "versions.tf").write_bytes(requirements)
                    args = ["providers", "lock", "-fs-mirror", str(self.plugin_dir)]
                    args.append(f"-platform={doc.get('platform') or 'linux_amd64'}")
                    result = await self._run(args, Path(tmp), self.plan_timeout_s)
                    written = Path(tmp) / LOCK_FILE
                    if result.returncode != 0 or not written.is_file():
                        logger.warning(
                            "no lock file for %s: terraform providers lock exited %d: %s",
                            workdir,
                            result.returncode,
                            (result.stderr or result.stdout)[-500:],
                        )
                        return
                    written.replace(kept)
        shutil.copyfile(kept, lock_file)

    @contextlib.asynccontextmanager
    async def _plugin_cache_lock(self) -> AsyncIterator[None]:
        """Hold the shared plugin cache for one `terraform init`.

        Terraform documents its plugin cache as not safe for concurrent `init`s (two at once
        fail with "failed to create directory ... file exists"), and every worker task and every
        crew process on this data dir shares one cache. An asyncio lock orders this process's
        tasks; a non-blocking flock polled with sleeps orders processes and stays cancellable.
        With a mirror there is no cache (see `_ensure_cli_config`) and nothing to hold.
        """
        if self.plugin_dir is not None:
            yield
            return
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

    async def init(
        self,
        workdir: Path,
        progress: Progress | None = None,
        *,
        backend_config: Mapping[str, str] | None = None,
    ) -> StepResult:
        """`terraform init`; `backend_config` fills the workspace's (partial) backend block."""
        args = ["init", "-json", "-input=false", "-no-color"]
        if backend_config:
            args.append("-reconfigure")
            args += [f"-backend-config={k}={v}" for k, v in sorted(backend_config.items())]
        check_workspace(
            workdir, self._guarded
        )  # before any terraform process, the lock file's included
        await self._write_lock_file(workdir)
        async with self._plugin_cache_lock():
            result = await self._run(args, workdir, self.plan_timeout_s, progress, step="init")
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
        result = await self._run(
            ["validate", "-json", "-no-color"], workdir, self.plan_timeout_s, step="validate"
        )
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
        resources: ResourceProgress | None = None,
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
        result = await self._run(
            args,
            workdir,
            self.plan_timeout_s,
            progress,
            step="plan",
            ok_codes=_PLAN_SUCCESS,
            resources=resources,
            operation="plan",
        )
        diagnostics = _stream_diagnostics(result)
        return PlanOutcome(
            ok=result.returncode in _PLAN_SUCCESS,
            diagnostics=diagnostics,
            duration_s=result.duration_s,
            has_changes=result.returncode == 2,
        )

    async def show_plan(self, workdir: Path, planfile: str) -> dict[str, Any]:
        result = await self._run(
            ["show", "-json", "-no-color", planfile], workdir, self.plan_timeout_s, step="show"
        )
        if result.returncode != 0:
            raise ToolError(f"terraform show failed: {(result.stderr or result.stdout)[:500]}")
        try:
            doc: dict[str, Any] = json.loads(_full_stdout(workdir, "show", result))
        except ValueError as exc:
            raise ToolError("terraform show printed invalid JSON") from exc
        return doc

    async def apply(
        self,
        workdir: Path,
        planfile: str,
        progress: Progress | None = None,
        *,
        resources: ResourceProgress | None = None,
    ) -> ApplyOutcome:
        """Apply exactly the saved plan file (terraform refuses it if the state moved on)."""
        result = await self._run(
            [
                "apply",
                "-json",
                "-input=false",
                "-no-color",
                "-auto-approve",
                self._lock_timeout(),
                planfile,
            ],
            workdir,
            self.apply_timeout_s,
            progress,
            step="apply",
            resources=resources,
            operation="apply",
        )
        return _apply_outcome(result)

    async def destroy(
        self,
        workdir: Path,
        progress: Progress | None = None,
        *,
        targets: Sequence[str] = (),
        resources: ResourceProgress | None = None,
    ) -> ApplyOutcome:
        """Destroy everything in the state, or only `targets` (and what depends on them)."""
        result = await self._run(
            [
                "apply",
                "-destroy",
                "-json",
                "-input=false",
                "-no-color",
                "-auto-approve",
                self._lock_timeout(),
                *(f"-target={t}" for t in targets),
            ],
            workdir,
            self.apply_timeout_s,
            progress,
            step="destroy",
            resources=resources,
            operation="destroy",
        )
        return _apply_outcome(result)

    async def state_pull(self, workdir: Path) -> dict[str, Any]:
        """The current state document (`terraform state pull`); empty when there is none."""
        result = await self._run(["state", "pull"], workdir, self.plan_timeout_s, step="state-pull")
        if result.returncode != 0:
            raise ToolError(
                f"terraform state pull failed: {(result.stderr or result.stdout)[:500]}"
            )
        text = _full_stdout(workdir, "state-pull", result)
        if not text.strip():
            return {}
        try:
            doc: dict[str, Any] = json.loads(text)
        except ValueError as exc:
            raise ToolError("terraform state pull printed invalid JSON") from exc
        return doc

    async def outputs(self, workdir: Path) -> dict[str, Any]:
        result = await self._run(
            ["output", "-json", "-no-color"], workdir, self.plan_timeout_s, step="output"
        )
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


def _report_progress(
    tracker: ProgressTracker, resources: ResourceProgress, line: str | None
) -> None:
    """Fold one UI line (None: the command exited) and report the progress; progress is a
    view, so a line it cannot represent is logged and never stops the command."""
    try:
        if line is None:
            resources.report(tracker.finish(datetime.now(UTC)))
            return
        event = parse_ui_line(line)
        if event is not None and tracker.feed(event):
            resources.report(tracker.snapshot())
    except Exception as exc:  # a progress value that does not validate, a failing sink
        logger.warning("terraform progress not reported: %s", exc)


def _full_stdout(workdir: Path, step: str, result: ProcessResult) -> str:
    """All a workspace step printed: `result.stdout` keeps only the end of a long output (the
    plan JSON of a hundred resources is larger), the step's stdout file has all of it."""
    path = workdir / LOG_DIR / f"{step}.stdout"
    return path.read_text(encoding="utf-8") if path.is_file() else result.stdout


@contextlib.contextmanager
def _step_log(workdir: Path, step: str | None) -> Iterator[IO[str] | None]:
    if step is None:
        yield None
        return
    directory = workdir / LOG_DIR
    directory.mkdir(exist_ok=True)
    with (directory / f"{step}.log").open("a", encoding="utf-8") as handle:
        handle.write(f"--- terraform {step} {datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}\n")
        yield handle
