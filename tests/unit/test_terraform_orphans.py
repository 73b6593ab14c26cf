"""TerraformRunner.wait_for_orphans: a rollback reads the state only after an apply orphaned by
a crash of crew has finished writing it.

The CI failure this guards against: crew was killed -9 during `terraform apply`, the apply ran
on (tools/process.py writes its output to a file so it can), and the resumed run's rollback
pulled the state (`terraform state pull` takes no lock) before the orphan had recorded its
buckets. The rollback destroyed nothing and the buckets stayed. These tests use a stand-in
`terraform` script: what matters here is the process, not what it does to a cloud.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from crew.errors import ToolTimeoutError
from tools.process import running_in
from tools.terraform import LOG_DIR, TerraformRunner

REPO = Path(__file__).resolve().parents[2]

#: Sleeps, then records that it finished: an apply that writes its state at the end.
FAKE_TERRAFORM = """#!/bin/sh
echo '{"@message": "apply started"}'
sleep "${FAKE_TF_SLEEP:-0}"
echo finished > "$PWD/state-written"
"""


def make_runner(
    tmp_path: Path, *, apply_timeout_s: float = 30, sleep_s: float = 2
) -> TerraformRunner:
    binary = tmp_path / "bin" / "terraform"
    binary.parent.mkdir(exist_ok=True)
    binary.write_text(FAKE_TERRAFORM)
    binary.chmod(0o755)
    return TerraformRunner(
        binary=binary,
        plugin_dir=None,
        plugin_cache_dir=tmp_path / "cache",
        cli_config_path=tmp_path / "terraform.rc",
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "FAKE_TF_SLEEP": str(sleep_s)},
        plan_timeout_s=30,
        apply_timeout_s=apply_timeout_s,
    )


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    directory = tmp_path / "ws"
    directory.mkdir()
    return directory


@pytest.fixture
async def reaper() -> AsyncIterator[list[int]]:
    pids: list[int] = []
    yield pids
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, 9)


#: crew in miniature: applies through the runner, prints the terraform pid once it is known.
_CREW = """
import asyncio, os, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from tests.unit.test_terraform_orphans import make_runner
tmp, workspace = Path(sys.argv[2]), Path(sys.argv[3])
asyncio.run(make_runner(tmp).apply(workspace, "run.tfplan", lambda line: print(line, flush=True)))
"""


async def _crash_crew_mid_apply(tmp_path: Path, workspace: Path, reaper: list[int]) -> int:
    """kill -9 a process that is applying; returns the orphaned terraform's pid."""
    crew = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _CREW,
        str(REPO),
        str(tmp_path),
        str(workspace),
        stdout=asyncio.subprocess.PIPE,
        cwd=REPO,
    )
    assert crew.stdout is not None
    assert (await asyncio.wait_for(crew.stdout.readline(), 30)).strip() == b"apply started"
    pid = int((workspace / LOG_DIR / "apply.pid").read_text())
    reaper.append(pid)
    crew.kill()
    await crew.wait()
    return pid


async def test_waits_for_an_apply_orphaned_by_a_crash(
    tmp_path: Path, workspace: Path, reaper: list[int]
) -> None:
    orphan = await _crash_crew_mid_apply(tmp_path, workspace, reaper)
    assert running_in(orphan, workspace), "the orphaned apply should outlive its parent"
    assert not (workspace / "state-written").exists()

    seen: list[str] = []
    await make_runner(tmp_path).wait_for_orphans(workspace, seen.append)

    assert (workspace / "state-written").read_text() == "finished\n"
    assert not running_in(orphan, workspace)
    assert not (workspace / LOG_DIR / "apply.pid").exists()
    assert seen == [f"waiting for terraform apply (pid {orphan}) left by a stopped worker"]


async def test_an_orphan_that_never_ends_is_an_error(
    tmp_path: Path, workspace: Path, reaper: list[int]
) -> None:
    stuck = await asyncio.create_subprocess_exec("sleep", "60", cwd=workspace)
    reaper.append(stuck.pid)
    (workspace / LOG_DIR).mkdir()
    (workspace / LOG_DIR / "destroy.pid").write_text(f"{stuck.pid}\n")

    with pytest.raises(ToolTimeoutError, match=rf"terraform destroy \(pid {stuck.pid}\)"):
        await make_runner(tmp_path, apply_timeout_s=0.3).wait_for_orphans(workspace)
    assert (workspace / LOG_DIR / "destroy.pid").exists(), "kept for the next attempt"
    stuck.kill()
    await stuck.wait()


async def test_stale_and_unreadable_pid_files_are_cleared(tmp_path: Path, workspace: Path) -> None:
    """A pid that has exited, or now belongs to a process elsewhere, is no orphan."""
    (workspace / LOG_DIR).mkdir()
    gone = await asyncio.create_subprocess_exec("true")
    await gone.wait()
    (workspace / LOG_DIR / "apply.pid").write_text(f"{gone.pid}\n")
    (workspace / LOG_DIR / "plan.pid").write_text(f"{os.getpid()}\n")  # runs, but not here
    (workspace / LOG_DIR / "init.pid").write_text("not a pid\n")

    await make_runner(tmp_path).wait_for_orphans(workspace)
    assert list((workspace / LOG_DIR).glob("*.pid")) == []


async def test_no_logs_directory_means_nothing_to_wait_for(tmp_path: Path, workspace: Path) -> None:
    await make_runner(tmp_path).wait_for_orphans(workspace)
    assert not (workspace / LOG_DIR).exists()


async def test_a_finished_step_leaves_no_pid_file(tmp_path: Path, workspace: Path) -> None:
    await make_runner(tmp_path, sleep_s=0).apply(workspace, "run.tfplan")
    assert (workspace / "state-written").exists()
    assert list((workspace / LOG_DIR).glob("*.pid")) == []


def test_running_in_checks_the_working_directory(tmp_path: Path) -> None:
    assert running_in(os.getpid(), Path.cwd())
    assert not running_in(os.getpid(), tmp_path)
    assert not running_in(2**22 + 1, Path.cwd())  # above pid_max: no such process
