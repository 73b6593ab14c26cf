"""Vector memory benchmark: `python -m bench.memory [--fill N] [--no-db] [--json]`.

On the labelled set tests/fixtures/memory/recall_set.json (41 past runs and runbook sections,
27 queries worded differently from what they should find, relevant ids judged by hand) it
prints:
  1. retrieval quality: recall@3 and MRR of the default embedder (all-MiniLM-L6-v2, int8
     ONNX, exact cosine in memory) against a lexical baseline (BM25 on the same texts);
  2. embedding cost: ms per text, one at a time (what a design's query costs) and in batches
     of 32 (what indexing costs);
  3. the pgvector path, unless --no-db: the set stored through the product's VectorStore in
     an embedded PostgreSQL 18 (or CREW_DATABASE_URL's server, which needs pgvector), padded
     with --fill random unit vectors (default 5000) so that Postgres prefers the HNSW index,
     then every query through `VectorStore.search` (filtered by type: the shape of Atlas's
     queries): recall@3 again (the approximate index must not lose what exact search finds),
     query latency p50/p95, and the scan EXPLAIN reports.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import re
import statistics
import time
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from fixtures.retrieval import (
    K,
    LabelledSet,
    bm25_rankings,
    dense_rankings,
    load_set,
    score,
)
from tools.embeddings import MiniLmEmbedder


def embedding_cost(embedder: MiniLmEmbedder, texts: list[str], repeat: int) -> dict[str, float]:
    embedder.encode(texts[:2])  # load the model: not part of the per-text cost
    single = []
    for _ in range(repeat):
        for text in texts:
            started = time.perf_counter()
            embedder.encode([text])
            single.append((time.perf_counter() - started) * 1000)
    started = time.perf_counter()
    for _ in range(repeat):
        embedder.encode(texts)
    batch = (time.perf_counter() - started) * 1000 / (repeat * len(texts))
    return {
        "single_p50_ms": statistics.median(single),
        "single_p95_ms": float(np.percentile(single, 95)),
        "batch_ms_per_text": batch,
    }


async def pgvector_path(
    labelled: LabelledSet, doc_vectors: Any, query_vectors: Any, fill: int, repeat: int
) -> dict[str, Any]:
    """The set through the product's VectorStore in a scratch database."""
    from bench._stack import postgres, scratch_dir
    from memory.db import open_pool
    from memory.migrate import migrate
    from memory.vectors import (
        EmbeddingSpace,
        MemoryFilter,
        MemoryItem,
        VectorStore,
        enable_vectors,
    )

    with scratch_dir() as data, postgres(data) as pg:
        pool = await open_pool(pg.create_database("crew_bench_memory"))
        try:
            await migrate(pool)
            support = await enable_vectors(pool)
            if not support.enabled:
                raise SystemExit(f"pgvector is not available on {pg.label}: {support.reason}")
            store = VectorStore(pool, support)
            space = EmbeddingSpace.of("bench/minilm", int(np.asarray(doc_vectors).shape[1]))
            await store.ensure_space(space)
            items = [
                MemoryItem(
                    key=doc_id,
                    item_type="runbook" if kind == "runbook" else "plan",
                    ref=doc_id,
                    content=text,
                    content_hash="-",
                    embedding=[float(x) for x in vector],
                    cloud="aws",
                    region="eu-west-1",
                )
                for doc_id, kind, text, vector in zip(
                    labelled.doc_ids,
                    labelled.doc_types,
                    labelled.doc_texts,
                    doc_vectors,
                    strict=True,
                )
            ]
            await store.upsert(space, items)
            started = time.perf_counter()
            await _fill(pool, space.key, space.dims, fill)
            fill_s = time.perf_counter() - started
            where = MemoryFilter(cloud="aws", region="eu-west-1")
            rankings, latencies = [], []
            for vector in query_vectors:
                q = [float(x) for x in vector]
                for _ in range(repeat):
                    started = time.perf_counter()
                    hits = await store.search(space, q, where, K)
                    latencies.append((time.perf_counter() - started) * 1000)
                rankings.append([h.ref for h in hits])
            plan = await store.explain(space, [float(x) for x in query_vectors[0]], where, K)
            filtered = MemoryFilter(item_types=("runbook",), cloud="aws", region="eu-west-1")
            filtered_plan = await store.explain(
                space, [float(x) for x in query_vectors[0]], filtered, K
            )
        finally:
            await pool.close()
        return {
            "database": pg.label,
            "pgvector": support.version,
            "rows": len(items) + fill,
            "fill_s": fill_s,
            "quality": score(rankings, labelled.relevant),
            "p50_ms": statistics.median(latencies),
            "p95_ms": float(np.percentile(latencies, 95)),
            "index_used": space.index_name in plan,
            "filtered_index_used": space.index_name in filtered_plan,
            "plan": _short_vectors(plan),
            "filtered_plan": _short_vectors(filtered_plan),
        }


def _short_vectors(plan: str) -> str:
    """EXPLAIN prints the query vector in full; 384 numbers say nothing to a reader."""
    return re.sub(r"'\[[^\]]*\]'", "'[query vector]'", plan)


async def _fill(pool: Any, space_key: str, dims: int, rows: int) -> None:
    """`rows` random unit vectors in the space, same cloud and region as the set (noise the
    index must walk past), then ANALYZE so the planner knows the size."""
    async with pool.connection() as conn:
        await conn.execute(
            """
            INSERT INTO crew_memory_items (embedder, item_key, item_type, ref, content,
                                           content_hash, cloud, region, embedding)
            SELECT %(space)s, 'fill-' || g, 'plan', 'fill-' || g, 'filler', '-', 'aws',
                   'eu-west-1', l2_normalize(v.vec)
            FROM generate_series(1, %(rows)s) g
            CROSS JOIN LATERAL (
                SELECT array_agg(random() - 0.5)::vector AS vec
                FROM generate_series(1, %(dims)s)
                WHERE g > 0  -- correlated: a new vector per row, not one for all
            ) v
            """,
            {"space": space_key, "rows": rows, "dims": dims},
        )
        await conn.execute("ANALYZE crew_memory_items")


def run(args: argparse.Namespace) -> dict[str, Any]:
    labelled = load_set()
    embedder = MiniLmEmbedder()
    doc_vectors = embedder.encode(labelled.doc_texts)
    query_vectors = embedder.encode(labelled.queries)
    result: dict[str, Any] = {
        "set": {"docs": len(labelled.doc_ids), "queries": len(labelled.queries)},
        "minilm": score(
            dense_rankings(doc_vectors, query_vectors, labelled.doc_ids), labelled.relevant
        ),
        "bm25": score(
            bm25_rankings(labelled.doc_texts, labelled.queries, labelled.doc_ids),
            labelled.relevant,
        ),
        "cost": embedding_cost(embedder, labelled.queries, args.repeat),
    }
    if not args.no_db:
        result["pgvector"] = asyncio.run(
            pgvector_path(labelled, doc_vectors, query_vectors, args.fill, args.repeat)
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--fill", type=int, default=5000, help="filler rows (default 5000)")
    parser.add_argument("--repeat", type=int, default=5, help="timing repeats (default 5)")
    parser.add_argument("--no-db", action="store_true", help="skip the pgvector part")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = parser.parse_args()
    result = run(args)
    if args.json:
        print(json.dumps(result, default=lambda o: vars(o), indent=1))
        return
    console = Console(width=140)
    console.print(
        f"Memory benchmark — Python {platform.python_version()}, {result['set']['docs']} "
        f"documents, {result['set']['queries']} queries, k = {K}"
    )
    quality = Table(title="retrieval quality on the labelled set")
    for column in ("retriever", f"recall@{K}", "MRR", f"queries with a hit in top {K}"):
        quality.add_column(column)
    rows = [("all-MiniLM-L6-v2 int8 (exact cosine)", result["minilm"])]
    rows.append(("BM25 (lexical baseline)", result["bm25"]))
    if "pgvector" in result:
        rows.append(("MiniLM through pgvector HNSW (filtered)", result["pgvector"]["quality"]))
    for name, q in rows:
        quality.add_row(
            name, f"{q.recall_at_k:.3f}", f"{q.mrr:.3f}", f"{sum(q.hits)}/{len(q.hits)}"
        )
    console.print(quality)
    cost = result["cost"]
    console.print(
        f"embedding: {cost['single_p50_ms']:.2f} ms per text one at a time (p95 "
        f"{cost['single_p95_ms']:.2f}), {cost['batch_ms_per_text']:.2f} ms per text in a batch "
        f"(1 onnxruntime thread)"
    )
    if "pgvector" in result:
        pg = result["pgvector"]
        console.print(
            f"pgvector {pg['pgvector']} on {pg['database']}: {pg['rows']} rows "
            f"(filler inserted in {pg['fill_s']:.1f} s); query p50 {pg['p50_ms']:.2f} ms, p95 "
            f"{pg['p95_ms']:.2f} ms; plan: "
            f"{'HNSW index scan' if pg['index_used'] else 'exact scan'}; runbooks only: "
            f"{'HNSW index scan' if pg['filtered_index_used'] else 'exact (B-tree + sort)'}"
        )
        console.print("plan, cloud + region filter:\n" + pg["plan"], markup=False)
        console.print("plan, + item type 'runbook':\n" + pg["filtered_plan"], markup=False)


if __name__ == "__main__":
    main()
