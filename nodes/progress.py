"""Progress from inside a node, streamed to whoever drives the graph (CLI spinner, logs, the
run record).

Uses LangGraph's custom stream: a line of text is `{"node", "run_id", "message"}`; a terraform
command's resource progress is `{"node", "run_id", "resources": StepProgress}`, which the worker
records on the run (crew/progress.py). Outside a graph run (unit tests calling a node directly)
the lines only go to the log and resource progress goes nowhere.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from langgraph.config import get_stream_writer

from schemas.progress import StepProgress
from tools.terraform_progress import ResourceProgress

logger = logging.getLogger(__name__)


def _writer() -> Callable[[object], None] | None:
    try:
        return get_stream_writer()
    except RuntimeError:
        return None


def progress_reporter(node: str, run_id: str) -> Callable[[str], None]:
    writer = _writer()

    def report(message: str) -> None:
        logger.debug("%s: %s", node, message, extra={"run_id": run_id, "node": node})
        if writer is not None:
            writer({"node": node, "run_id": run_id, "message": message})

    return report


def resource_reporter(node: str, run_id: str) -> ResourceProgress:
    """Where a terraform command run by `node` reports its resource-by-resource progress."""
    writer = _writer()

    def report(progress: StepProgress) -> None:
        if writer is not None:
            writer({"node": node, "run_id": run_id, "resources": progress})

    return ResourceProgress(step=node, report=report)
