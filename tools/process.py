"""The one helper that runs external programs.

argv lists only (never a shell string), an explicit timeout, an explicit environment, the child
in its own process group so a timeout or a cancellation kills everything it started (terraform
starts provider plugins), and output streamed line by line to a callback for progress.
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

from crew.errors import ToolNotFoundError, ToolTimeoutError

logger = logging.getLogger(__name__)

LineCallback = Callable[[str], None]

#: How long a process group gets between SIGTERM and SIGKILL.
KILL_GRACE_S = 5.0
#: Longest single output line read (asyncio's default of 64 KiB is too small for terraform).
MAX_LINE_BYTES = 64 * 1024 * 1024
#: Raw output kept for display is truncated to this many characters.
MAX_KEPT_OUTPUT = 200_000


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
) -> ProcessResult:
    """Run `argv` to completion and return its exit code and output.

    Raises ToolNotFoundError when the program does not exist and ToolTimeoutError after
    killing the process group when it runs past `timeout_s`. Cancelling the awaiting task
    kills the process group too.
    """
    started = time.monotonic()
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            # terraform's JSON UI prints whole plans and schemas on one line.
            limit=MAX_LINE_BYTES,
        )
    except FileNotFoundError as exc:
        raise ToolNotFoundError(f"program not found: {argv[0]}") from exc
    except PermissionError as exc:
        raise ToolNotFoundError(f"program is not executable: {argv[0]}") from exc

    stdout_lines: list[str] = []
    stderr_lines: list[str] = []

    async def pump(stream: asyncio.StreamReader, sink: list[str], cb: LineCallback | None) -> None:
        while True:
            raw = await stream.readline()
            if not raw:
                return
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            sink.append(line)
            if cb is not None:
                cb(line)

    assert proc.stdout is not None
    assert proc.stderr is not None
    pumps = asyncio.gather(
        pump(proc.stdout, stdout_lines, on_stdout_line),
        pump(proc.stderr, stderr_lines, None),
    )
    try:
        async with asyncio.timeout(timeout_s):
            await pumps
            returncode = await proc.wait()
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

    return ProcessResult(
        argv=tuple(argv),
        returncode=returncode,
        stdout="\n".join(stdout_lines)[-MAX_KEPT_OUTPUT:],
        stderr="\n".join(stderr_lines)[-MAX_KEPT_OUTPUT:],
        duration_s=time.monotonic() - started,
    )


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
