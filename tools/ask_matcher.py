"""Reading goals by meaning: description clauses against the described capability set.

`EmbeddingMatcher` implements catalog.reading.MeaningMatcher with the vector memory's own
sentence-embedding model (all-MiniLM-L6-v2, int8 ONNX, offline: tools/embeddings.py). The
example phrasings of every capability (catalog/reading/capabilities.py) and a set of
sentences that state no requirement are embedded once, on first use; a clause then reads as
the capability whose examples it is most similar to, when that similarity clears the
threshold (tuned on the corpus's dev split, `python -m bench.atlas_fidelity --tune`).

The container builds one matcher per process (`build_reading_aids`), so the model loads
once; the pure reader only ever sees the MeaningMatcher interface.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from catalog.reading import ReadingAids
from catalog.reading.capabilities import CAPABILITIES, NON_REQUIREMENTS
from tools.embeddings import MiniLmEmbedder

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

#: Cosine similarity a clause needs to read as a capability (tuned on the dev split).
THRESHOLD = 0.62
#: Extra similarity asked of a capability the catalog cannot build: a false "unsupported"
#: blocks a design, so the evidence must be stronger.
UNSUPPORTED_MARGIN = 0.04
#: A second capability in one clause must be this close to the best one.
SECOND_WITHIN = 0.03
NONE = "none"
#: Clauses remembered per matcher (cleared when full).
CACHE_SIZE = 4096


class EmbeddingMatcher:
    def __init__(
        self,
        embedder: MiniLmEmbedder,
        *,
        threshold: float = THRESHOLD,
        unsupported_margin: float = UNSUPPORTED_MARGIN,
    ) -> None:
        self._embedder = embedder
        self.threshold = threshold
        self.unsupported_margin = unsupported_margin
        self._lock = threading.Lock()
        self._examples: _Examples | None = None
        self._supported = {c.name: c.supported for c in CAPABILITIES}
        self._seen: dict[str, list[tuple[str, float]]] = {}
        """Clauses already read (the design node and the planner read the same goal)."""

    def match(self, clauses: Sequence[str]) -> list[list[tuple[str, float]]]:
        if not clauses:
            return []
        examples = self._example_vectors()
        with self._lock:
            todo = list(dict.fromkeys(c for c in clauses if c not in self._seen))
        if todo:
            # One batch through the model for all the goal's new clauses; then the best
            # example per capability for every clause at once (reduceat over label groups).
            best = examples.best(self._embedder.encode(todo))
            picked = {c: self._pick(examples.names, row) for c, row in zip(todo, best, strict=True)}
            with self._lock:
                if len(self._seen) + len(picked) > CACHE_SIZE:
                    self._seen.clear()
                self._seen.update(picked)
        with self._lock:
            return [list(self._seen[c]) if c in self._seen else [] for c in clauses]

    def forget(self) -> None:
        """Drop the remembered clauses (benchmarks measure the model's work)."""
        with self._lock:
            self._seen.clear()

    def scores(self, clauses: Sequence[str]) -> list[dict[str, float]]:
        """Best similarity per capability for each clause (for tuning the threshold)."""
        examples = self._example_vectors()
        best = examples.best(self._embedder.encode(list(clauses)))
        return [dict(zip(examples.names, row.tolist(), strict=True)) for row in best]

    def _pick(self, names: list[str], row: npt.NDArray[np.float32]) -> list[tuple[str, float]]:
        ranked = sorted(zip(names, row.tolist(), strict=True), key=lambda kv: kv[1], reverse=True)
        if not ranked or ranked[0][0] == NONE:
            return []
        top = ranked[0][1]
        picked: list[tuple[str, float]] = []
        for name, score in ranked[:2]:
            if name == NONE or score < top - SECOND_WITHIN:
                break
            needed = self.threshold + (0 if self._supported.get(name, True) else
                                       self.unsupported_margin)  # fmt: skip
            if score >= needed:
                picked.append((name, score))
        return picked

    def _example_vectors(self) -> _Examples:
        with self._lock:
            if self._examples is None:
                groups = [(c.name, list(c.examples)) for c in CAPABILITIES if c.examples]
                groups.append((NONE, list(NON_REQUIREMENTS)))
                texts = [e for _, examples in groups for e in examples]
                starts, at = [], 0
                for _, examples in groups:
                    starts.append(at)
                    at += len(examples)
                self._examples = _Examples(
                    [name for name, _ in groups], self._embedder.encode(texts), starts
                )
            return self._examples


class _Examples:
    """The capability set's example vectors (embedded once per matcher), grouped by
    capability so a clause's best example per capability is one matrix product and one
    reduceat."""

    def __init__(
        self, names: list[str], matrix: npt.NDArray[np.float32], starts: list[int]
    ) -> None:
        import numpy as np

        self.names = names
        self._transposed = np.ascontiguousarray(matrix.T)
        self._starts = np.asarray(starts, dtype=np.intp)

    def best(self, vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """(clauses, capabilities): each clause's best similarity to each capability."""
        import numpy as np

        similarities = vectors @ self._transposed
        best: npt.NDArray[np.float32] = np.maximum.reduceat(similarities, self._starts, axis=1)
        return best


class WordPieceLexicon:
    """The model's WordPiece vocabulary as a lexicon: a whole-word token is a real word,
    which the reader never 'corrects' as a typo."""

    def __init__(self) -> None:
        import json
        from importlib import resources

        path = resources.files("memory") / "models" / "all-MiniLM-L6-v2" / "tokenizer.json"
        vocab = json.loads(path.read_text(encoding="utf-8"))["model"]["vocab"]
        self._words = frozenset(w for w in vocab if w.isalpha())

    def __call__(self, word: str) -> bool:
        return word in self._words


def build_reading_aids(embedder: MiniLmEmbedder | None = None) -> ReadingAids:
    """The reader's aids for this process: one embedding matcher (the model loads on first
    use) and the model's vocabulary as the lexicon."""
    return ReadingAids(
        meaning=EmbeddingMatcher(embedder or MiniLmEmbedder()), known_word=WordPieceLexicon()
    )
