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
        self._examples: tuple[list[str], npt.NDArray[np.float32]] | None = None
        self._supported = {c.name: c.supported for c in CAPABILITIES}
        self._seen: dict[str, list[tuple[str, float]]] = {}
        """Clauses already read (the design node and the planner read the same goal)."""

    def match(self, clauses: Sequence[str]) -> list[list[tuple[str, float]]]:
        if not clauses:
            return []
        labels, matrix = self._example_vectors()
        with self._lock:
            todo = list(dict.fromkeys(c for c in clauses if c not in self._seen))
        if todo:
            similarities = self._embedder.encode(todo) @ matrix.T
            picked = {c: self._pick(labels, row) for c, row in zip(todo, similarities, strict=True)}
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
        labels, matrix = self._example_vectors()
        similarities = self._embedder.encode(list(clauses)) @ matrix.T
        out: list[dict[str, float]] = []
        for row in similarities:
            best: dict[str, float] = {}
            for label, value in zip(labels, row.tolist(), strict=True):
                best[label] = max(best.get(label, -1.0), value)
            out.append(best)
        return out

    def _pick(self, labels: list[str], row: npt.NDArray[np.float32]) -> list[tuple[str, float]]:
        best: dict[str, float] = {}
        for label, value in zip(labels, row.tolist(), strict=True):
            if value > best.get(label, -1.0):
                best[label] = value
        ranked = sorted(best.items(), key=lambda kv: kv[1], reverse=True)
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

    def _example_vectors(self) -> tuple[list[str], npt.NDArray[np.float32]]:
        with self._lock:
            if self._examples is None:
                labels = [c.name for c in CAPABILITIES for _ in c.examples]
                texts = [e for c in CAPABILITIES for e in c.examples]
                labels += [NONE] * len(NON_REQUIREMENTS)
                texts += list(NON_REQUIREMENTS)
                self._examples = (labels, self._embedder.encode(texts))
            return self._examples


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
