"""``InMemoryStore``: the ``Store`` in plain dicts and numpy, inside this process.

For fast unit tests (no database, no files) and indexes that need not outlive the process. It
searches exactly (every chunk's cosine), where Chroma's HNSW search is approximate: on a
small corpus the two agree. Nothing here is shared with another process, so its fingerprint
changes only with this process's own writes. Writes pass the same pending -> chunks -> complete
steps as Chroma's (``store``), so a write cut short (an exception at a checkpoint) leaves the
same state, and the contract tests hold both stores to it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from .faults import Checkpoint
from .store import (
    DocumentItem,
    SentenceVectors,
    document_info,
    document_record,
    is_complete,
    pending_record,
)
from .types import Chunk, DocumentInfo, content_id

__all__ = ["InMemoryStore"]


class InMemoryStore:
    """Documents and chunk vectors in memory (a ``store.Store``).

    >>> store = InMemoryStore(("minilm", "use"))
    >>> store.write_documents([(doc, chunks, {"minilm": m, "use": u}, "/data")])
    >>> Assistant(settings=settings, store=store, embeddings=models)
    """

    def __init__(
        self, models: Sequence[str] = ("minilm", "use"), checkpoint: Checkpoint | None = None
    ) -> None:
        if not models:
            raise ValueError("InMemoryStore needs at least one dense model name")
        self.location = ":memory:"
        self._models = tuple(models)
        self._checkpoint = checkpoint or (lambda boundary: None)
        self._texts: dict[str, str] = {}  # source -> cleaned text
        self._meta: dict[str, dict[str, Any]] = {}  # source -> document_record
        self._chunks: dict[str, Chunk] = {}  # chunk id -> chunk, in write order
        self._vectors: dict[str, dict[str, np.ndarray]] = {m: {} for m in self._models}
        # model -> sentence id ("CHUNKID:i") -> (chunk id, start, end, vector)
        self._sentences: dict[str, dict[str, tuple[str, int, int, np.ndarray]]] = {
            m: {} for m in self._models
        }
        self._revision = uuid.uuid4().hex

    # --- documents ------------------------------------------------------------------------

    def documents(self) -> list[DocumentInfo]:
        rows = (document_info(m) for m in self._meta.values() if is_complete(m))
        return sorted(rows, key=lambda d: d.source)

    def document_meta(self) -> dict[str, dict[str, Any]]:
        return {source: dict(meta) for source, meta in self._meta.items() if is_complete(meta)}

    def document_text(self, source: str) -> str | None:
        return self.document_texts([source]).get(source)

    def document_texts(self, sources: Sequence[str]) -> dict[str, str]:
        return {s: self._texts[s] for s in sources if s in self._texts and self._complete(s)}

    def _complete(self, source: str) -> bool:
        return is_complete(self._meta.get(source))

    def write_documents(
        self, items: Sequence[DocumentItem], sentences: SentenceVectors | None = None
    ) -> None:
        if not items:
            return
        all_chunks = [c for _, chunks, _, _ in items for c in chunks]
        if sentences is not None and len(sentences.spans) != len(all_chunks):
            raise ValueError(
                f"sentence spans for {len(sentences.spans)} of {len(all_chunks)} chunks"
            )
        sources = [doc.source for doc, _, _, _ in items]
        since = time.time()
        for source in sources:
            self._meta[source] = pending_record(source, since)
            self._texts.pop(source, None)
        self._touch()
        self._checkpoint("pending")
        self._delete_chunks(sources)
        for chunk in all_chunks:
            self._chunks[chunk.id] = chunk
        for model in self._models:
            for _, chunks, vectors, _ in items:
                rows = np.asarray(vectors[model], dtype=np.float32).reshape(len(chunks), -1)
                for chunk, row in zip(chunks, rows, strict=True):
                    self._vectors[model][chunk.id] = row
            self._checkpoint(f"vectors:{model}")
        if sentences is not None:
            self._write_sentences(all_chunks, sentences)
        self._checkpoint("sentences")
        now = datetime.now(UTC).isoformat(timespec="seconds")
        for doc, chunks, _, root in items:
            self._texts[doc.source] = doc.text
            self._meta[doc.source] = document_record(doc, len(chunks), root, now)
        self._checkpoint("records")
        self._touch()
        self._checkpoint("revision")

    def _write_sentences(self, chunks: Sequence[Chunk], sentences: SentenceVectors) -> None:
        for model in self._models:
            rows = sentences.rows(model, chunks)
            matrix = np.asarray(sentences.vectors[model], dtype=np.float32)
            for (sid, chunk, start, end), row in zip(rows, matrix, strict=True):
                self._sentences[model][sid] = (chunk.id, start, end, row)

    def _delete_chunks(self, sources: Sequence[str]) -> int:
        doomed = set(sources)
        gone = {cid for cid, c in self._chunks.items() if c.source in doomed}
        for cid in gone:
            del self._chunks[cid]
        for model in self._models:
            for cid in gone:
                self._vectors[model].pop(cid, None)
            rows = self._sentences[model]
            for sid in [sid for sid, row in rows.items() if row[0] in gone]:
                del rows[sid]
        return len(gone)

    def delete_document(self, source: str) -> int:
        known = source in self._meta
        if known:
            self._meta[source] = pending_record(source, time.time())
        removed = self._delete_chunks([source])
        self._texts.pop(source, None)
        self._meta.pop(source, None)
        if known or removed:
            self._touch()
        return removed

    def purge_incomplete(self) -> list[str]:
        pending = {s for s, meta in self._meta.items() if not is_complete(meta)}
        orphans = {c.source for c in self._chunks.values() if c.source not in self._meta}
        doomed = sorted(pending | orphans)
        for source in doomed:
            self.delete_document(source)
        return doomed

    # --- chunks ---------------------------------------------------------------------------

    def count(self) -> int:
        return len(self._chunks)

    def chunk_ids(self) -> set[str]:
        return set(self._chunks)

    def sentence_count(self, model: str) -> int:
        """How many sentence vectors of ``model`` are stored."""
        return len(self._sentences.get(model, {}))

    def _touch(self) -> None:
        self._revision = uuid.uuid4().hex

    def fingerprint(self) -> str:
        return content_id("revision", self._revision)

    def iter_chunks(self) -> Iterable[tuple[str, Chunk]]:
        return [(cid, c) for cid, c in self._chunks.items() if self._complete(c.source)]

    def get_chunks(self, ids: Sequence[str]) -> dict[str, Chunk]:
        found = {cid: self._chunks[cid] for cid in ids if cid in self._chunks}
        return {cid: c for cid, c in found.items() if self._complete(c.source)}

    def chunks_of(self, sources: Sequence[str]) -> list[tuple[str, Chunk]]:
        wanted = {s for s in sources if self._complete(s)}
        return [(cid, c) for cid, c in self._chunks.items() if c.source in wanted]

    def sentence_vectors(
        self, model: str, chunks: Mapping[str, int]
    ) -> dict[str, list[tuple[int, int, np.ndarray]]]:
        rows = self._sentences.get(model, {})
        out: dict[str, list[tuple[int, int, np.ndarray]]] = {}
        for cid, n in chunks.items():
            for i in range(n):
                row = rows.get(f"{cid}:{i}")
                if row is not None:
                    out.setdefault(cid, []).append((row[1], row[2], row[3]))
        for spans in out.values():
            spans.sort(key=lambda r: r[0])
        return out

    def search(
        self,
        model: str,
        query_vector: Sequence[float],
        k: int,
        sources: Sequence[str] | None = None,
    ) -> list[tuple[str, Chunk, float]]:
        if sources is not None and not sources:
            return []
        wanted = None if sources is None else set(sources)
        ids = [
            cid
            for cid in self._vectors[model]
            if (wanted is None or self._chunks[cid].source in wanted)
            and self._complete(self._chunks[cid].source)
        ]
        if not ids:
            return []
        matrix = np.vstack([self._vectors[model][cid] for cid in ids])
        query = np.asarray(query_vector, dtype=np.float32)
        norms = np.linalg.norm(matrix, axis=1) * max(float(np.linalg.norm(query)), 1e-12)
        sims = matrix @ query / np.maximum(norms, 1e-12)
        order = np.argsort(-sims, kind="stable")[:k]
        return [(ids[i], self._chunks[ids[i]], float(sims[i])) for i in order]
