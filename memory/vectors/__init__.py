"""Atlas's vector memory on pgvector: schema and spaces (`schema`), the items that go in and
come out (`items`), and the store with all its SQL (`store`)."""

from memory.vectors.items import FinishedRun, MemoryFilter, MemoryHit, MemoryItem, SpaceStats
from memory.vectors.schema import (
    ITEM_TYPES,
    MAX_HALFVEC_DIMS,
    MAX_VECTOR_DIMS,
    VECTOR_MIGRATIONS,
    EmbeddingSpace,
    ItemType,
    VectorSupport,
    enable_vectors,
)
from memory.vectors.store import EF_SEARCH, VectorStore

__all__ = [
    "EF_SEARCH",
    "ITEM_TYPES",
    "MAX_HALFVEC_DIMS",
    "MAX_VECTOR_DIMS",
    "VECTOR_MIGRATIONS",
    "EmbeddingSpace",
    "FinishedRun",
    "ItemType",
    "MemoryFilter",
    "MemoryHit",
    "MemoryItem",
    "SpaceStats",
    "VectorStore",
    "VectorSupport",
    "enable_vectors",
]
