"""How every command runs: settings from the environment, one table from the project's errors
to exit codes, and never a traceback for a user's mistake.

Exit codes: 0 done, 1 the crew failed (CrewError), 2 bad input or unknown id, 4 a conflict
(the run or stack moved on), 5 the gate refused, 130 interrupted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError

from cli.render import err
from crew.settings import Settings
from schemas.errors import (
    AcknowledgementRequiredError,
    AdvisoryNotFoundError,
    CrewError,
    GateRefusedError,
    RunConflictError,
    RunNotFoundError,
    ShieldBusyError,
    StackConflictError,
    StackNotFoundError,
    StalePlanError,
)
from schemas.inputs import InputError, problems_from_errors

if TYPE_CHECKING:
    from crew.container import Services

T = TypeVar("T")


def fail(code: int, message: str) -> NoReturn:
    err.print(f"[red]error:[/red] {message}", soft_wrap=True)
    raise typer.Exit(code)


def load_settings(**overrides: Any) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = problems_from_errors(exc.errors(include_url=False))
        details = "; ".join(
            f"CREW_{p.field.upper()}: {p.problem}" if p.field else p.problem for p in problems
        )
        fail(2, f"bad settings: {details}")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command body; map the project's errors to exit codes, never a traceback."""
    try:
        return asyncio.run(coro)
    except InputError as exc:
        for problem in exc.problems:
            err.print(f"[red]{problem.field or '(input)'}[/red]: {problem.problem}")
            err.print(f"  fix: {problem.fix}")
        raise typer.Exit(2) from exc
    except (RunNotFoundError, StackNotFoundError, AdvisoryNotFoundError) as exc:
        fail(2, str(exc))
    except (
        RunConflictError,
        StalePlanError,
        StackConflictError,
        ShieldBusyError,
        AcknowledgementRequiredError,
    ) as exc:
        fail(4, str(exc))
    except GateRefusedError as exc:
        fail(5, str(exc))
    except CrewError as exc:
        fail(1, str(exc))
    except KeyboardInterrupt:
        fail(130, "interrupted; the run continues from its last checkpoint next time")


async def with_services(settings: Settings, body: Callable[[Services], Awaitable[T]]) -> T:
    """Open the crew's services (Postgres, the graph) around one command body. The container
    is imported here, not at start-up: `--help` and input errors answer without it."""
    from crew.container import open_services

    async with open_services(settings) as services:
        return await body(services)
