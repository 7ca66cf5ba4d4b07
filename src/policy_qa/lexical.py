# Over 500 lines: the tokenizer per language and the BM25 matrix it feeds, built whole or updated
# by documents, share their term ids (docs/decisions/101-incremental-bm25.md).
"""Lexical (BM25) search: the language-aware tokenizer and a persisted ``bm25s`` index.

Owns the only imports of ``bm25s``, ``Stemmer`` (PyStemmer) and ``kiwipiepy``. The index keeps
chunk ids and sources, not texts: texts live in Chroma, which the caller asks by id.

Tokens:
- English and other Latin-script words: lower-cased, stop words dropped, Snowball-stemmed.
- Korean (Hangul runs): character bigrams by default; ``korean="kiwi"`` uses the Kiwi
  morphological analyser (its model ships in ``kiwipiepy_model``). Bigrams need no model and
  are robust to the particles glued onto Korean words; the numbers are in
  docs/decisions/002-korean-bm25-terms-from-kiwi.md.
- Numbers stay whole ("1973", "150").
"""

from __future__ import annotations

import bisect
import hashlib
import json
import logging
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN_PLUS, STOPWORDS_KOREAN

from .text import HANGUL_SYLLABLE as _HANGUL
from .text import HANGUL_SYLLABLES

__all__ = [
    "ChunkTerms",
    "LexicalIndex",
    "Tokenizer",
    "latin_anchors",
    "romanize",
    "text_digest",
]

log = logging.getLogger(__name__)
# bm25s sets its own logger to DEBUG when imported, which would print index-building chatter
# under any application's logging set-up.
logging.getLogger("bm25s").setLevel(logging.WARNING)

_TOKEN = re.compile(rf"[A-Za-z][A-Za-z'’]*|\d+(?:[.,]\d+)*|[{HANGUL_SYLLABLES}]+|[\u4e00-\u9fff]")
_TOKEN_CACHE = 4096  # texts whose tokens ``LexicalIndex.tokens`` remembers
# Hangul runs whose Kiwi terms a ``Tokenizer`` remembers: Kiwi reads one run at a time, so a
# run's terms never depend on its neighbours, and words recur
# (docs/decisions/105-warm-questions.md).
# Only runs of at most ``_RUN_CACHED_CHARS`` syllables are kept (KorQuAD's dev contexts: 99.999%
# of 116,595 runs are at most 16, the longest 21); a longer run is text written without spaces,
# which does not recur. So the memo stays under ~50 MB whatever the text (~770 bytes an entry
# for 24-syllable runs, measured with tracemalloc).
_RUN_CACHE = 65_536
_RUN_CACHED_CHARS = 24
# Question words and quantifiers carry the question's intent, not its topic, so they must
# neither match passages nor count as "evidence missing" when judging coverage.
_EXTRA_STOP = frozenset(
    "what which who whom whose when where why how many much does did do is are was were "
    "will would can could should may might please tell describe explain list give name "
    "according document documents article text mention mentioned say says said".split()
)
_STOP_EN = frozenset(STOPWORDS_EN_PLUS) | _EXTRA_STOP
_STOP_KO = frozenset(STOPWORDS_KOREAN)


@cache
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


@cache
def _kiwi():
    from kiwipiepy import Kiwi

    return Kiwi()


class Tokenizer:
    """Turns text into BM25 terms; the same instance must index and query."""

    def __init__(self, korean: str = "bigram") -> None:
        if korean not in ("bigram", "kiwi"):
            raise ValueError(f"korean tokenizer must be 'bigram' or 'kiwi', got {korean!r}")
        self.korean = korean
        self._lock = threading.Lock()
        self._kiwi_terms = lru_cache(maxsize=_RUN_CACHE)(self._analysed)

    def __call__(self, text: str, hangul: bool = True) -> list[str]:
        """``text``'s terms; ``hangul=False`` leaves out its Hangul runs' terms (and so never
        loads Kiwi). Those terms all hold Hangul, so a caller that only intersects them with
        terms of a text without Hangul gets the same answer either way
        (docs/decisions/109-english-questions-do-not-load-kiwi.md)."""
        out: list[str] = []
        words: list[str] = []
        for match in _TOKEN.finditer(text):
            tok = match.group(0)
            if _HANGUL.match(tok):
                if hangul:
                    out.extend(self._korean(tok))
            elif tok[0].isdigit():
                out.append(tok.replace(",", ""))
            else:
                low = tok.lower().replace("’", "'").removesuffix("'s").strip("'")
                if low and low not in _STOP_EN and len(low) > 1:
                    words.append(low)
        if words:
            out.extend(_stemmer().stemWords(words))
        return out

    def _korean(self, run: str) -> list[str]:
        if self.korean == "kiwi":
            if len(run) > _RUN_CACHED_CHARS:
                return list(self._analysed(run))
            return list(self._kiwi_terms(run))
        if len(run) == 1:
            return [run]
        return [run[i : i + 2] for i in range(len(run) - 1)]

    def _analysed(self, run: str) -> tuple[str, ...]:
        """Kiwi's content morphemes of one Hangul run (a Korean question's ~500 runs took
        30-80 ms of Kiwi calls; remembered by ``_kiwi_terms``)."""
        with self._lock:
            tokens = _kiwi().tokenize(run)
        return tuple(
            t.form
            for t in tokens
            if t.tag.startswith(("NN", "VV", "VA", "XR", "SL", "SN", "MAG"))
            and t.form not in _STOP_KO
        )


@dataclass(frozen=True)
class ChunkTerms:
    """Every indexed chunk's terms, kept so that a rebuild tokenizes only the chunks that are new.

    Terms are reused for a chunk id only when the text indexed for it is the same (a digest of
    it is kept: a section title can change while the chunk's own text does not). Tokenizing is
    most of a build (Kiwi: ~360 s of 375 at 100,000 chunks; ``bm25s`` itself ~18 s), and after
    one document changes every other chunk is unchanged. Stored as term ids (``int32``) into
    ``vocab``: about 4 bytes a term, 6 MB per 10,000 chunks with bigrams.
    """

    vocab: tuple[str, ...]  # term by id
    flat: np.ndarray  # term ids of every chunk, in index order
    offsets: np.ndarray  # chunk i's term ids are flat[offsets[i] : offsets[i + 1]]
    digests: np.ndarray  # chunk i's indexed text, hashed (``text_digest``)

    @classmethod
    def of(
        cls, corpus: Sequence[Sequence[str]], digests: Sequence[int], vocab: Sequence[str] = ()
    ) -> ChunkTerms:
        """Rows of term ids; ``vocab`` seeds the ids (terms it holds keep their numbers)."""
        ids = {t: i for i, t in enumerate(vocab)}
        flat = np.fromiter(
            (ids.setdefault(t, len(ids)) for terms in corpus for t in terms), dtype=np.int32
        )
        offsets = np.zeros(len(corpus) + 1, dtype=np.int64)
        np.cumsum([len(terms) for terms in corpus], out=offsets[1:])
        return cls(tuple(ids), flat, offsets, np.array(digests, dtype=np.uint64))

    def rows(self, keep: np.ndarray) -> ChunkTerms:
        """Only the rows where ``keep`` (a boolean mask over rows) is set, vocabulary as is."""
        lengths = np.diff(self.offsets)
        offsets = np.zeros(int(keep.sum()) + 1, dtype=np.int64)
        np.cumsum(lengths[keep], out=offsets[1:])
        return ChunkTerms(
            self.vocab, self.flat[np.repeat(keep, lengths)], offsets, self.digests[keep]
        )

    def extended(self, more: ChunkTerms) -> ChunkTerms:
        """These rows, then ``more``'s, whose vocabulary must extend this one's."""
        if more.vocab[: len(self.vocab)] != self.vocab:
            raise ValueError("the added rows' vocabulary does not extend this one")
        return ChunkTerms(
            more.vocab,
            np.concatenate([self.flat, more.flat]).astype(np.int32),
            np.concatenate([self.offsets, self.offsets[-1] + more.offsets[1:]]),
            np.concatenate([self.digests, more.digests]).astype(np.uint64),
        )

    def terms(self, row: int, text: str) -> list[str] | None:
        """Row ``row``'s terms, if ``text`` is what was indexed there."""
        if int(self.digests[row]) != text_digest(text):
            return None
        vocab = self.vocab
        return [vocab[i] for i in self.flat[self.offsets[row] : self.offsets[row + 1]].tolist()]

    def save(self, path: Path) -> None:
        with path.open("wb") as fh:
            # Terms hold no whitespace, so one newline-joined UTF-8 buffer stores the vocabulary
            # (a numpy str array would pad every term to the longest).
            vocab = np.frombuffer("\n".join(self.vocab).encode("utf-8"), dtype=np.uint8)
            np.savez(fh, vocab=vocab, flat=self.flat, offsets=self.offsets, digests=self.digests)

    @classmethod
    def load(cls, path: Path) -> ChunkTerms | None:
        try:
            with np.load(path, allow_pickle=False) as got:
                text = got["vocab"].tobytes().decode("utf-8")
                vocab = tuple(text.split("\n")) if text else ()
                return cls(vocab, got["flat"], got["offsets"], got["digests"])
        except (OSError, ValueError, KeyError) as exc:
            log.info("no reusable chunk terms at %s (%s)", path, exc)
            return None


def text_digest(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def _scored(terms: ChunkTerms) -> tuple[ChunkTerms, bm25s.BM25 | None, dict[str, int]]:
    """The BM25 matrix of ``terms``, computed in numpy from their ids (docs/decisions/101).

    The same numbers ``bm25s.BM25().index(corpus)`` computes (Lucene BM25, k1 1.5, b 0.75; a
    test compares them), without its Python loop over every chunk's terms: that loop and
    re-reading the chunks were most of an update at 10,000 chunks. Returns the terms with
    their vocabulary cut to the terms still used, the retriever (None without chunks) and
    each term's document frequency.
    """
    used, flat = np.unique(terms.flat, return_inverse=True)
    vocab = tuple(terms.vocab[i] for i in used.tolist())
    compact = ChunkTerms(vocab, flat.astype(np.int32).reshape(-1), terms.offsets, terms.digests)
    n = len(terms.offsets) - 1
    if n == 0:
        return compact, None, {}
    retriever = bm25s.BM25()
    lengths = np.diff(terms.offsets)
    v = max(len(vocab), 1)
    docs = np.repeat(np.arange(n, dtype=np.int64), lengths)
    keys, tf = np.unique(docs * v + compact.flat, return_counts=True)
    doc, term = np.divmod(keys, v)
    df = np.bincount(term, minlength=len(vocab))
    idf = np.array([math.log(1 + (n - d + 0.5) / (d + 0.5)) for d in df.tolist()], np.float32)
    avg = lengths.mean()
    k1, b = retriever.k1, retriever.b
    tfc = tf / (k1 * ((1 - b) + b * lengths[doc] / avg) + tf)
    order = np.lexsort((doc, term))  # column by column (CSC), as bm25s keeps it
    indptr = np.zeros(len(vocab) + 1, dtype=np.int64)
    np.cumsum(df, out=indptr[1:])
    retriever.scores = {
        "data": (idf[term] * tfc).astype(np.float32)[order],
        "indices": doc[order].astype(np.int32),
        "indptr": indptr,
        "num_docs": n,
    }
    retriever.vocab_dict = {t: i for i, t in enumerate(vocab)}
    retriever.unique_token_ids_set = set(range(len(vocab)))
    retriever.nonoccurrence_array = None
    return compact, retriever, dict(zip(vocab, df.tolist(), strict=True))


class LexicalIndex:
    """BM25 over chunk texts, with document frequencies kept for term-coverage checks."""

    def __init__(
        self,
        ids: list[str],
        sources: list[str],
        retriever: bm25s.BM25 | None,
        doc_freq: dict[str, int],
        tokenizer: Tokenizer,
        fingerprint: str = "",
        terms: ChunkTerms | Path | None = None,
        spans: Sequence[tuple[int, int]] | None = None,
        hashes: Mapping[str, str] | None = None,
    ) -> None:
        self.ids = ids
        # Each indexed document's content hash, as the store recorded it when this index was
        # made: what ``LexicalCache`` diffs to update the index incrementally (None: unknown).
        self.hashes = None if hashes is None else dict(hashes)
        self.sources = sources
        # Each chunk's (start, end) in its document, for ``neighbours`` (None: not recorded).
        self._spans = None if spans is None else np.asarray(spans, np.int64).reshape(-1, 2)
        self._in_order: dict[str, np.ndarray] = {}
        # The chunks' terms, or where they are saved: read only when a rebuild reuses them.
        self._terms = terms
        self._retriever = retriever
        self.doc_freq = doc_freq
        self.tokenizer = tokenizer
        self.fingerprint = fingerprint
        # Rows per source, so a ``within`` filter costs the rows it keeps: ``np.isin`` over an
        # object array of every chunk's source took ~2.5 ms per 5,000 chunks.
        rows: dict[str, list[int]] = {}
        for i, source in enumerate(sources):
            rows.setdefault(source, []).append(i)
        self._source_rows = {source: np.asarray(r, dtype=np.int64) for source, r in rows.items()}
        self._sorted_sources = sorted(self._source_rows)  # a prefix is a contiguous run here
        self._rows = {cid: i for i, cid in enumerate(ids)}
        # Coverage tokenizes the same question once per candidate and Kiwi costs ~1 ms per
        # short Korean text, so recent texts' tokens are kept (returned as fresh lists).
        self._tokens: OrderedDict[tuple[str, bool], tuple[str, ...]] = OrderedDict()
        self._tokens_lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.ids)

    def neighbours(self, chunk_id: str) -> tuple[str | None, str | None]:
        """Ids of the chunks just before and after ``chunk_id`` in its document.

        Read from memory: asking Chroma for them by offset takes ~0.5 s a chunk at 10,000
        chunks (its metadata filters scan). (None, None) for an unknown chunk or an index
        saved before offsets were kept.
        """
        row = self._rows.get(chunk_id)
        if row is None or self._spans is None:
            return None, None
        starts = self._spans[:, 0]
        source = self.sources[row]
        order = self._in_order.get(source)
        if order is None:
            rows = self._source_rows[source]
            order = rows[np.argsort(starts[rows], kind="stable")]
            self._in_order[source] = order
        at = int(np.searchsorted(starts[order], starts[row]))
        before = self.ids[order[at - 1]] if at > 0 else None
        after = self.ids[order[at + 1]] if at + 1 < len(order) else None
        return before, after

    def sources_under(self, prefix: str) -> list[str]:
        """The indexed sources whose path starts with ``prefix``, sorted."""
        found = []
        for source in self._sorted_sources[bisect.bisect_left(self._sorted_sources, prefix) :]:
            if not source.startswith(prefix):
                break
            found.append(source)
        return found

    @classmethod
    def build(
        cls,
        items: Iterable[tuple[str, str, str]],
        tokenizer: Tokenizer,
        fingerprint: str = "",
        previous: LexicalIndex | None = None,
        spans: Sequence[tuple[int, int]] | None = None,
        hashes: Mapping[str, str] | None = None,
    ) -> LexicalIndex:
        """Index ``(chunk_id, source, text_to_match)`` triples; ``spans`` are the chunks'
        ``(start, end)`` in their documents, in the same order (for ``neighbours``).

        Chunks that ``previous`` (an older index made with the same tokenizer) holds keep the
        terms it found for them; only the others are tokenized.
        """
        known = previous._known_terms(tokenizer) if previous is not None else None
        ids: list[str] = []
        sources: list[str] = []
        corpus: list[list[str]] = []
        digests: list[int] = []
        reused = 0
        for cid, source, text in items:
            digests.append(text_digest(text))
            tokens = known(cid, text) if known is not None else None
            if tokens is None:
                tokens = tokenizer(text)
            else:
                reused += 1
            ids.append(cid)
            sources.append(source)
            corpus.append(tokens)
        log.info(
            "lexical index: %d chunks, %d tokenized, %d reused", len(ids), len(ids) - reused, reused
        )
        if spans is not None and len(spans) != len(ids):
            raise ValueError(f"{len(spans)} spans for {len(ids)} chunks")
        terms, retriever, df = _scored(ChunkTerms.of(corpus, digests))
        return cls(ids, sources, retriever, df, tokenizer, fingerprint, terms, spans, hashes)

    def updated(
        self,
        drop: Collection[str],
        items: Sequence[tuple[str, str, str]],
        spans: Sequence[tuple[int, int]],
        fingerprint: str,
        hashes: Mapping[str, str],
    ) -> LexicalIndex | None:
        """This index without the chunks of the sources in ``drop``, plus ``items``
        (``(chunk_id, source, text)``, whose ``spans`` are given in the same order): only the
        new chunks are tokenized, and the BM25 matrix is recomputed from the kept term ids in
        numpy, with no pass over the other chunks' texts
        (docs/decisions/101-incremental-bm25.md). None if this index cannot be updated (saved
        before offsets or term ids were kept): build it instead.
        """
        terms = ChunkTerms.load(self._terms) if isinstance(self._terms, Path) else self._terms
        if terms is None or self._spans is None or len(terms.offsets) != len(self.ids) + 1:
            return None
        if len(spans) != len(items):
            raise ValueError(f"{len(spans)} spans for {len(items)} chunks")
        keep = np.fromiter((s not in drop for s in self.sources), dtype=bool, count=len(self.ids))
        kept = terms.rows(keep)
        fresh = ChunkTerms.of(
            [self.tokenizer(text) for *_, text in items],
            [text_digest(text) for *_, text in items],
            kept.vocab,
        )
        merged, retriever, df = _scored(kept.extended(fresh))
        rows = np.flatnonzero(keep).tolist()
        ids = [self.ids[i] for i in rows] + [cid for cid, _, _ in items]
        sources = [self.sources[i] for i in rows] + [source for _, source, _ in items]
        all_spans = np.vstack([self._spans[keep], np.asarray(spans, np.int64).reshape(-1, 2)])
        log.info(
            "lexical index updated: %d chunks, %d tokenized, %d reused, %d dropped",
            len(ids),
            len(items),
            len(rows),
            len(self.ids) - len(rows),
        )
        return LexicalIndex(
            ids,
            sources,
            retriever,
            df,
            self.tokenizer,
            fingerprint,
            merged,
            [(int(a), int(b)) for a, b in all_spans.tolist()],
            dict(hashes),
        )

    def _known_terms(self, tokenizer: Tokenizer) -> Callable[[str, str], list[str] | None] | None:
        """Look-up of this index's chunk terms by chunk id, if ``tokenizer`` would make them."""
        if tokenizer.korean != self.tokenizer.korean:
            return None
        terms = ChunkTerms.load(self._terms) if isinstance(self._terms, Path) else self._terms
        if terms is None or len(terms.offsets) != len(self.ids) + 1:
            return None
        rows = self._rows
        return lambda cid, text: terms.terms(rows[cid], text) if cid in rows else None

    def tokens(self, text: str, hangul: bool = True) -> list[str]:
        """``tokenizer(text, hangul)``, remembered for the last few thousand texts (each
        reading its own entry: without Hangul runs' terms, a text's terms are not all of them)."""
        if not hangul and not _HANGUL.search(text):
            hangul = True  # the same terms: one entry
        key = (text, hangul)
        with self._tokens_lock:
            hit = self._tokens.get(key)
            if hit is not None:
                self._tokens.move_to_end(key)
                return list(hit)
        fresh = tuple(self.tokenizer(text, hangul))
        with self._tokens_lock:
            self._tokens[key] = fresh
            while len(self._tokens) > _TOKEN_CACHE:
                self._tokens.popitem(last=False)
        return list(fresh)

    def contains(self, chunk_ids: Sequence[str], terms: Sequence[str]) -> list[list[bool] | None]:
        """For each chunk, whether its indexed text holds each of ``terms`` (None: not indexed).

        Read from the BM25 matrix, where a term scores above zero exactly in the chunks that
        contain it, so the reranker need not tokenize its candidates again (Kiwi takes ~10 ms
        for one Korean chunk). The answer is the same as ``t in set(tokenizer(text))``.
        """
        columns: list[np.ndarray | None] = []
        for term in terms:
            if self._retriever is None or term not in self._retriever.vocab_dict:
                columns.append(None)
            else:
                columns.append(np.asarray(self._retriever.get_scores([term])))
        out: list[list[bool] | None] = []
        for cid in chunk_ids:
            row = self._rows.get(cid)
            if row is None:
                out.append(None)
            else:
                out.append([col is not None and bool(col[row] > 0) for col in columns])
        return out

    def idf(self, term: str) -> float:
        n = max(len(self.ids), 1)
        df = self.doc_freq.get(term, 0)
        return math.log(1.0 + (n - df + 0.5) / (df + 0.5))

    def search(
        self,
        query: str,
        k: int,
        sources: Sequence[str] | None = None,
        *,
        terms: Sequence[str] | None = None,
        anchors: Sequence[str] | None = None,
    ) -> list[tuple[str, float]]:
        """Top ``k`` (chunk id, BM25 score) with a positive score, optionally within sources.

        ``terms`` and ``anchors``: the query's tokens and ``latin_anchors``, when the caller has
        read them already (``Query``, docs/decisions/030-query-read-once.md).
        """
        if self._retriever is None:
            return []
        if terms is None:
            terms = self.tokenizer(query)
        if anchors is None:
            anchors = latin_anchors(query, self.doc_freq)
        tokens = [t for t in terms if t in self._retriever.vocab_dict]
        tokens += anchors
        if not tokens:
            return []
        scores = np.asarray(self._retriever.get_scores(tokens), dtype=np.float32)
        if sources is not None:
            keep = np.zeros(len(scores), dtype=bool)
            for source in sources:
                found = self._source_rows.get(source)
                if found is not None:
                    keep[found] = True
            scores = np.where(keep, scores, 0.0)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        return [(self.ids[i], float(scores[i])) for i in top if scores[i] > 0]

    # --- persistence ----------------------------------------------------------------------

    def save(self, folder: Path, checkpoint: Callable[[str], None] | None = None) -> None:
        """Save to ``folder``; ``meta.json`` goes last, by an atomic rename, so a save cut short
        leaves the previous meta.json (and its fingerprint), which ``load`` then refuses for
        the new fingerprint (docs/decisions/080-crash-consistent-indexing.md). ``checkpoint``
        is the test-only fault hook (``faults``)."""
        folder.mkdir(parents=True, exist_ok=True)
        if self._retriever is not None:
            self._retriever.save(str(folder / "bm25"), show_progress=False)
        if checkpoint is not None:
            checkpoint("bm25")
        meta = {
            "fingerprint": self.fingerprint,
            "korean": self.tokenizer.korean,
            "ids": self.ids,
            "sources": self.sources,
            "doc_freq": self.doc_freq,
            "spans": None if self._spans is None else self._spans.tolist(),
            "hashes": self.hashes,
        }
        if isinstance(self._terms, ChunkTerms):
            self._terms.save(folder / "terms.npz.tmp")
            (folder / "terms.npz.tmp").replace(folder / "terms.npz")
        tmp = folder / "meta.json.tmp"
        tmp.write_text(json.dumps(meta), encoding="utf-8")
        tmp.replace(folder / "meta.json")

    @classmethod
    def load(
        cls, folder: Path, tokenizer: Tokenizer, fingerprint: str | None
    ) -> LexicalIndex | None:
        """The saved index if it matches ``fingerprint`` (None: any) and ``tokenizer``, else None.

        A stale index (``fingerprint=None``) still serves as ``previous`` to ``build``.
        """
        try:
            meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
            if not isinstance(meta, dict) or not isinstance(meta.get("ids"), list):
                raise ValueError("not a saved lexical index")
        except (OSError, ValueError) as exc:  # derived data: rebuilt, never fatal
            log.info("no usable lexical index at %s (%s)", folder, exc)
            return None
        if fingerprint is not None and meta.get("fingerprint") != fingerprint:
            return None
        if fingerprint is not None and "spans" not in meta:
            return None  # saved before chunk offsets were kept: rebuild (reusing its terms)
        if meta.get("korean") != tokenizer.korean:
            return None
        retriever = None
        if meta["ids"]:
            try:
                retriever = bm25s.BM25.load(str(folder / "bm25"), show_progress=False)
            except Exception as exc:  # a half-written folder: rebuild rather than fail
                log.warning("lexical index at %s unreadable (%s); rebuilding", folder, exc)
                return None
            # Arrays from a later save than meta.json (one cut short): rebuild.
            if int(retriever.scores.get("num_docs", -1)) != len(meta["ids"]):
                log.warning("lexical index at %s is half saved; rebuilding", folder)
                return None
        return cls(
            meta["ids"],
            meta["sources"],
            retriever,
            meta["doc_freq"],
            tokenizer,
            str(meta.get("fingerprint", "")),
            folder / "terms.npz",
            [(int(a), int(b)) for a, b in meta["spans"]] if meta.get("spans") else None,
            meta.get("hashes"),
        )


# --- Korean names in Latin script ------------------------------------------------------------
# Korean questions about English documents share no words with them, but they do share names:
# 대덕 is "Daedeok", 대전 "Daejeon", 서울 "Seoul". Romanising (Revised Romanization, syllable by
# syllable) every 2–3 syllable window of a question and keeping only the windows that are words
# of the index turns those names into lexical anchors. No dictionary or model is needed.
_INITIAL = "g kk n d tt r m b pp s ss _ j jj ch k t p h".split()
_MEDIAL = "a ae ya yae eo e yeo ye o wa wae oe yo u wo we wi yu eu ui i".split()
_FINAL = ["", *"k k k n n n t l k m l l l p l m p p t t ng t t k t p t".split()]


def romanize(hangul: str) -> str:
    """Revised Romanization of Hangul syllables (without sound-change rules); others dropped."""
    out = []
    for ch in hangul:
        code = ord(ch) - 0xAC00
        if not 0 <= code < 11172:
            continue
        initial, rest = divmod(code, 588)
        medial, final = divmod(rest, 28)
        out.append(_INITIAL[initial].replace("_", "") + _MEDIAL[medial] + _FINAL[final])
    return "".join(out)


def latin_anchors(text: str, vocabulary: Mapping[str, int]) -> list[str]:
    """Index terms that Korean words in ``text`` spell when romanised (e.g. 대덕 → daedeok)."""
    anchors: list[str] = []
    for run in re.findall(f"[{HANGUL_SYLLABLES}]+", text):
        for size in (2, 3):
            for i in range(len(run) - size + 1):
                candidates = {romanize(run[i : i + size])}
                for term in _stemmer().stemWords(sorted(candidates)):
                    if term in vocabulary and term not in anchors:
                        anchors.append(term)
    return anchors
