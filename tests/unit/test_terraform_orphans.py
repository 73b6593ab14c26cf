"""TerraformRunner.wait_for_orphans: a rollback reads the state only after an apply orphaned by
a crash of crew has finished writing it.

The CI failure this guards against: crew was killed -9 during `terraform apply`, the apply ran
on (tools/process.py writes its output to a file so it can), and the resumed run's rollback
pulled the state (`terraform state pull` takes no lock) before the orphan had recorded its
buckets. The rollback destroyed nothing and the buckets stayed. These tests use a stand-in
`terraform` script (its command name is its file name, as for the real binary): what matters
here is the process, not what it does to a cloud.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from schemas.errors import ToolTimeoutError
from tools.process import processes_in, running_in
from tools.terraform import TerraformRunner

REPO = Path(__file__).resolve().parents[2]

#: Sleeps, then records that it finished: an apply that writes its state at the end. Python,
#: not sh: it starts no child processes, so the only process it makes is "terraform".
FAKE_TERRAFORM = f"""#!{sys.executable}
import os, time
print('{{"@message": "apply started"}}', flush=True)
time.sleep(float(os.environ.get("FAKE_TF_SLEEP", "0")))
with open("state-written", "w") as state:
    state.write("finished\\n")
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
async def children() -> AsyncIterator[list[asyncio.subprocess.Process]]:
    """Processes a test started itself: killed (with their process group, where they lead
    one) and reaped afterwards."""
    procs: list[asyncio.subprocess.Process] = []
    yield procs
    for proc in procs:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, 9)
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


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
    crew.kill()
    await crew.wait()
    [orphan] = processes_in(workspace, lambda name: name == "terraform")
    reaper.append(orphan)
    return orphan


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
    assert seen == [f"waiting for terraform left running by a stopped worker (pids [{orphan}])"]


async def _start_fake_terraform(
    runner: TerraformRunner, cwd: Path, sleep_s: int
) -> asyncio.subprocess.Process:
    """A terraform started straight from here, standing in for one whose parent is gone."""
    assert runner.binary is not None
    return await asyncio.create_subprocess_exec(
        str(runner.binary),
        cwd=cwd,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "FAKE_TF_SLEEP": str(sleep_s)},
        stdout=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )


async def test_an_orphan_that_never_ends_is_an_error(
    tmp_path: Path, workspace: Path, children: list[asyncio.subprocess.Process]
) -> None:
    runner = make_runner(tmp_path, apply_timeout_s=0.3)
    stuck = await _start_fake_terraform(runner, workspace, 60)
    children.append(stuck)

    with pytest.raises(ToolTimeoutError, match=rf"pids \[{stuck.pid}\]\) still runs in"):
        await runner.wait_for_orphans(workspace)


async def test_only_terraform_in_this_workspace_counts(
    tmp_path: Path, workspace: Path, children: list[asyncio.subprocess.Process]
) -> None:
    """A shell an operator left in the workspace, or terraform in another one, is not waited
    for (the waits would end only at the apply timeout)."""
    runner = make_runner(tmp_path, apply_timeout_s=0.3)
    children.append(await asyncio.create_subprocess_exec("sleep", "60", cwd=workspace))
    elsewhere = tmp_path / "other-ws"
    elsewhere.mkdir()
    children.append(await _start_fake_terraform(runner, elsewhere, 60))

    await runner.wait_for_orphans(workspace)  # returns at once: no ToolTimeoutError


async def test_nothing_running_means_nothing_to_wait_for(tmp_path: Path, workspace: Path) -> None:
    await make_runner(tmp_path, apply_timeout_s=0.3).wait_for_orphans(workspace)


def test_running_in_checks_the_working_directory(tmp_path: Path) -> None:
    assert running_in(os.getpid(), Path.cwd())
    assert not running_in(os.getpid(), tmp_path)
    assert not running_in(2**22 + 1, Path.cwd())  # above pid_max: no such process


def test_processes_in_finds_this_process_by_directory_and_name(tmp_path: Path) -> None:
    me = Path(f"/proc/{os.getpid()}/comm").read_text().strip()
    assert os.getpid() in processes_in(Path.cwd(), lambda name: name == me)
    assert os.getpid() not in processes_in(Path.cwd(), lambda name: False)
    assert processes_in(tmp_path, lambda name: True) == []
