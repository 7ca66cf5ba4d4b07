"""What policy-qa needs from a document store: the ``Store`` protocol and the values it takes.

A store keeps each document's cleaned text (what every citation's offsets refer to), its chunks
with one vector per dense model, and the vectors of each chunk's sentences; it finds the chunks
nearest to a query vector. Two implementations:

- ``chroma_store.ChromaStore``: Chroma, embedded in a folder or a ``chroma run`` server (the
  product; the only module that imports ``chromadb``);
- ``memory_store.InMemoryStore``: plain dicts and numpy in this process (fast unit tests, and
  indexes that need not outlive the process).

Writes are crash-consistent (docs/decisions/080-crash-consistent-indexing.md): a document is
first recorded as *pending*, then its chunks and sentence vectors are written, then its record
says *complete*. A write cut short leaves a pending record, never chunks that look indexed:
reads skip every chunk whose document is not complete (``documents``, ``search``,
``get_chunks``, ``iter_chunks``), and ``purge_incomplete`` removes them.

This module must not import a database: it only says what a store does.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .types import Chunk, Document, DocumentInfo

__all__ = [
    "COMPLETE",
    "PENDING",
    "DocumentItem",
    "SentenceVectors",
    "Store",
    "document_info",
    "document_record",
    "is_complete",
    "pending_record",
]

# One document to write: the document, its chunks, each model's chunk vectors (one row per
# chunk, in order) and the folder it was indexed from ("root": a file deleted from that folder
# is removed from the index).
DocumentItem = tuple[Document, Sequence[Chunk], Mapping[str, np.ndarray], str]

# A document record's "state". Records written before states existed have none: complete.
PENDING = "pending"
COMPLETE = "complete"


@dataclass(frozen=True)
class SentenceVectors:
    """The sentences of a run of chunks, to be written next to them.

    ``spans[i]`` are chunk ``i``'s sentences as ``(start, end)`` offsets into ``chunk.text``;
    ``vectors[model]`` holds one row per span, chunk by chunk and span by span, leaving out
    the chunks in ``skipped[model]``: chunks whose sentences that model is not asked to score
    at index time (their vectors are made when a question needs them;
    docs/decisions/100-indexing-profile-and-speed.md).
    """

    spans: tuple[tuple[tuple[int, int], ...], ...]
    vectors: Mapping[str, np.ndarray]
    skipped: Mapping[str, frozenset[int]] = field(default_factory=dict)

    def rows(self, model: str, chunks: Sequence[Chunk]) -> list[tuple[str, Chunk, int, int]]:
        """(sentence id, chunk, start, end) of every row of ``vectors[model]``, in order;
        raises ValueError when the rows and the spans disagree."""
        if len(self.spans) != len(chunks):
            raise ValueError(f"sentence spans for {len(self.spans)} of {len(chunks)} chunks")
        skipped = self.skipped.get(model, frozenset())
        out = [
            (f"{chunk.id}:{i}", chunk, start, end)
            for n, (chunk, spans) in enumerate(zip(chunks, self.spans, strict=True))
            if n not in skipped
            for i, (start, end) in enumerate(spans)
        ]
        if len(self.vectors[model]) != len(out):
            raise ValueError(
                f"{model}: {len(self.vectors[model])} sentence vectors for {len(out)} spans"
            )
        return out


@runtime_checkable
class Store(Protocol):
    """Documents, chunk vectors and sentence vectors; what indexing, the lexical cache and
    retrieval read and write. Writes replace by source; reads of ids that are gone skip them.

    >>> store.write_documents([(doc, chunks, {"minilm": vectors}, "/data")])
    >>> store.search("minilm", query_vector, k=5)  # [(chunk id, chunk, cosine), ...]
    """

    location: str  # where it lives, for messages: a folder, a server URL, ":memory:"

    def documents(self) -> list[DocumentInfo]:
        """Every completely stored document, sorted by source."""
        ...

    def document_meta(self) -> dict[str, dict[str, Any]]:
        """source -> metadata (``document_record``: hash, root, ...) of every complete document."""
        ...

    def document_text(self, source: str) -> str | None:
        """The cleaned text of ``source`` (None when it is not completely stored)."""
        ...

    def document_texts(self, sources: Sequence[str]) -> dict[str, str]:
        """The cleaned text of several documents at once (sources that are gone are absent)."""
        ...

    def write_documents(
        self, items: Sequence[DocumentItem], sentences: SentenceVectors | None = None
    ) -> None:
        """Replace whatever was stored for each item's source with the item; ``sentences``, if
        given, covers every chunk of ``items`` in order. Records go pending, then the chunks,
        then the records complete."""
        ...

    def delete_document(self, source: str) -> int:
        """Remove a document, its chunks and their sentences, whether or not it has a complete
        record (chunks a cut-short write left go too); returns how many chunks went."""
        ...

    def purge_incomplete(self) -> list[str]:
        """Remove what cut-short writes left: the chunks and records of pending documents (and
        chunks with no record at all); returns their sources. Writes still running in another
        process are left alone."""
        ...

    def count(self) -> int:
        """How many chunks are stored (those of pending documents too)."""
        ...

    def chunk_ids(self) -> set[str]:
        """The ids of every stored chunk (those of pending documents too): what a saved lexical
        index is checked against."""
        ...

    def fingerprint(self) -> str:
        """A value that changes whenever any document is added, changed or removed (by anyone
        sharing the store), and only then: the lexical index is rebuilt when it changes."""
        ...

    def iter_chunks(self) -> Iterable[tuple[str, Chunk]]:
        """Every chunk of a complete document, with its id (for building the lexical index)."""
        ...

    def get_chunks(self, ids: Sequence[str]) -> dict[str, Chunk]:
        """Chunks by id (ids that are gone, or whose document is not complete, are absent)."""
        ...

    def chunks_of(self, sources: Sequence[str]) -> list[tuple[str, Chunk]]:
        """The chunks of some documents, with their ids (documents not complete have none):
        what an incremental update of the lexical index reads (decision 101)."""
        ...

    def sentence_vectors(
        self, model: str, chunks: Mapping[str, int]
    ) -> dict[str, list[tuple[int, int, np.ndarray]]]:
        """Stored sentences of some chunks: chunk id -> [(start, end, vector)] in text order.

        ``chunks`` maps each chunk id to how many sentences it has now; chunks stored without
        sentence vectors are absent, and the caller embeds their sentences itself.
        """
        ...

    def search(
        self,
        model: str,
        query_vector: Sequence[float],
        k: int,
        sources: Sequence[str] | None = None,
    ) -> list[tuple[str, Chunk, float]]:
        """Nearest chunks of complete documents to ``query_vector`` as (id, chunk, cosine
        similarity), best first; ``sources`` restricts the search to those documents (an empty
        list finds nothing)."""
        ...


def document_record(doc: Document, chunks: int, root: str, indexed_at: str) -> dict[str, Any]:
    """The metadata every store keeps for a complete document (flat, so Chroma can hold it)."""
    return {
        "state": COMPLETE,
        "source": doc.source,
        "title": doc.title,
        "language": doc.language,
        "hash": doc.content_hash,
        "root": root,
        "chunks": chunks,
        "sections": json.dumps([[s.title, s.start, s.end] for s in doc.sections]),
        "indexed_at": indexed_at,
    }


def pending_record(source: str, since: float) -> dict[str, Any]:
    """The record of a document being written (``since``: when, in seconds since the epoch)."""
    return {"state": PENDING, "source": source, "pending_since": since}


def is_complete(meta: Mapping[str, Any] | None) -> bool:
    """Whether a document record (None: no record) says the document is completely stored."""
    return meta is not None and meta.get("state", COMPLETE) != PENDING


def document_info(meta: Mapping[str, Any]) -> DocumentInfo:
    """A documents-view row from a ``document_record``."""
    return DocumentInfo(
        source=str(meta["source"]),
        title=str(meta.get("title", "")),
        chunks=int(meta.get("chunks", 0)),
        indexed_at=str(meta.get("indexed_at", "")),
        language=str(meta.get("language", "en")),
    )
