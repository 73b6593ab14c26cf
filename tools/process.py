"""The one helper that runs external programs.

argv lists only (never a shell string), an explicit timeout, an explicit environment, the child
in its own process group so a timeout or a cancellation kills everything it started (terraform
starts provider plugins), and output streamed line by line to a callback for progress.

With `output_file`, the child writes to a file instead of a pipe and the file is tailed. That
is for commands that must outlive this process: terraform apply writes to stdout as it goes,
and a pipe whose reader was killed (kill -9 of crew) makes its next write die of SIGPIPE,
half-way through creating resources that then never reach the state. A file has no reader to
lose, so an orphaned apply finishes and records what it made; the resumed run waits for its
state lock (tools/terraform.py uses -lock-timeout) and then sees everything. Commands that do
not take that lock (`terraform state pull`) must wait for the orphan themselves:
`processes_in` finds it by its working directory and `running_in` tells whether it still runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from schemas.errors import ToolNotFoundError, ToolTimeoutError

logger = logging.getLogger(__name__)

LineCallback = Callable[[str], None]

#: How long a process group gets between SIGTERM and SIGKILL.
KILL_GRACE_S = 5.0
#: Longest single output line read (asyncio's default of 64 KiB is too small for terraform).
MAX_LINE_BYTES = 64 * 1024 * 1024
#: Raw output kept for display is truncated to this many characters.
MAX_KEPT_OUTPUT = 200_000
#: How often a file-backed child's output is read while it runs.
TAIL_INTERVAL_S = 0.05


@dataclass(frozen=True)
class ProcessResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    duration_s: float


async def run_process(
    argv: Sequence[str],
    *,
    cwd: Path | None,
    env: Mapping[str, str],
    timeout_s: float,
    on_stdout_line: LineCallback | None = None,
    output_file: Path | None = None,
) -> ProcessResult:
    """Run `argv` to completion and return its exit code and output.

    Raises ToolNotFoundError when the program does not exist and ToolTimeoutError after
    killing the process group when it runs past `timeout_s`. Cancelling the awaiting task
    kills the process group too.
    """
    started = time.monotonic()
    stdout_lines: list[str] = []
    stderr_lines: list[str] = []
    with contextlib.ExitStack() as files:
        if output_file is None:
            out: int | IO[bytes] = asyncio.subprocess.PIPE
            err: int | IO[bytes] = asyncio.subprocess.PIPE
        else:
            out = files.enter_context(output_file.open("wb"))
            err = files.enter_context(output_file.with_suffix(".stderr").open("wb"))
        proc = await _spawn(argv, cwd=cwd, env=env, stdout=out, stderr=err)
        if output_file is None:
            assert proc.stdout is not None
            assert proc.stderr is not None
            pumps = asyncio.gather(
                _pump(proc.stdout, stdout_lines, on_stdout_line),
                _pump(proc.stderr, stderr_lines, None),
            )
        else:
            files.close()  # the child holds its own copies of the descriptors
            pumps = asyncio.gather(
                _tail(output_file, proc, stdout_lines, on_stdout_line),
                _tail(output_file.with_suffix(".stderr"), proc, stderr_lines, None),
            )
        returncode = await _wait(proc, pumps, argv, timeout_s)

    return ProcessResult(
        argv=tuple(argv),
        returncode=returncode,
        stdout="\n".join(stdout_lines)[-MAX_KEPT_OUTPUT:],
        stderr="\n".join(stderr_lines)[-MAX_KEPT_OUTPUT:],
        duration_s=time.monotonic() - started,
    )


async def _spawn(
    argv: Sequence[str],
    *,
    cwd: Path | None,
    env: Mapping[str, str],
    stdout: int | IO[bytes],
    stderr: int | IO[bytes],
) -> asyncio.subprocess.Process:
    try:
        return await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
            # terraform's JSON UI prints whole plans and schemas on one line.
            limit=MAX_LINE_BYTES,
        )
    except FileNotFoundError as exc:
        raise ToolNotFoundError(f"program not found: {argv[0]}") from exc
    except PermissionError as exc:
        raise ToolNotFoundError(f"program is not executable: {argv[0]}") from exc


def _emit(raw: bytes, sink: list[str], cb: LineCallback | None) -> None:
    line = raw.decode("utf-8", errors="replace").rstrip("\n")
    sink.append(line)
    if cb is not None:
        cb(line)


async def _pump(stream: asyncio.StreamReader, sink: list[str], cb: LineCallback | None) -> None:
    while raw := await stream.readline():
        _emit(raw, sink, cb)


async def _tail(
    path: Path, proc: asyncio.subprocess.Process, sink: list[str], cb: LineCallback | None
) -> None:
    """Follow `path` line by line until the process has exited and the file is read out."""
    pending = b""
    with path.open("rb") as handle:
        while True:
            exited = proc.returncode is not None
            chunk = handle.read()
            if chunk:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for raw in lines:
                    _emit(raw, sink, cb)
            elif exited:
                if pending:
                    _emit(pending, sink, cb)
                return
            else:
                await asyncio.sleep(TAIL_INTERVAL_S)


async def _wait(
    proc: asyncio.subprocess.Process,
    pumps: asyncio.Future[tuple[None, None]],
    argv: Sequence[str],
    timeout_s: float,
) -> int:
    """The exit code once the output is read; kills the group on timeout or cancellation."""
    try:
        async with asyncio.timeout(timeout_s):
            returncode = await proc.wait()
            await pumps
            return returncode
    except TimeoutError as exc:
        await _kill_group(proc)
        raise ToolTimeoutError(
            f"{Path(argv[0]).name} {' '.join(argv[1:2])} ran longer than {timeout_s:g}s "
            "and was stopped"
        ) from exc
    except asyncio.CancelledError:
        await _kill_group(proc)
        raise
    finally:
        if not pumps.done():
            pumps.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pumps


async def _kill_group(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM the whole process group, then SIGKILL what is left after a grace period."""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), KILL_GRACE_S)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()


def running_in(pid: int, cwd: Path) -> bool:
    """Whether process `pid` runs with working directory `cwd` (Linux /proc).

    The directory check guards against a recycled pid, and it is False for a zombie (its cwd
    link is gone), which matters for an orphan re-parented to an init that does not reap. Where
    there is no /proc the answer is False: the caller then proceeds as before.
    """
    return _cwd_of(pid) == cwd.resolve()


def processes_in(cwd: Path, accept: Callable[[str], bool]) -> list[int]:
    """Pids of the running processes with working directory `cwd` whose command name
    (/proc/PID/comm: the executable's file name, cut to 15 characters) `accept`s.

    Found from outside rather than from a pid file the parent writes: a parent killed between
    exec and that write (the moment a crash test aims for) would leave no trace. Processes of
    other users whose /proc entries cannot be read are not seen; empty without /proc.
    """
    target = cwd.resolve()
    found: list[int] = []
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            if _cwd_of(pid) != target:
                continue
            try:
                name = Path(f"/proc/{pid}/comm").read_text(encoding="utf-8").strip()
            except OSError:
                continue
            if accept(name):
                found.append(pid)
    return sorted(found)


def _cwd_of(pid: int) -> Path | None:
    """The working directory of `pid`; None when it is gone, a zombie, or not ours to read."""
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return None
