"""The Forge benchmark: `python -m bench.forge [--repeat N] [--quick] [--json]`.

Measures, in one run so the ratios compare like with like (see bench/README.md, "Forge
benchmark"):
  1. render time: PlanSpec -> workspace files (`tools.workspace.write_workspace`) for a
     10-resource and a 30-resource PlanSpec, median of many repetitions;
  2. `terraform init` with the product's provider set-up (TerraformRunner pointed at the
     detected unpacked mirror: terraform links the provider into the workspace) against the
     same runner fed from a *packed* mirror (the provider zip is unpacked into every
     workspace, as a registry install does, minus the download), and that packed mirror with
     the plugin cache the product configures when it has no mirror, warm, with and without a
     dependency lock file;
  3. `terraform plan` of both PlanSpecs against moto, timed inside Forge's build;
  4. Forge's whole build (`nodes.forge.build_workspace`: render, guard, version, init,
     validate, plan, show, plan JSON) against the sum of its terraform subprocesses, timed by
     the runner's own observer hook: the orchestration overhead and its share.
Everything runs on loopback: moto on a free port, no network for terraform (the packed
variants also get an unreachable loopback proxy). Prints one table; `--json` also writes
bench/results/forge-<UTC time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import logging
import os
import platform
import shutil
import statistics
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from bench._stack import moto_server, scratch_dir
from crew.container import build_terraform_runner
from crew.settings import Settings
from fixtures.plans import c, plan_of
from nodes.forge import build_workspace
from schemas.plan import PlanSpec
from tools.backend import StateBackend
from tools.stack import StackKey
from tools.terraform import TerraformRunner, passthrough_env, plugin_cache_lines
from tools.workspace import write_workspace

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PROVIDER = Path("registry.terraform.io") / "hashicorp" / "aws"
#: Nothing listens here: any attempt by the packed-mirror variants to leave the machine fails.
NO_EGRESS = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}


def small_plan() -> PlanSpec:
    """4 components that terraform plans as 10 resources (queue + DLQ, log group with its KMS
    key, a role with exact grants, alarms on an SNS topic)."""
    return plan_of(
        [
            c("sqs_queue", "jobs"),
            c("cloudwatch_log_group", "logs"),
            c(
                "iam_role",
                "app",
                service="lambda.amazonaws.com",
                grants=[
                    {"component": "jobs", "access": "consume"},
                    {"component": "logs", "access": "write"},
                ],
            ),
            c(
                "cloudwatch_alarms",
                "alarms",
                alarms=[
                    {"component": "jobs", "kind": "queue_depth"},
                    {"component": "jobs", "kind": "dlq_not_empty"},
                ],
            ),
        ],
        goal_id="bench-forge-10",
    )


def large_plan() -> PlanSpec:
    """6 components that terraform plans as 30 resources (a 2-AZ VPC without NAT, a bucket
    with its guard rails, two queues, a log group, a role with grants)."""
    return plan_of(
        [
            c("vpc", "net", nat="none", flow_logs=False, az_count=2),
            c("s3_bucket", "files", force_destroy=True, access_logging=False),
            c("sqs_queue", "jobs"),
            c("sqs_queue", "events"),
            c("cloudwatch_log_group", "logs"),
            c(
                "iam_role",
                "app",
                service="lambda.amazonaws.com",
                grants=[
                    {"component": "files", "access": "read_write"},
                    {"component": "jobs", "access": "consume"},
                    {"component": "logs", "access": "write"},
                ],
            ),
        ],
        goal_id="bench-forge-30",
    )


@dataclass
class Row:
    label: str
    measured: str
    ratio: str = ""
    note: str = ""


@dataclass
class Results:
    meta: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)


def _say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _median(values: list[float]) -> float:
    return statistics.median(values)


# -- 1. render ------------------------------------------------------------------------------


def measure_render(plans: dict[int, PlanSpec], root: Path, repeat: int) -> dict[int, list[float]]:
    """write_workspace into a fresh directory each time; one untimed warm-up per plan.
    The sizes are interleaved so drift on the shared machine hits both alike."""
    samples: dict[int, list[float]] = {n: [] for n in plans}
    for n, plan in plans.items():
        write_workspace(plan, root / f"warm-{n}")
    for i in range(repeat):
        for n, plan in plans.items():
            target = root / f"r{n}-{i}"
            started = time.perf_counter()
            write_workspace(plan, target)
            samples[n].append((time.perf_counter() - started) * 1000)
    shutil.rmtree(root, ignore_errors=True)
    return samples


# -- 2. init --------------------------------------------------------------------------------


def pack_mirror(unpacked: Path, packed: Path) -> tuple[Path, float]:
    """The unpacked mirror's hashicorp/aws builds as a *packed* mirror: the registry's layout
    (`<host>/<ns>/<type>/terraform-provider-<type>_<version>_<os>_<arch>.zip`)."""
    started = time.perf_counter()
    zipped = None
    for build in sorted((unpacked / PROVIDER).glob("*/*_*")):
        version, target = build.parent.name, build.name
        zipped = packed / PROVIDER / f"terraform-provider-aws_{version}_{target}.zip"
        zipped.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
            for item in sorted(build.iterdir()):
                archive.write(item, item.name)
    if zipped is None:
        raise SystemExit(f"no hashicorp/aws build under {unpacked / PROVIDER}")
    return zipped, time.perf_counter() - started


class CachedMirrorRunner(TerraformRunner):
    """The product's runner with the CLI configuration it writes when there is *no* mirror
    (`plugin_cache_dir`), except that the provider comes from a local packed mirror instead
    of the registry (direct installation is excluded: nothing leaves the machine)."""

    def __init__(self, *, mirror: Path, **kwargs: Any) -> None:
        super().__init__(plugin_dir=None, **kwargs)
        self.mirror = mirror

    def _ensure_cli_config(self) -> None:
        self.cli_config_path.parent.mkdir(parents=True, exist_ok=True)
        self.plugin_cache_dir.mkdir(parents=True, exist_ok=True)
        self.cli_config_path.write_text(
            "\n".join(plugin_cache_lines(self.plugin_cache_dir)) + "\nprovider_installation {\n"
            f"  filesystem_mirror {{\n    path = {json.dumps(str(self.mirror))}\n  }}\n"
            '  direct {\n    exclude = ["registry.terraform.io/*/*"]\n  }\n'
            "}\n",
            encoding="utf-8",
        )


async def measure_init(
    settings: Settings,
    product: TerraformRunner,
    packed: Path,
    plan: PlanSpec,
    root: Path,
    repeat: int,
    results: Results,
    *,
    with_cache: bool,
) -> dict[str, list[float]]:
    """`terraform init` of a freshly rendered workspace (as every build revision is), each
    variant once per round, rounds repeated; the time is the runner's own StepResult.
    Without `with_cache` the two plugin-cache variants (and the cold fill) are left out."""
    env = {**passthrough_env(os.environ), **NO_EGRESS, "NO_PROXY": "127.0.0.1,localhost"}
    common: dict[str, Any] = {
        "binary": settings.terraform_bin,
        "env": env,
        "plan_timeout_s": settings.plan_timeout_s,
        "apply_timeout_s": settings.apply_timeout_s,
    }
    unpack = TerraformRunner(
        plugin_dir=packed,
        plugin_cache_dir=root / "unused-cache",
        cli_config_path=root / "packed.tfrc",
        **common,
    )
    cached = CachedMirrorRunner(
        mirror=packed,
        plugin_cache_dir=root / "plugin-cache",
        cli_config_path=root / "cached.tfrc",
        **common,
    )
    backend = StateBackend.local(root / "state").init_config(StackKey.of(plan))
    lock_file: list[str] = []

    async def init(runner: TerraformRunner, name: str, *, with_lock: bool = False) -> float:
        workspace = root / name
        shutil.rmtree(workspace, ignore_errors=True)
        write_workspace(plan, workspace)
        if with_lock:
            (workspace / ".terraform.lock.hcl").write_text(lock_file[0], encoding="utf-8")
        step = await runner.init(workspace, backend_config=backend)
        if not step.ok:
            raise SystemExit(f"terraform init ({name}) failed: {step.diagnostics}")
        if not lock_file:
            lock_file.append((workspace / ".terraform.lock.hcl").read_text(encoding="utf-8"))
        shutil.rmtree(workspace / ".terraform", ignore_errors=True)  # 700 MB when unpacked
        return step.duration_s

    if with_cache:
        _say("terraform init: filling the plugin cache (cold) from the packed mirror")
        results.figures["init_cache_cold_s"] = await init(cached, "cold")
    samples: dict[str, list[float]] = {k: [] for k in ("linked", "unpacked", "cached", "locked")}
    for i in range(repeat):
        _say(f"terraform init round {i + 1}/{repeat}")
        samples["linked"].append(await init(product, "linked"))
        samples["unpacked"].append(await init(unpack, "unpacked"))
        if with_cache:
            samples["cached"].append(await init(cached, "cached"))
            samples["locked"].append(await init(cached, "locked", with_lock=True))
    return samples


# -- 3 + 4. Forge's build -------------------------------------------------------------------


@dataclass
class Build:
    wall_s: float
    steps: list[tuple[str, float]]
    """(command, seconds) of every terraform subprocess, from the runner's observer."""
    inproc: dict[str, float]
    """Seconds spent in the in-process parts timed by `timing` (render, guard)."""
    created: int

    @property
    def terraform_s(self) -> float:
        return sum(seconds for _, seconds in self.steps)

    def step(self, name: str) -> float:
        return sum(seconds for step, seconds in self.steps if step == name)


@contextlib.contextmanager
def timing(module: ModuleType, name: str, sink: dict[str, float]) -> Iterator[None]:
    """Wrap the function `module.name` for the duration: its calls add their time to
    `sink[name]` and count in `sink[name + "_calls"]` (nothing else changes)."""
    original = getattr(module, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            sink[name] = sink.get(name, 0.0) + time.perf_counter() - started
            sink[f"{name}_calls"] = sink.get(f"{name}_calls", 0) + 1

    setattr(module, name, timed)
    try:
        yield
    finally:
        setattr(module, name, original)


async def measure_builds(
    settings: Settings, plans: dict[int, PlanSpec], root: Path, repeat: int
) -> dict[int, list[Build]]:
    """`build_workspace` into a fresh revision directory (what the `build` node runs under
    its stack lock), sizes interleaved. The runner is the product's (container wiring, the
    detected mirror); its observer records every terraform command's duration. The render
    (`write_workspace` as Forge's build calls it) and the pre-plan guard (`check_workspace`
    as the runner calls it) are timed in place."""
    steps: list[tuple[str, float]] = []
    inproc: dict[str, float] = {}

    def observe(command: str, seconds: float, ok: bool) -> None:
        steps.append((command, seconds))

    runner = build_terraform_runner(settings, dict(os.environ))
    runner.observer = observe
    backend = StateBackend.local(root / "state")
    builds: dict[int, list[Build]] = {n: [] for n in plans}
    forge_build = importlib.import_module("nodes.forge.build")  # the module, not the node
    terraform = importlib.import_module("tools.terraform")
    with (
        timing(forge_build, "write_workspace", inproc),
        timing(terraform, "check_workspace", inproc),
    ):
        for i in range(repeat):
            for n, plan in plans.items():
                _say(f"build {i + 1}/{repeat}, {n}-resource PlanSpec")
                steps.clear()
                inproc.clear()
                workspace = root / f"b{n}-{i}" / "r1"
                started = time.perf_counter()
                status = await build_workspace(plan, workspace, runner, backend=backend)
                wall = time.perf_counter() - started
                if not status.ok:
                    raise SystemExit(f"build of the {n}-resource plan failed: {status.errors}")
                builds[n].append(Build(wall, list(steps), dict(inproc), status.plan.create))
                shutil.rmtree(workspace.parent, ignore_errors=True)
    return builds


# -- the run --------------------------------------------------------------------------------


async def _run(args: argparse.Namespace, tmp: Path, results: Results) -> None:
    settings = Settings(data_dir=tmp / "data")
    product = build_terraform_runner(settings, dict(os.environ))
    product.check()
    if settings.tf_plugin_dir is None:
        raise SystemExit("no provider mirror detected: set CREW_TF_PLUGIN_DIR (see README)")
    results.meta["terraform"] = await product.version()
    results.meta["plugin_dir"] = str(settings.tf_plugin_dir)
    plans = {10: small_plan(), 30: large_plan()}
    rows = results.rows

    # 1. render
    render = measure_render(plans, tmp / "render", args.render_repeat)
    results.figures["render_ms"] = render
    for n in plans:
        value, ratio = _median(render[n]), _median(render[n]) / _median(render[10])
        files = len(write_workspace(plans[n], tmp / "files" / str(n)))
        rows.append(
            Row(
                f"render, {n}-resource PlanSpec",
                f"{value:.2f} ms",
                f"{ratio:.2f}x",
                f"write_workspace: {len(plans[n].components)} components -> {files} .tf "
                f"files; median of {args.render_repeat}",
            )
        )

    # 3 + 4 before 2: they need moto, and the provider binary is then warm in the page cache.
    builds = await measure_builds(settings, plans, tmp / "builds", args.repeat)

    # 2. init
    _say("packing the provider mirror (zip, deflate level 1)")
    zipped, pack_s = pack_mirror(settings.tf_plugin_dir, tmp / "packed")
    size_mb = zipped.stat().st_size / 1e6
    results.meta["packed_zip"] = {"bytes": zipped.stat().st_size, "seconds": pack_s}
    init = await measure_init(
        settings,
        product,
        tmp / "packed",
        plans[10],
        tmp / "init",
        args.repeat,
        results,
        with_cache=not args.quick,
    )
    results.figures["init_s"] = init
    linked = _median(init["linked"])
    labels = {
        "linked": (
            "terraform init, product: unpacked mirror",
            f"TerraformRunner + {settings.tf_plugin_dir}: provider symlinked",
        ),
        "unpacked": (
            "terraform init, packed mirror (without)",
            f"same runner, {size_mb:.0f} MB zip unpacked into .terraform every time",
        ),
        "cached": (
            "terraform init, packed + plugin cache, warm",
            "product's no-mirror config (plugin_cache_dir), no lock file as Forge renders",
        ),
        "locked": (
            "terraform init, packed + plugin cache, + lock",
            "same, with a .terraform.lock.hcl in the workspace: linked from the cache",
        ),
    }
    for key, (label, note) in labels.items():
        if not init[key]:
            rows.append(Row(label, "skipped", "", "left out by --quick"))
            continue
        value = _median(init[key])
        rows.append(
            Row(
                label,
                f"{value:.2f} s",
                f"{value / linked:.2f}x",
                f"{note}; median of {args.repeat}",
            )
        )

    # 3. plan: the plan step inside each build
    plan_s = {n: _median([b.step("plan") for b in builds[n]]) for n in plans}
    for n in plans:
        rows.append(
            Row(
                f"terraform plan, {n}-resource PlanSpec",
                f"{plan_s[n]:.2f} s",
                f"{plan_s[n] / plan_s[10]:.2f}x",
                f"against moto, {builds[n][0].created} to add; the builds' plan step, "
                f"median of {args.repeat}",
            )
        )

    # 4. orchestration overhead
    results.figures["builds"] = {
        n: [
            {
                "wall_s": b.wall_s,
                "terraform_s": b.terraform_s,
                "in_process_s": b.inproc,
                "created": b.created,
                "steps": b.steps,
            }
            for b in bs
        ]
        for n, bs in builds.items()
    }
    for n in plans:
        bs = builds[n]
        wall = _median([b.wall_s for b in bs])
        terraform = _median([b.terraform_s for b in bs])
        overhead = _median([b.wall_s - b.terraform_s for b in bs])
        share = _median([(b.wall_s - b.terraform_s) / b.terraform_s for b in bs])
        render_ms = _median([b.inproc.get("write_workspace", 0.0) for b in bs]) * 1000
        guard_ms = _median([b.inproc.get("check_workspace", 0.0) for b in bs]) * 1000
        guard_calls = int(bs[0].inproc.get("check_workspace_calls", 0))
        commands = " + ".join(
            f"{name} {_median([b.step(name) for b in bs]):.2f}" for name, _ in bs[0].steps
        )
        rows.append(
            Row(
                f"Forge build wall, {n}-resource PlanSpec",
                f"{wall:.2f} s",
                "",
                f"build_workspace, median of {args.repeat}",
            )
        )
        rows.append(
            Row(
                f"terraform subprocesses, {n}-resource",
                f"{terraform:.2f} s",
                f"{terraform / wall:.1%}",
                f"of wall: {commands} s (the runner's observer)",
            )
        )
        rows.append(
            Row(
                f"orchestration overhead, {n}-resource",
                f"{overhead * 1000:.0f} ms",
                f"{share:.2%}",
                f"of terraform's time; wall - terraform; in it: render {render_ms:.1f} ms, "
                f"pre-plan guard {guard_ms:.0f} ms ({guard_calls} calls)",
            )
        )


def render_table(results: Results) -> str:
    meta = results.meta
    header = (
        f"forge benchmark: {meta['cpus']} CPUs, Python {meta['python']}, terraform "
        f"{meta.get('terraform', '?')}, mirror {meta.get('plugin_dir', '?')}, "
        f"moto on loopback, {meta['repeat']} rounds"
    )
    rows = results.rows
    width = max(len(r.label) for r in rows)
    mwidth = max(len(r.measured) for r in rows)
    rwidth = max(5, *(len(r.ratio) for r in rows))
    lines = [header, "", f"{'what':<{width}}  {'measured':<{mwidth}}  {'ratio':<{rwidth}}  notes"]
    lines.append(f"{'-' * width}  {'-' * mwidth}  {'-' * rwidth}  -----")
    lines += [
        f"{r.label:<{width}}  {r.measured:<{mwidth}}  {r.ratio:<{rwidth}}  {r.note}" for r in rows
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.forge",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds of init variants and of builds (3)"
    )
    parser.add_argument(
        "--render-repeat", type=int, default=50, help="renders per PlanSpec size (50)"
    )
    parser.add_argument("--quick", action="store_true", help="1 round, 10 renders: a smoke check")
    parser.add_argument("--json", action="store_true", help="also write bench/results/*.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat, args.render_repeat = 1, 10
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    results = Results(
        meta={
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "repeat": args.repeat,
            "render_repeat": args.render_repeat,
            "at": datetime.now(UTC).isoformat(),
        }
    )
    started = time.monotonic()
    with scratch_dir() as tmp, moto_server():
        asyncio.run(_run(args, tmp, results))
    results.meta["seconds"] = time.monotonic() - started
    print(render_table(results))
    print(f"\n(total {results.meta['seconds']:.0f} s)")
    if args.json:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        path = RESULTS_DIR / f"forge-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
        path.write_text(json.dumps({"meta": results.meta, "figures": results.figures}, indent=2))
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
