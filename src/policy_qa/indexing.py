"""Indexing: files on disk into a ``Store``, incrementally.

    paths ─▶ load + clean ─▶ diff against the store (content hashes) ─▶ chunk ─▶ embed
          (chunks and their sentences, every dense model) ─▶ Store.write_documents

It owns what changes in the store when folders are indexed again: unchanged files are left
alone, changed files replace their chunks, files gone from an indexed folder lose theirs. It
does not keep the lexical index in step (``lexical_cache`` does, after a change) and does not
answer anything.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

from .embeddings import encode, twin_of
from .ingest import Limits, chunk_document, load_paths, split_sentences
from .ingest.load import resolve_path
from .similarity import SENTENCE_LANGUAGES, SentenceScorer
from .store import DocumentItem, SentenceVectors, Store
from .text import LATIN_RUN
from .types import Chunk, Document, IndexReport, Progress

__all__ = [
    "EMBED_BATCH",
    "SENTENCE_LANGUAGES",
    "Progress",
    "embed_sentences",
    "embedding_text",
    "index_paths",
]

log = logging.getLogger(__name__)

EMBED_BATCH = 64  # chunks per embed+write: amortises per-call costs, yet progress moves often


def index_paths(
    store: Store,
    embeddings: Mapping[str, Embeddings],
    paths: Sequence[str | Path],
    *,
    chunk_size: int,
    chunk_min: int,
    progress: Progress | None = None,
    limits: Limits | None = None,
) -> IndexReport:
    """Add or update the documents at ``paths`` (files or folders, recursively) in ``store``.

    Unchanged files are left alone, changed files replace their old chunks, and files that
    were deleted from an indexed folder lose theirs. Unreadable, empty or unsupported files
    are reported in ``IndexReport.skipped``; the rest still index.

    >>> index_paths(store, {"minilm": emb}, ["corpus/"], chunk_size=700, chunk_min=200).added
    ('daedeok-and-national-innovation-cluster.txt',)
    """
    began = time.perf_counter()
    if isinstance(paths, str | Path):
        paths = [paths]
    docs, skipped = load_paths(paths, progress=_stage(progress, "reading"), limits=limits)
    roots = [resolve_path(p) for p in paths]  # a link loop is reported, not raised
    folder_roots = [r for r in roots if r.is_dir()]
    stored = store.document_meta()

    todo: list[tuple[Document, str]] = []
    unchanged: list[str] = []
    added: list[str] = []
    updated: list[str] = []
    seen: set[str] = set()
    for doc in docs:
        seen.add(doc.source)
        root = _root_of(Path(doc.path), roots)
        meta = stored.get(doc.source)
        if meta and meta.get("hash") == doc.content_hash:
            unchanged.append(doc.source)
            continue
        (updated if meta else added).append(doc.source)
        todo.append((doc, root))

    # A file gone from a folder we index is gone from the index too.
    removed = [
        source
        for source, meta in stored.items()
        if source not in seen and any(str(meta.get("root", "")) == str(r) for r in folder_roots)
    ]
    for source in removed:
        store.delete_document(source)

    planned = [(doc, root, chunk_document(doc, chunk_size, chunk_min)) for doc, root in todo]
    total_chunks = _embed_and_write(store, embeddings, planned, progress)
    report = IndexReport(
        added=tuple(added),
        updated=tuple(updated),
        unchanged=tuple(unchanged),
        removed=tuple(removed),
        skipped=tuple(skipped),
        chunks=total_chunks,
        seconds=time.perf_counter() - began,
    )
    log.info(
        "indexed: %d added, %d updated, %d unchanged, %d removed, %d skipped, %d chunks",
        len(added),
        len(updated),
        len(unchanged),
        len(removed),
        len(skipped),
        total_chunks,
    )
    return report


def _embed_and_write(
    store: Store,
    embeddings: Mapping[str, Embeddings],
    planned: Sequence[tuple[Document, str, list[Chunk]]],
    progress: Progress | None,
) -> int:
    """Embed the planned chunks (and their sentences) and write them, ``EMBED_BATCH`` chunks of
    whole documents at a time; returns how many chunks were written."""
    total = sum(len(chunks) for _, _, chunks in planned)
    done = 0
    batch: list[tuple[Document, str, list[Chunk]]] = []

    def flush() -> None:
        nonlocal done
        flat = [c for _, _, chunks in batch for c in chunks]
        label = f"embedding {batch[-1][0].source}"
        # One document may be 20,000 chunks (max_document_chunks), minutes of embedding: it
        # is embedded EMBED_BATCH chunks at a time with progress after each, and still written
        # in one write (docs/decisions/086-large-documents-embedded-in-slices.md).
        pieces = []
        for start in range(0, max(len(flat), 1), EMBED_BATCH):
            pieces.append(_embed(embeddings, flat[start : start + EMBED_BATCH], pool))
            end = start + EMBED_BATCH
            if progress and end < len(flat):  # the write below reports the last slice
                progress(done + end, total, label)
        vectors = {m: _stack([v for v, _ in pieces], m) for m in embeddings}
        sentences = SentenceVectors(
            spans=tuple(span for _, s in pieces for span in s.spans),
            vectors={m: _stack([s.vectors for _, s in pieces], m) for m in embeddings},
            skipped=_shifted([s for _, s in pieces], embeddings),
        )
        items: list[DocumentItem] = []
        offset = 0
        for doc, root, chunks in batch:
            n = len(chunks)
            items.append(
                (doc, chunks, {m: v[offset : offset + n] for m, v in vectors.items()}, root)
            )
            offset += n
        store.write_documents(items, sentences)
        done += offset
        if progress:
            progress(done, total, label)
        batch.clear()

    pending = 0
    with ThreadPoolExecutor(max_workers=max(2 * len(embeddings), 1)) as pool:
        for doc, root, chunks in planned:
            batch.append((doc, root, chunks))
            pending += len(chunks)
            if pending >= EMBED_BATCH:
                flush()
                pending = 0
        if batch:
            flush()
    return total


def _shifted(parts: Sequence[SentenceVectors], models: Iterable[str]) -> dict[str, frozenset[int]]:
    """The slices' skipped chunks, numbered across all of them."""
    out: dict[str, set[int]] = {m: set() for m in models}
    offset = 0
    for part in parts:
        for model, rows in part.skipped.items():
            out.setdefault(model, set()).update(offset + i for i in rows)
        offset += len(part.spans)
    return {m: frozenset(rows) for m, rows in out.items() if rows}


_Pairs = list[tuple[Chunk, Sequence[tuple[int, int]]]]  # chunks with their sentence spans


def _embed(
    embeddings: Mapping[str, Embeddings], chunks: Sequence[Chunk], pool: ThreadPoolExecutor
) -> tuple[dict[str, np.ndarray], SentenceVectors]:
    """Every model's vectors of ``chunks`` and of their sentences, all side by side.

    Each job runs on its own thread with one CPU thread: MiniLM with torch's whole pool on
    two cores spent 1.6x (chunks) to 3.8x (sentences) the CPU time of one thread for the same
    vectors. A model's chunk pass and sentence pass are two lanes: its sentence pass runs on
    its twin (a second instance), beside its chunk pass, so both cores stay busy
    (docs/decisions/100-indexing-profile-and-speed.md).
    """
    spans = tuple(tuple(split_sentences(c.text)) for c in chunks)
    skipped = {
        m: frozenset(i for i, c in enumerate(chunks) if c.language not in languages)
        for m, languages in SENTENCE_LANGUAGES.items()
        if m in embeddings
    }

    def timed(model: str, what: str, work: Callable[[], np.ndarray]) -> np.ndarray:
        began = time.thread_time()
        out = work()
        # What each pass cost, for benchmarks/bench_indexing.py --profile (cProfile does not
        # see these threads).
        log.debug(
            "%s %s: %d rows in %.2f s of CPU", model, what, len(out), time.thread_time() - began
        )
        return out

    def kept(model: str) -> _Pairs:
        skip = skipped.get(model, frozenset())
        return [(c, p) for i, (c, p) in enumerate(zip(chunks, spans, strict=True)) if i not in skip]

    def chunk_pass(model: str, on: Embeddings) -> np.ndarray:
        texts = [embedding_text(c, model) for c in chunks]
        return timed(model, "chunks", lambda: encode(on, texts, threads=1))

    def sentence_pass(model: str, on: Embeddings, pairs: _Pairs) -> np.ndarray:
        return timed(model, "sentences", lambda: _encode_sentences(on, pairs))

    def both_passes(model: str, pairs: _Pairs) -> tuple[np.ndarray, np.ndarray]:
        emb = embeddings[model]
        return chunk_pass(model, emb), sentence_pass(model, emb, pairs)

    # A model with a twin (MiniLM, USE) runs its chunk pass beside its sentence pass on the
    # twin. A model with no sentences to embed here (MiniLM on Korean chunks, whose chunk
    # texts are then their Latin runs: a few word pieces each), or a LangChain ``Embeddings``
    # without a twin (whose calls need not be safe to make at once), runs its two passes one
    # after the other in one job. Each model's entry collects its own result.
    results: dict[str, Callable[[], tuple[np.ndarray, np.ndarray]]] = {}
    for m, emb in embeddings.items():
        twin, pairs = twin_of(emb), kept(m)
        if twin is emb or not pairs:
            results[m] = pool.submit(both_passes, m, pairs).result
        else:
            whole = pool.submit(chunk_pass, m, emb)
            parts = pool.submit(sentence_pass, m, twin, pairs)
            results[m] = partial(_collected, whole, parts)
    vectors: dict[str, np.ndarray] = {}
    sentence_vectors: dict[str, np.ndarray] = {}
    for m, result in results.items():
        vectors[m], sentence_vectors[m] = result()
    return vectors, SentenceVectors(spans, sentence_vectors, skipped)


def _collected(
    chunks: Future[np.ndarray], sentences: Future[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """A model's chunk vectors and its sentence vectors, when both are done."""
    return chunks.result(), sentences.result()


def _encode_sentences(
    model: Embeddings, chunks: Sequence[tuple[Chunk, Sequence[tuple[int, int]]]]
) -> np.ndarray:
    """One model's vectors of the given sentences of ``chunks``, row by row."""
    texts = [c.text[s:e] for c, pairs in chunks for s, e in pairs]
    # Headings and boilerplate repeat across chunks: embed each distinct sentence once.
    unique = list(dict.fromkeys(texts))
    where = {text: i for i, text in enumerate(unique)}
    rows = np.asarray([where[t] for t in texts], dtype=np.intp)
    return encode(model, unique, threads=1)[rows]


def _stack(parts: Sequence[Mapping[str, np.ndarray]], model: str) -> np.ndarray:
    """One model's rows from every slice, in order (a slice with no rows adds none)."""
    rows = [p[model] for p in parts if len(p[model])]
    return np.vstack(rows) if rows else parts[0][model]


def embed_sentences(
    embeddings: Mapping[str, Embeddings], chunks: Sequence[Chunk]
) -> SentenceVectors:
    """Every sentence of ``chunks`` embedded by every model, for the store to keep.

    The spans come from ``split_sentences``, the function the reranker and the answerer use,
    so the stored vectors belong to exactly the texts they will be looked up by.
    """
    spans = tuple(tuple(split_sentences(c.text)) for c in chunks)
    pairs = list(zip(chunks, spans, strict=True))
    return SentenceVectors(spans, {m: _encode_sentences(e, pairs) for m, e in embeddings.items()})


def embedding_text(chunk: Chunk, model: str | None = None) -> str:
    """What the dense models embed for a chunk: its text, after its section heading when the
    text does not repeat it (the heading tells the model what "It will be comprised of 20
    specialists..." is about).

    With ``model``: what that model embeds, the same unless the model does not read the
    chunk's language (``SENTENCE_LANGUAGES``: MiniLM, an English model, on Korean text), which
    embeds only the runs it reads, the Latin and digit runs (``text.LATIN_RUN``), space-joined
    ("" when there are none). Its vector of the whole text was the cost of Korean indexing and
    read only that, in the first ~100 syllables that fit its 256 word pieces
    (docs/decisions/100-indexing-profile-and-speed.md, "Korean, sixth session").

    >>> embedding_text(korean_chunk, "minilm")
    'KAIST 1973 (DNA-2,'
    """
    if chunk.section and chunk.section not in chunk.text[:200]:
        text = f"{chunk.section}\n{chunk.text}"
    else:
        text = chunk.text
    if model is None or SentenceScorer.reads(model, chunk.language):
        return text
    return " ".join(LATIN_RUN.findall(text))


def _root_of(path: Path, roots: Sequence[Path]) -> str:
    for root in roots:
        if root.is_dir() and path.is_relative_to(root):
            return str(root)
    return str(path.parent)


def _stage(progress: Progress | None, label: str) -> Progress | None:
    if progress is None:
        return None
    return lambda done, total, name: progress(done, total, f"{label} {name}")
