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


class DatabaseError(CrewError):
    """Postgres is unreachable or refused an operation."""


class RunNotFoundError(CrewError):
    def __init__(self, run_id: str) -> None:
        super().__init__(f"no run with id '{run_id}'")
        self.run_id = run_id


class RunConflictError(CrewError):
    """The run exists but cannot do what was asked in its current state."""

    def __init__(self, run_id: str, message: str) -> None:
        super().__init__(message)
        self.run_id = run_id
