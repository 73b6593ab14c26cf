"""Which memory Atlas gets (CREW_MEMORY) and which embedder fills it (CREW_EMBEDDER).

Called by crew/container.py once the database is migrated. `auto` (the default) uses the
vector memory when the database has pgvector (the embedded PostgreSQL 18 does) and otherwise
falls back to the audit-log memory with one warning line: a team's own Postgres without the
extension still starts and works. `vector` makes a missing pgvector a start-up error.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from crew.settings import Settings
from memory.db import Pool
from memory.plans import NoPlanMemory, PlanMemory, PostgresPlanMemory
from schemas.errors import ConfigurationError

if TYPE_CHECKING:  # numpy and onnxruntime load only when the vector memory is used
    from tools.embeddings import Embedder

logger = logging.getLogger(__name__)


def build_embedder(settings: Settings) -> Embedder:
    """The embedder CREW_EMBEDDER names; models load on first use, not here."""
    from tools.embeddings import MiniLmEmbedder, OpenAiEmbedder

    if settings.embedder == "minilm":
        return MiniLmEmbedder()
    if settings.embeddings_model is None:  # the settings validator refuses this already
        raise ConfigurationError("CREW_EMBEDDER=openai needs CREW_EMBEDDINGS_MODEL")
    return OpenAiEmbedder(
        model=settings.embeddings_model,
        base_url=settings.embeddings_base_url,
        api_key=settings.embeddings_api_key or settings.openai_api_key,
        timeout_s=settings.llm_timeout_s,
        max_retries=settings.llm_max_retries,
    )


async def open_plan_memory(settings: Settings, pool: Pool, database: str) -> PlanMemory:
    """The plan memory for CREW_MEMORY on this database (its schema is set up here)."""
    if settings.memory == "off":
        return NoPlanMemory()
    if settings.memory == "audit":
        _runbooks_ignored(settings, "CREW_MEMORY=audit")
        return PostgresPlanMemory(pool)
    from memory.vector_memory import VectorPlanMemory
    from memory.vectors import VectorStore, enable_vectors

    embedder = build_embedder(settings)  # refuses bad embedder settings before anything else
    support = await enable_vectors(pool)
    if not support.enabled:
        if settings.memory == "vector":
            raise ConfigurationError(
                f"CREW_MEMORY=vector needs pgvector, but {support.reason} ({database}); "
                "install pgvector there, or set CREW_MEMORY=audit"
            )
        logger.warning(
            "vector memory off: %s (%s); Atlas recalls past plans from the audit log instead "
            "(CREW_MEMORY=audit silences this)",
            support.reason,
            database,
        )
        _runbooks_ignored(settings, "without pgvector")
        return PostgresPlanMemory(pool)
    store = VectorStore(pool, support)
    return VectorPlanMemory(store, embedder, runbooks_dir=settings.runbooks_dir)


def _runbooks_ignored(settings: Settings, why: str) -> None:
    if settings.runbooks_dir is not None:
        logger.warning("CREW_RUNBOOKS_DIR is ignored %s: runbooks need the vector memory", why)
