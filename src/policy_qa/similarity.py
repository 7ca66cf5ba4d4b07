"""How alike two texts are: sentence embeddings (cached) and term coverage.

It owns the one sentence-embedding cache that retrieval, the extractive answerer and the LLM
answer's verifier share (a passage's sentences are embedded once, whoever asks first), and
``coverage``, the IDF-weighted share of a question's terms a text holds. It scores; it does not
rank, decide or fetch anything.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from langchain_core.embeddings import Embeddings

from .embeddings import encode
from .lexical import LexicalIndex
from .text import HANGUL_SYLLABLE

__all__ = ["SENTENCE_LANGUAGES", "SentenceScorer", "coverage", "weighted_share"]

_CAPACITY = 20_000  # sentences kept (~40 MB of 512-d float32 vectors)

# The languages a model reads (a model not named: all). MiniLM is an English model: its
# sentence vectors are kept for English chunks only, since on Korean chunks they were most of
# Korean indexing (docs/decisions/100-indexing-profile-and-speed.md), and an English question's
# reranker does not score a Korean sentence with it
# (docs/decisions/107-sentence-models-read-their-languages.md); of a Korean chunk it embeds
# only the Latin and digit runs (``indexing.embedding_text``; decision 100, sixth session).
SENTENCE_LANGUAGES: dict[str, frozenset[str]] = {"minilm": frozenset({"en"})}


class SentenceScorer:
    """Embeds sentences once and remembers them (an LRU), so reranking, answering and the LLM
    answer's verifier share work.

    ``prime`` hands it vectors computed elsewhere (at index time, or for the query during
    search), which it then serves as if it had embedded them itself.

    >>> scorer = SentenceScorer({"use": load_embeddings("use")})
    >>> scorer.similarity("use", "When was it founded?", ["It was founded in 1973."])
    """

    def __init__(self, embeddings: Mapping[str, Embeddings], capacity: int = _CAPACITY) -> None:
        self._embeddings = embeddings
        self._cache: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def model_for(self, language: str) -> str:
        """The model that compares texts of ``language``: USE across languages, else MiniLM."""
        if language != "en" and "use" in self._embeddings:
            return "use"
        return "minilm" if "minilm" in self._embeddings else next(iter(self._embeddings))

    @staticmethod
    def reads(model: str, language: str) -> bool:
        """Whether ``model``'s sentence vectors of ``language`` text mean anything."""
        languages = SENTENCE_LANGUAGES.get(model)
        return languages is None or language in languages

    def vectors(self, model: str, texts: Sequence[str]) -> np.ndarray:
        """One unit row of ``model`` per text, embedding only the texts it does not hold."""
        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if (model, t) not in self._cache]
        if missing:
            fresh = encode(self._embeddings[model], missing)
            with self._lock:
                for text, vec in zip(missing, fresh, strict=True):
                    self._cache[(model, text)] = vec
                while len(self._cache) > self._capacity:
                    self._cache.popitem(last=False)
        with self._lock:
            rows = []
            for t in texts:
                vec = self._cache.get((model, t))
                if vec is None:  # evicted by a concurrent caller in between: recompute
                    vec = encode(self._embeddings[model], [t])[0]
                else:
                    self._cache.move_to_end((model, t))
                rows.append(vec)
        return np.vstack(rows) if rows else np.zeros((0, 1), dtype=np.float32)

    def prime(self, model: str, vectors: Mapping[str, np.ndarray]) -> None:
        """Remember ``vectors`` (text -> unit vector of ``model``); texts already known stay."""
        with self._lock:
            for text, vec in vectors.items():
                key = (model, text)
                if key in self._cache:
                    self._cache.move_to_end(key)
                else:
                    self._cache[key] = vec
            while len(self._cache) > self._capacity:
                self._cache.popitem(last=False)

    def missing(self, model: str, texts: Sequence[str]) -> list[str]:
        """The ``texts`` that ``vectors`` would have to embed now."""
        with self._lock:
            return [t for t in dict.fromkeys(texts) if (model, t) not in self._cache]

    def embedder(self, model: str) -> Callable[[list[str]], np.ndarray]:
        """``vectors`` of one model as a texts -> rows function (what ``LLMAnswerer`` takes), so
        that the verifier reads passage sentences from this cache and adds to it."""
        return lambda texts: self.vectors(model, texts)

    def clear(self) -> None:
        """Forget every vector (benchmarks time questions about passages nobody asked about)."""
        with self._lock:
            self._cache.clear()

    def similarity(self, model: str, query: str | np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """Cosine similarity of ``query`` (a text, or its unit vector under ``model``) to each
        of ``texts`` under ``model``."""
        if not texts:
            return np.zeros(0, dtype=np.float32)
        q = query if isinstance(query, np.ndarray) else self.vectors(model, [query])[0]
        return self.vectors(model, texts) @ q


def coverage(index: LexicalIndex, question: str, text: str) -> float:
    """IDF-weighted share of the question's terms that occur in ``text`` (0..1).

    A term the corpus has never seen weighs the most: a question about a "budget" the
    documents never mention should not look answered just because "cluster" matches.
    """
    terms = list(dict.fromkeys(index.tokens(question)))
    if not terms:
        return 0.0
    # Without Hangul in the question, the text's Hangul runs cannot hold one of its terms:
    # they are left out, and Kiwi is not loaded (docs/decisions/109).
    present = set(index.tokens(text, hangul=bool(HANGUL_SYLLABLE.search(question))))
    return weighted_share(index, terms, [t in present for t in terms])


def weighted_share(index: LexicalIndex, terms: Sequence[str], hits: Sequence[bool]) -> float:
    """IDF-weighted share of ``terms`` whose ``hits`` flag is set (0..1): ``coverage`` when
    the caller already knows which terms a text holds (the reranker reads it from the index)."""
    if not terms:
        return 0.0
    weights = np.array([index.idf(t) for t in terms])
    found = np.array(hits, dtype=float)
    return float((weights * found).sum() / max(weights.sum(), 1e-9))
