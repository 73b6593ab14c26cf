"""The project's small exception hierarchy.

Expected failures (a FAIL verdict, a rejected run, a blocked design, a plan with errors) are
data that the graph routes on. Exceptions are for errors: a missing binary, a timeout,
unparsable output, bad input at the edge. Each is raised `from` the original.
"""

from __future__ import annotations


class CrewError(Exception):
    """Base of every error infra-crew raises on purpose."""


class ConfigurationError(CrewError):
    """Settings are missing or contradictory; the message says which variable to set."""


class ToolNotFoundError(ConfigurationError):
    """An external program (terraform, a provider mirror) is not where settings say."""


class ToolError(CrewError):
    """An external program failed in a way that is not a domain result."""


class ToolTimeoutError(ToolError):
    """An external program ran past its time limit and was killed."""


class LlmError(ToolError):
    """The LLM endpoint failed (HTTP error, refused request, unreachable).

    Not a design outcome: the goal is fine, the planner could not be asked. The design node
    lets it propagate so the worker retries the run with back-off (see nodes/atlas.py).
    """


class LlmTimeoutError(LlmError, ToolTimeoutError):
    """The LLM endpoint did not answer within CREW_LLM_TIMEOUT_S."""


class EmbeddingError(ToolError):
    """The embedding model could not be run or its endpoint failed (HTTP error, timeout,
    unreachable). Vector memory is context, not a requirement: Atlas designs without recalled
    plans when this happens during a design (nodes/atlas.py); `crew memory` exits 1."""


class SlackError(ToolError):
    """Slack's Web API (or a response_url) refused or did not answer; `retryable` says whether
    trying again later can help (rate limit, server error, network) or not (bad token, unknown
    channel)."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class UnauthenticatedError(CrewError):
    """No bearer token, or one no configured token matches (HTTP 401)."""


class ForbiddenError(CrewError):
    """The caller is known but their role does not allow this (HTTP 403)."""


class GateRefusedError(ForbiddenError):
    """Someone who may not decide at the gate tried to (logged in the gate log)."""

    def __init__(self, actor: str, message: str) -> None:
        super().__init__(message)
        self.actor = actor


class StalePlanError(CrewError):
    """An approval for a plan that is no longer the one validated (newer revision, or the plan
    file changed since): approving it would apply something nobody reviewed."""

    def __init__(self, run_id: str, message: str) -> None:
        super().__init__(message)
        self.run_id = run_id


class AcknowledgementRequiredError(CrewError):
    """An approval of a plan that replaces or deletes a stateful resource (a database, a
    table, a bucket, a volume) without the explicit acknowledgement that data may be lost."""

    def __init__(self, run_id: str, message: str) -> None:
        super().__init__(message)
        self.run_id = run_id


class BusError(CrewError):
    """The event bus (Redis, NATS, or Postgres as a bus) is unreachable or refused an
    operation. Never fatal to a run: events wait in the Postgres outbox and are relayed when
    the bus is back; workers fall back to claiming runs from Postgres meanwhile."""


class DatabaseError(CrewError):
    """Postgres is unreachable or refused an operation."""


class RunNotFoundError(CrewError):
    def __init__(self, run_id: str) -> None:
        super().__init__(f"no run with id '{run_id}'")
        self.run_id = run_id


class StackNotFoundError(CrewError):
    def __init__(self, stack_id: str) -> None:
        super().__init__(f"no stack with id '{stack_id}' (crew stacks lists them)")
        self.stack_id = stack_id


class StackConflictError(CrewError):
    """The stack cannot do what was asked now (nothing deployed to check, or locked by a run)."""

    def __init__(self, stack_id: str, message: str) -> None:
        super().__init__(message)
        self.stack_id = stack_id


class RunConflictError(CrewError):
    """The run exists but cannot do what was asked in its current state."""

    def __init__(self, run_id: str, message: str) -> None:
        super().__init__(message)
        self.run_id = run_id


class FeedError(ToolError):
    """An advisory feed could not be fetched or read (unreachable, an HTTP error, a redirect to
    a refused scheme, too large, not RSS/Atom/NVD JSON). Never fatal: the feed is reported
    (metric, log, console) and tried again after a back-off; the other feeds go on."""


class AdvisoryNotFoundError(CrewError):
    """No recorded match of this advisory for this stack (HTTP 404)."""

    def __init__(self, stack_id: str, advisory_id: str) -> None:
        super().__init__(
            f"no advisory '{advisory_id}' recorded for stack '{stack_id}' (crew shield list "
            "shows them)"
        )
        self.stack_id = stack_id
        self.advisory_id = advisory_id


class ShieldBusyError(CrewError):
    """Another advisory poll is running (HTTP 409, CLI exit 4): one at a time, across
    processes."""
