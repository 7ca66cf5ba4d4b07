"""Retrieval: lexical + dense candidates, weighted fusion, sentence-level reranking.

It owns ranking only: what the candidates are and in which order. It reads from the ``Store``
and the ``LexicalIndex`` and never writes to them.

Fusion is weighted reciprocal rank fusion (RRF). Equal weights let a weak retriever drag a
strong one down (MiniLM is near-blind on Korean; BM25 cannot match a Korean question to an
English passage), so each retriever's weight depends on the question's language. The weights
and the reranker mix were tuned on the dev sets; the numbers are in
docs/decisions/005-fusion-weights-by-language-pair.md and docs/decisions/006-sentence-reranker.md.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from langchain_core.embeddings import Embeddings

from .ingest import split_sentences
from .lexical import LexicalIndex
from .query import Query
from .similarity import SentenceScorer, weighted_share
from .store import Store
from .types import Chunk, Passage

__all__ = [
    "RERANK_MIX",
    "RRF_K",
    "UNREAD_SENTENCE",
    "WEIGHTS",
    "FusionWeights",
    "RerankMix",
    "Retriever",
    "language_pair",
]

log = logging.getLogger(__name__)

RRF_K = 60


@dataclass(frozen=True)
class FusionWeights:
    bm25: float
    minilm: float
    use: float

    def of(self, name: str) -> float:
        return float(getattr(self, name, 1.0))


# Tuned on the dev sets with research/tune_fusion.py
# (docs/decisions/005-fusion-weights-by-language-pair.md). Keys are language
# pairs: an English question; a Korean question over English text ("ko", where only USE and
# romanised names can match); a Korean question over Korean text ("ko-ko", where BM25 with a
# morphological tokenizer is nearly perfect and USE mostly adds noise). MiniLM is nearly blind
# on Korean. A zero weight skips that retriever (and the cost of embedding the query for it).
WEIGHTS = {
    "en": FusionWeights(bm25=1.0, minilm=1.0, use=1.0),
    "ko": FusionWeights(bm25=0.8, minilm=0.0, use=1.0),
    "ko-ko": FusionWeights(bm25=1.0, minilm=0.0, use=0.25),
}


@dataclass(frozen=True)
class RerankMix:
    """How the reranker weighs best-sentence similarity, term coverage and the fused rank."""

    sentence: float
    coverage: float
    fused: float


# The best-sentence similarity a chunk gets when the reranker's model does not read its
# language: "unrelated" for a unit-vector cosine, between the -1 of a chunk with no sentences
# and any sentence that shares meaning (docs/decisions/107-sentence-models-read-their-languages.md).
UNREAD_SENTENCE = 0.0

RERANK_MIX = {
    "en": RerankMix(sentence=0.5, coverage=0.3, fused=0.4),
    "ko": RerankMix(sentence=0.5, coverage=0.1, fused=0.4),
    "ko-ko": RerankMix(sentence=0.5, coverage=0.5, fused=0.4),
}


def language_pair(language: str, top_lexical: Chunk | None) -> str:
    """Which weights apply: the question's language, and for Korean whether the best lexical
    match is Korean text (a Korean question's words can only match Korean text, so BM25's
    best hit says which kind of document the question is about)."""
    if language != "ko":
        return "en"
    if top_lexical is not None and top_lexical.language == "ko":
        return "ko-ko"
    return "ko"


def _sentences(
    chunks: Sequence[Chunk], read: Sequence[bool] | None = None
) -> tuple[list[str], list[int]]:
    """Every sentence of ``chunks`` (of those ``read`` marks, when given) in order, with the
    index of the chunk it belongs to."""
    sentences: list[str] = []
    owners: list[int] = []
    for i, chunk in enumerate(chunks):
        if read is not None and not read[i]:
            continue
        for s, e in split_sentences(chunk.text):
            sentences.append(chunk.text[s:e])
            owners.append(i)
    return sentences, owners


class Retriever:
    """Hybrid search over one index."""

    def __init__(
        self,
        store: Store,
        lexical: LexicalIndex,
        embeddings: Mapping[str, Embeddings],
        scorer: SentenceScorer,
        candidates: int = 30,
        rerank_depth: int = 12,
        cross_encoder: object | None = None,
        window_chars: int = 0,
    ) -> None:
        self.store = store
        self.lexical = lexical
        self.embeddings = embeddings
        self.scorer = scorer
        self.candidates = candidates
        self.rerank_depth = rerank_depth
        self.cross_encoder = cross_encoder
        self.window_chars = window_chars

    def search(
        self,
        query: str | Query,
        k: int,
        sources: Sequence[str] | None = None,
        rerank: bool = True,
    ) -> list[Passage]:
        """The top ``k`` passages for ``query`` (its ``retrieval`` text, when a ``Query``)."""
        q = self._read(query)
        language = q.retrieval_language
        # Which dense models to ask is known from the question alone: every pair of a language
        # shares the models with a non-zero weight.
        family = language_pair(language, None)
        wanted = {
            name
            for pair, w in WEIGHTS.items()
            if pair.split("-")[0] == family
            for name in self.embeddings
            if w.of(name) > 0
        }
        ranked: dict[str, list[str]] = {}
        chunks: dict[str, Chunk] = {}
        raw: dict[str, dict[str, float]] = {}

        lexical_hits = self.lexical.search(
            q.retrieval, self.candidates, sources, terms=q.terms, anchors=q.anchors
        )
        ranked["bm25"] = [cid for cid, _ in lexical_hits]
        for cid, score in lexical_hits:
            raw.setdefault(cid, {})["bm25"] = score

        for model in self.embeddings:
            if model not in wanted and len(self.embeddings) > 1:
                continue
            # Through the scorer's cache: the reranker scores sentences against this same
            # vector, and a question asked again (the chat's examples, a Korean question
            # searched before and after translation) is not encoded again
            # (docs/decisions/106-many-users-at-once.md).
            vector = q.retrieval_vector(self.scorer, model)
            hits = self.store.search(model, vector.tolist(), self.candidates, sources)
            ranked[model] = [cid for cid, _, _ in hits]
            for cid, chunk, sim in hits:
                chunks[cid] = chunk
                raw.setdefault(cid, {})[model] = sim

        top_lexical = None
        if language == "ko" and lexical_hits:
            top_id = lexical_hits[0][0]
            if top_id not in chunks:
                chunks.update(self.store.get_chunks([top_id]))
            top_lexical = chunks.get(top_id)
        pair = language_pair(language, top_lexical)
        weights = WEIGHTS[pair]
        fused: dict[str, float] = {}
        for name, ids in ranked.items():
            w = weights.of(name)
            for rank, cid in enumerate(ids):
                fused[cid] = fused.get(cid, 0.0) + w / (RRF_K + rank + 1)
        if not fused:
            return []
        missing = [cid for cid in fused if cid not in chunks]
        if missing:
            chunks.update(self.store.get_chunks(missing))
        order = sorted((cid for cid in fused if cid in chunks), key=lambda c: -fused[c])

        passages = [
            Passage(
                chunk=chunks[cid],
                score=fused[cid],
                scores=(("rrf", fused[cid]), *sorted(raw.get(cid, {}).items())),
            )
            for cid in order
        ]
        if rerank and len(passages) > 1:
            passages = self.rerank(q, language, passages, pair)
        if self.window_chars > 0:
            return self.widen(passages, k, self.scorer.model_for(language))
        return passages[:k]

    def widen(self, passages: Sequence[Passage], k: int, model: str) -> list[Passage]:
        """The top ``k`` passages, each widened by the chunks just before and after it.

        Chunks are kept small because small chunks rank sharply, but an answer often runs past
        a chunk's edge: a page's first chunk names the topic and the second holds the fact, a
        list starts in one paragraph and goes on in the next. So each ranked chunk comes back
        with its neighbours in the document (the next one first) while the span stays within
        ``window_chars``. Windows never overlap: a chunk already inside a higher window is not
        shown again, and its passage gives way to the next one. Ranking is unchanged; only
        what each rank shows grows (docs/decisions/009-passage-windows.md has the measurements).
        """
        reach = self.window_chars
        head = list(passages[: 2 * k])  # enough for the few a higher window swallows
        around = {p.chunk.id: self.lexical.neighbours(p.chunk.id) for p in head}
        near = self.store.get_chunks(
            sorted({n for pair in around.values() for n in pair if n is not None})
        )
        shown: set[tuple[str, int]] = set()
        spans: list[tuple[Passage, int, int, list[Chunk]]] = []
        for p in passages:
            c = p.chunk
            if (c.source, c.start) in shown:
                continue
            start, end, added = c.start, c.end, []
            before_id, after_id = around.get(c.id, (None, None))
            after = near.get(after_id) if after_id else None
            if after and (c.source, after.start) not in shown and after.end - start <= reach:
                end = after.end
                added.append(after)
            before = near.get(before_id) if before_id else None
            if before and (c.source, before.start) not in shown and end - before.start <= reach:
                start = before.start
                added.append(before)
            shown.update((n.source, n.start) for n in (c, *added))
            spans.append((p, start, end, added))
            if len(spans) == k:
                break
        texts = self.store.document_texts(sorted({p.chunk.source for p, _, _, a in spans if a}))
        widened: list[Passage] = []
        neighbours: list[Chunk] = []
        for p, start, end, added in spans:
            c = p.chunk
            text = texts.get(c.source)
            if not added or text is None or text[c.start : c.end] != c.text:
                widened.append(p)  # nothing to add, or the document changed since indexing
                continue
            window = c.joined(added, start, end, text[start:end])
            widened.append(replace(p, chunk=window, focus=(c.start, c.end)))
            neighbours.extend(added)
        # The added chunks' stored sentence vectors, so that answering embeds none.
        self._prime_sentences(model, neighbours, *_sentences(neighbours))
        return widened

    def rerank(
        self, query: str | Query, language: str, passages: list[Passage], pair: str | None = None
    ) -> list[Passage]:
        """Second stage over the top candidates: best-sentence similarity + term coverage.

        Whole-chunk vectors blur a passage's one relevant sentence with its neighbours; scoring
        the best single sentence (and how much of the question the chunk covers) sharpens
        Recall@1. A configured cross-encoder replaces this with its own scores.
        """
        q = self._read(query)
        head, tail = passages[: self.rerank_depth], passages[self.rerank_depth :]
        if self.cross_encoder is not None:
            pairs = [(q.retrieval, p.chunk.text) for p in head]
            ce = np.asarray(self.cross_encoder.predict(pairs))  # type: ignore[attr-defined]
            scores = list(ce)
        else:
            mix = RERANK_MIX[pair or language_pair(language, None)]
            model = self.scorer.model_for(language)
            chunks = [p.chunk for p in head]
            # A chunk in a language the model does not read (a Korean chunk under an English
            # question's MiniLM) has no best sentence to show: it ranks on its coverage and
            # fused score, and its sentences are not embedded (an English model's vectors of
            # Korean sentences are noise, and cost ~0.6 s a question; decision 107).
            read = [self.scorer.reads(model, c.language) for c in chunks]
            sentences, owners = _sentences(chunks, read)
            self._prime_sentences(model, chunks, sentences, owners)
            sims = self.scorer.similarity(model, q.retrieval_vector(self.scorer, model), sentences)
            best = np.where(read, -1.0, UNREAD_SENTENCE)
            for sim, owner in zip(sims, owners, strict=True):
                best[owner] = max(best[owner], float(sim))
            top_rrf = max(p.score for p in head)
            coverages = self._coverages(q, head)
            scores = []
            for i, p in enumerate(head):
                cov = coverages[i]
                scores.append(
                    mix.sentence * float(best[i])
                    + mix.coverage * cov
                    + mix.fused * (p.score / top_rrf if top_rrf > 0 else 0.0)
                )
        reranked = [
            replace(p, score=float(s), scores=(*p.scores, ("rerank", float(s))))
            for p, s in zip(head, scores, strict=True)
        ]
        reranked.sort(key=lambda p: -p.score)
        floor = reranked[-1].score if reranked else 0.0
        # Keep the tail below the reranked head, in its fused order.
        tail = [replace(p, score=floor - 1e-3 * (i + 1)) for i, p in enumerate(tail)]
        return reranked + tail

    def _prime_sentences(
        self, model: str, chunks: Sequence[Chunk], sentences: Sequence[str], owners: Sequence[int]
    ) -> None:
        """Load the index-time vectors of sentences the scorer lacks, in one store call.

        Embedding a dozen candidates' sentences at question time is most of the reranker's cost
        (~100 ms with MiniLM on two cores); reading their stored vectors takes a few ms.
        """
        lacking = set(self.scorer.missing(model, sentences))
        if not lacking:
            return
        per_chunk = Counter(owners)
        wanted = {o for text, o in zip(sentences, owners, strict=True) if text in lacking}
        by_id = {chunks[o].id: chunks[o] for o in sorted(wanted)}
        stored = self.store.sentence_vectors(
            model, {chunks[o].id: per_chunk[o] for o in sorted(wanted)}
        )
        vectors: dict[str, np.ndarray] = {}
        for cid, rows in stored.items():
            text = by_id[cid].text
            for start, end, vector in rows:
                vectors[text[start:end]] = vector
        self.scorer.prime(model, vectors)

    def _coverages(self, query: Query, head: Sequence[Passage]) -> list[float]:
        """``coverage`` of each candidate, reading term presence from the lexical index."""
        terms = query.unique_terms
        present = self.lexical.contains([p.chunk.id for p in head], terms)
        return [
            weighted_share(
                self.lexical, terms, self._holds(terms, p, query.hangul) if hits is None else hits
            )
            for p, hits in zip(head, present, strict=True)
        ]

    def _holds(self, terms: Sequence[str], passage: Passage, hangul: bool) -> list[bool]:
        """Whether ``passage``'s section and text hold each of ``terms`` (a chunk the lexical
        index does not have); ``hangul``: whether the query holds Hangul (without it, the
        passage's Hangul runs cannot hold a term: docs/decisions/109)."""
        text = f"{passage.chunk.section}\n{passage.chunk.text}"
        present = set(self.lexical.tokens(text, hangul=hangul))
        return [t in present for t in terms]

    def _read(self, query: str | Query) -> Query:
        """``query`` as a ``Query`` (read now, when it is a text)."""
        return query if isinstance(query, Query) else Query.read(query, self.lexical)
