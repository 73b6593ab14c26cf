"""`crew llm serve`: a local OpenAI-compatible LLM on loopback, for Atlas without a cloud key.

It runs what `scripts/local-llm` installed (llama.cpp's llama-server and a small GGUF model:
Qwen2.5-Coder 0.5B, or 1.5B with `scripts/local-llm --model 1.5b`) in the foreground until
Ctrl-C. Which model: `--model`, else CREW_LLM_MODEL when it names an installed local model
(so the settings that point Atlas at the server also choose what it serves), else the 0.5B.
Any other OpenAI-compatible server works the same way:
Atlas only needs CREW_LLM_BASE_URL and CREW_LLM_MODEL (README, "Atlas on a local model").
"""

from __future__ import annotations

import signal
import sys
import time
from typing import Annotated

import typer

from cli.render import err, out
from schemas.errors import ToolError, ToolNotFoundError
from tools.llama_server import CONTEXT, THREADS, installed_models, local_model, running_server

llm_app = typer.Typer(help="A local LLM for the LLM planner.", no_args_is_help=True)


@llm_app.command("serve")
def serve(
    port: Annotated[int, typer.Option(min=1024, max=65535, help="Loopback port.")] = 8090,
    threads: Annotated[int, typer.Option(min=1, max=256, help="CPU threads.")] = THREADS,
    context: Annotated[int, typer.Option(min=512, max=131072, help="Context tokens.")] = CONTEXT,
    model_alias: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Installed model to serve: qwen2.5-coder-0.5b or qwen2.5-coder-1.5b.",
            show_default="CREW_LLM_MODEL when it names an installed model, else the 0.5B",
        ),
    ] = None,
) -> None:
    """Serve the local model on 127.0.0.1:PORT until interrupted; prints the settings."""
    from cli.runner import load_settings

    if model_alias is None:
        configured = load_settings().llm_model
        model_alias = configured if configured in installed_models() else None
    try:
        model = local_model(alias=model_alias)
    except ToolNotFoundError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    # SIGTERM (a service manager, `kill`) stops the server too: SystemExit unwinds the
    # context manager below, which kills llama-server's process group.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    out.print(f"starting llama-server with {model.model.name} on 127.0.0.1:{port} ...")
    try:
        with running_server(model, port=port, threads=threads, context=context) as url:
            out.print(
                f"ready. Point Atlas at it:\n  CREW_PLANNER=llm CREW_LLM_MODEL={model.alias} "
                f"CREW_LLM_BASE_URL={url}\n(Ctrl-C stops it)",
                soft_wrap=True,
            )
            while True:
                time.sleep(3600)
    except ToolError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    except KeyboardInterrupt:
        out.print("stopped")
