"""tools/process.run_process with real /bin/sh and python children.

A timeout or a cancellation must take the child's whole process group with it: terraform
starts provider plugins, and an orphaned provider would keep working on the cloud.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

import tools.process
from schemas.errors import ToolNotFoundError, ToolTimeoutError
from tools.process import run_process

SH = "/bin/sh"
REPO = Path(__file__).resolve().parents[2]
ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
#: A child that starts a grandchild, prints the grandchild's pid, and waits for it.
SPAWNS_GRANDCHILD = 'sleep 60 & echo "$!"; echo started; wait'


def same_directory(a: str, b: Path) -> bool:
    return Path(a).resolve() == b.resolve()


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


async def wait_until_gone(pid: int, attempts: int = 200) -> bool:
    """Poll briefly for the kernel to finish a kill (not a timing assertion: it only bounds
    how long a broken kill takes to show up as a failure)."""
    for _ in range(attempts):
        if not alive(pid):
            return True
        await asyncio.sleep(0.025)
    return not alive(pid)


async def test_captures_stdout_lines_stderr_and_exit_code(tmp_path: Path) -> None:
    seen: list[str] = []
    result = await run_process(
        [SH, "-c", 'echo one; echo "two  words"; echo oops >&2; printf last; exit 3'],
        cwd=tmp_path,
        env=ENV,
        timeout_s=30,
        on_stdout_line=seen.append,
    )
    assert result.returncode == 3
    assert seen == ["one", "two  words", "last"]
    assert result.stdout == "one\ntwo  words\nlast"
    assert result.stderr == "oops"
    assert result.argv[0] == SH
    assert result.duration_s >= 0


async def test_runs_in_cwd_with_exactly_the_given_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CREW_TEST_SECRET", "must-not-leak")
    result = await run_process(
        [sys.executable, "-c", "import os; print(os.getcwd()); print(sorted(os.environ))"],
        cwd=tmp_path,
        env={"ONLY_THIS": "1"},
        timeout_s=30,
    )
    cwd, names = result.stdout.splitlines()
    assert same_directory(cwd, tmp_path)
    assert "CREW_TEST_SECRET" not in names
    assert "'ONLY_THIS'" in names


async def test_stdin_is_closed(tmp_path: Path) -> None:
    result = await run_process([SH, "-c", "cat; echo done"], cwd=tmp_path, env=ENV, timeout_s=30)
    assert result.stdout == "done"


async def test_invalid_utf8_is_replaced_not_fatal(tmp_path: Path) -> None:
    result = await run_process(
        [SH, "-c", r"printf 'ok \377\n'"], cwd=tmp_path, env=ENV, timeout_s=30
    )
    assert result.stdout == "ok \ufffd"


async def test_kept_output_is_truncated_to_the_tail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tools.process, "MAX_KEPT_OUTPUT", 10)
    lines: list[str] = []
    result = await run_process(
        [SH, "-c", "for i in 1 2 3 4 5 6 7 8 9; do echo line$i; done"],
        cwd=tmp_path,
        env=ENV,
        timeout_s=30,
        on_stdout_line=lines.append,
    )
    assert len(lines) == 9  # the callback saw everything
    assert result.stdout == "ine8\nline9"  # the last 10 characters
    assert lines[-1] == "line9"


async def test_timeout_kills_the_whole_process_group(tmp_path: Path, reaper: list[int]) -> None:
    lines: list[str] = []

    def on_line(line: str) -> None:
        lines.append(line)
        if line.isdigit():
            reaper.append(int(line))

    with pytest.raises(ToolTimeoutError, match=r"ran longer than 1\.5s and was stopped"):
        await run_process(
            [SH, "-c", SPAWNS_GRANDCHILD],
            cwd=tmp_path,
            env=ENV,
            timeout_s=1.5,
            on_stdout_line=on_line,
        )
    assert lines[-1] == "started", "the child did not get to start its grandchild"
    (grandchild,) = reaper
    assert await wait_until_gone(grandchild), f"grandchild {grandchild} survived the timeout"


async def test_a_child_ignoring_sigterm_is_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reaper: list[int]
) -> None:
    monkeypatch.setattr(tools.process, "KILL_GRACE_S", 0.2)
    script = "trap '' TERM; echo $$; sleep 60 & echo $!; echo started; wait; wait; wait"
    lines: list[str] = []

    def on_line(line: str) -> None:
        lines.append(line)
        if line.isdigit():
            reaper.append(int(line))

    with pytest.raises(ToolTimeoutError):
        await run_process(
            [SH, "-c", script], cwd=tmp_path, env=ENV, timeout_s=1.5, on_stdout_line=on_line
        )
    assert lines[-1] == "started"
    child, grandchild = reaper
    assert await wait_until_gone(child), "the child trapping SIGTERM survived"
    assert await wait_until_gone(grandchild)


async def test_cancellation_kills_the_whole_process_group(
    tmp_path: Path, reaper: list[int]
) -> None:
    started = asyncio.Event()

    def on_line(line: str) -> None:
        if line.isdigit():
            reaper.append(int(line))
        if line == "started":
            started.set()

    task = asyncio.create_task(
        run_process(
            [SH, "-c", "echo $$; " + SPAWNS_GRANDCHILD],
            cwd=tmp_path,
            env=ENV,
            timeout_s=120,
            on_stdout_line=on_line,
        )
    )
    await asyncio.wait_for(started.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    child, grandchild = reaper
    assert await wait_until_gone(child), f"child {child} survived the cancellation"
    assert await wait_until_gone(grandchild), f"grandchild {grandchild} survived"


async def test_missing_program(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-terraform")
    with pytest.raises(ToolNotFoundError, match=f"program not found: {missing}") as info:
        await run_process([missing, "version"], cwd=tmp_path, env=ENV, timeout_s=30)
    assert isinstance(info.value.__cause__, FileNotFoundError)


async def test_program_that_is_not_executable(tmp_path: Path) -> None:
    script = tmp_path / "terraform"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    with pytest.raises(ToolNotFoundError, match="not executable"):
        await run_process([str(script)], cwd=tmp_path, env=ENV, timeout_s=30)


async def test_file_backed_output_is_tailed_line_by_line(tmp_path: Path) -> None:
    seen: list[str] = []
    output = tmp_path / "logs" / "apply.stdout"
    output.parent.mkdir()
    result = await run_process(
        [SH, "-c", "echo one; sleep 0.2; echo two; echo oops >&2; printf last; exit 3"],
        cwd=tmp_path,
        env=ENV,
        timeout_s=30,
        on_stdout_line=seen.append,
        output_file=output,
    )
    assert result.returncode == 3
    assert seen == ["one", "two", "last"]
    assert result.stdout == "one\ntwo\nlast"
    assert result.stderr == "oops"
    # The raw output stays beside the step log for a human.
    assert output.read_text() == "one\ntwo\nlast"
    assert output.with_suffix(".stderr").read_text() == "oops\n"


async def test_file_backed_timeout_still_kills_the_group(tmp_path: Path, reaper: list[int]) -> None:
    def on_line(line: str) -> None:
        if line.isdigit():
            reaper.append(int(line))

    with pytest.raises(ToolTimeoutError):
        await run_process(
            [SH, "-c", "echo $$; " + SPAWNS_GRANDCHILD],
            cwd=tmp_path,
            env=ENV,
            timeout_s=1,
            on_stdout_line=on_line,
            output_file=tmp_path / "out",
        )
    child, grandchild = reaper
    assert await wait_until_gone(child)
    assert await wait_until_gone(grandchild)


#: A parent that runs a chatty child through run_process and prints the child's pid; the test
#: kill -9s the parent (crew crashing mid-apply) and watches whether the child finishes.
_PARENT = """
import asyncio, os, sys
from pathlib import Path
from tools.process import run_process
out = None if sys.argv[1] == "pipe" else Path(sys.argv[2]) / "child.stdout"
def on_line(line):
    print(line, flush=True)
asyncio.run(run_process(
    ["/bin/sh", "-c", "echo $$; i=0; while [ $i -lt 40 ]; do echo step $i; i=$((i+1)); "
     "sleep 0.05; done; echo finished > " + sys.argv[2] + "/marker"],
    cwd=Path(sys.argv[2]), env=dict(os.environ), timeout_s=60, on_stdout_line=on_line,
    output_file=out,
))
"""


async def _crash_parent_mid_output(tmp_path: Path, mode: str, reaper: list[int]) -> int:
    parent = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _PARENT,
        mode,
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        cwd=REPO,
    )
    assert parent.stdout is not None
    child = int((await asyncio.wait_for(parent.stdout.readline(), 30)).decode())
    reaper.append(child)
    await asyncio.wait_for(parent.stdout.readline(), 30)  # the child is mid-way
    parent.kill()
    await parent.wait()
    return child


async def test_file_backed_child_outlives_a_crashed_parent(
    tmp_path: Path, reaper: list[int]
) -> None:
    """terraform apply orphaned by kill -9 of crew must run to the end and record its state."""
    child = await _crash_parent_mid_output(tmp_path, "file", reaper)
    assert await wait_until_gone(child, attempts=400)
    assert (tmp_path / "marker").read_text() == "finished\n"
    assert "step 39" in (tmp_path / "child.stdout").read_text()


async def test_piped_child_dies_with_its_crashed_parent(tmp_path: Path, reaper: list[int]) -> None:
    """Why the file exists: with a pipe, the orphan's next write kills it (SIGPIPE)."""
    child = await _crash_parent_mid_output(tmp_path, "pipe", reaper)
    assert await wait_until_gone(child, attempts=400)
    assert not (tmp_path / "marker").exists()
