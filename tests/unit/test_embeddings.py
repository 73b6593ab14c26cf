"""tools/embeddings.py: the offline MiniLM embedder (real model, no network) and the
OpenAI-compatible one against a local server speaking the /v1/embeddings wire format; the
retrieval floor on the labelled set (bench/memory.py prints the full figures)."""

from __future__ import annotations

import asyncio
import socket

import numpy as np
import pytest
from pydantic import SecretStr

from crew.plan_memory import build_embedder
from crew.settings import Settings
from fixtures.retrieval import bm25_rankings, dense_rankings, load_set, score
from schemas.errors import ConfigurationError, EmbeddingError
from tests.fake_openai import HttpError, fake_embedding, fake_openai
from tools.embeddings import MiniLmEmbedder, OpenAiEmbedder

#: recall@3 measured on the labelled set: 0.920 for MiniLM (BM25: 0.716); the floor leaves
#: room for onnxruntime's numeric drift across versions and CPUs, not for a worse model.
RECALL_AT_3_FLOOR = 0.85
MRR_FLOOR = 0.80


@pytest.fixture(scope="module")
def minilm() -> MiniLmEmbedder:
    return MiniLmEmbedder()


def test_minilm_makes_384_unit_vectors_deterministically(minilm: MiniLmEmbedder) -> None:
    texts = ["A Postgres database with a standby in another zone", "", "x " * 2000]
    first = minilm.encode(texts)
    assert first.shape == (3, 384)
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    again = asyncio.run(minilm.embed(list(reversed(texts))))  # order and batching do not matter
    assert np.allclose(np.asarray(again[::-1]), first, atol=1e-5)
    assert minilm.name == "minilm/all-MiniLM-L6-v2-onnx-int8"


def test_minilm_puts_paraphrases_closer_than_unrelated_texts(minilm: MiniLmEmbedder) -> None:
    vectors = minilm.encode(
        [
            "PostgreSQL high availability with automatic failover",
            "a replicated relational database that survives losing a zone",
            "host a static marketing website on a CDN",
            "serve the company's brochure pages through a content delivery network",
            "nightly batch job that exports invoices to CSV",
        ]
    )
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -1)
    assert list(similarity.argmax(axis=1)[:4]) == [1, 0, 3, 2]  # each finds its paraphrase
    assert similarity[0, 1] > similarity[0, 2] + 0.2


def test_recall_at_3_of_the_default_embedder_is_above_the_floor(minilm: MiniLmEmbedder) -> None:
    labelled = load_set()
    dense = score(
        dense_rankings(
            minilm.encode(labelled.doc_texts), minilm.encode(labelled.queries), labelled.doc_ids
        ),
        labelled.relevant,
    )
    lexical = score(
        bm25_rankings(labelled.doc_texts, labelled.queries, labelled.doc_ids), labelled.relevant
    )
    print(
        f"\nrecall@3 MiniLM {dense.recall_at_k:.3f} (MRR {dense.mrr:.3f}), "
        f"BM25 {lexical.recall_at_k:.3f} (MRR {lexical.mrr:.3f}) "
        f"on {len(labelled.queries)} queries / {len(labelled.doc_ids)} documents"
    )
    assert len(labelled.queries) >= 25
    assert len(labelled.doc_ids) >= 40
    assert dense.recall_at_k >= RECALL_AT_3_FLOOR
    assert dense.mrr >= MRR_FLOOR
    assert dense.recall_at_k > lexical.recall_at_k + 0.1  # the point of embeddings


def test_the_openai_embedder_speaks_the_embeddings_wire_format() -> None:
    texts = [f"text number {i}" for i in range(5)]
    with fake_openai() as server:
        embedder = OpenAiEmbedder(
            model="fake-embed",
            base_url=server.base_url,
            api_key=SecretStr("sk-test"),
            timeout_s=5,
            max_retries=0,
            batch_size=2,
        )
        vectors = asyncio.run(embedder.embed(texts))
    # the server answers each batch in reverse index order: the client puts them back
    assert vectors == [pytest.approx(fake_embedding(t, 16)) for t in texts]
    assert [r["input"] for r in server.embedding_requests] == [texts[:2], texts[2:4], texts[4:]]
    assert {r["model"] for r in server.embedding_requests} == {"fake-embed"}
    assert {r["encoding_format"] for r in server.embedding_requests} == {"float"}
    assert server.headers[0]["authorization"] == "Bearer sk-test"
    assert embedder.name == "openai/fake-embed"


FAILURES = [
    (HttpError(500, "model overloaded"), EmbeddingError, "answered HTTP 500"),
    (HttpError(429, "slow down"), EmbeddingError, "answered HTTP 429"),
    (HttpError(401, "bad key"), ConfigurationError, "CREW_EMBEDDINGS_API_KEY"),
    (HttpError(404, "no such model"), ConfigurationError, "CREW_EMBEDDINGS_MODEL"),
]


def test_an_embeddings_endpoint_failure_is_a_typed_error() -> None:
    with fake_openai() as server:  # one server for every case: each stop costs 0.5 s
        embedder = OpenAiEmbedder(
            model="fake-embed",
            base_url=server.base_url,
            api_key=None,
            timeout_s=5,
            max_retries=0,
        )
        for failure, error, says in FAILURES:
            server.embedding_errors.append(failure)
            with pytest.raises(error, match=says) as raised:
                asyncio.run(embedder.embed(["hello"]))
            assert server.base_url in str(raised.value)
        assert len(server.embedding_requests) == len(FAILURES)  # max_retries=0: one each


def test_an_unreachable_embeddings_endpoint_is_an_embedding_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    embedder = OpenAiEmbedder(
        model="m", base_url=f"http://127.0.0.1:{port}/v1", api_key=None, timeout_s=2, max_retries=0
    )
    with pytest.raises(EmbeddingError, match="cannot reach the embeddings endpoint"):
        asyncio.run(embedder.embed(["hello"]))


def test_settings_pick_the_embedder() -> None:
    assert isinstance(build_embedder(Settings()), MiniLmEmbedder)
    with pytest.raises(ValueError, match="CREW_EMBEDDER=openai needs CREW_EMBEDDINGS_MODEL"):
        Settings(embedder="openai")
    with pytest.raises(ConfigurationError, match="CREW_EMBEDDINGS_API_KEY or OPENAI_API_KEY"):
        build_embedder(Settings(embedder="openai", embeddings_model="m", openai_api_key=None))
    chosen = build_embedder(
        Settings(
            embedder="openai",
            embeddings_model="text-embedding-3-small",
            embeddings_base_url="",  # empty: unset, as in a compose file
            openai_api_key=SecretStr("sk-llm"),
        )
    )
    assert isinstance(chosen, OpenAiEmbedder)
    assert (chosen.model, chosen.base_url) == ("text-embedding-3-small", None)
    assert chosen._api_key.get_secret_value() == "sk-llm"  # falls back to the LLM's key
