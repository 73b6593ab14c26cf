"""Progress lines from inside a node, streamed to whoever drives the graph (CLI spinner, logs).

Uses LangGraph's custom stream; outside a graph run (unit tests calling a node directly) the
lines only go to the log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from langgraph.config import get_stream_writer

logger = logging.getLogger(__name__)


def progress_reporter(node: str, run_id: str) -> Callable[[str], None]:
    try:
        writer = get_stream_writer()
    except RuntimeError:
        writer = None

    def report(message: str) -> None:
        logger.debug("%s: %s", node, message, extra={"run_id": run_id, "node": node})
        if writer is not None:
            writer({"node": node, "run_id": run_id, "message": message})

    return report
