"""Domain objects shared by every stage, as frozen dataclasses.

This module owns the shapes that flow from files to answers. It imports only the standard
library so that every other module may depend on it; it must not grow behaviour beyond small,
pure helpers (ids, serialisation).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = [
    "Answer",
    "Chunk",
    "Citation",
    "Document",
    "DocumentInfo",
    "IndexReport",
    "Passage",
    "Progress",
    "Section",
    "Skipped",
    "content_id",
]


# How long work reports how far it is: (done, total, what is being worked on).
Progress = Callable[[int, int, str], None]


def content_id(*parts: str) -> str:
    """A stable id derived from content: the same inputs always give the same id."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()[:32]


@dataclass(frozen=True)
class Section:
    """A heading and the span of cleaned text it governs (``text[start:end]``)."""

    title: str
    start: int
    end: int


@dataclass(frozen=True)
class Document:
    """One source file after loading and cleaning.

    ``source`` is the path relative to the folder it was indexed from (POSIX separators);
    ``text`` is the cleaned text that every offset in the system refers to.
    """

    source: str
    title: str
    text: str
    sections: tuple[Section, ...] = ()
    language: str = "en"
    path: str = ""  # absolute path on the machine that indexed it; informational only

    @property
    def id(self) -> str:
        return content_id("doc", self.source)

    @property
    def content_hash(self) -> str:
        return content_id("text", self.title, self.text)

    def section_at(self, offset: int) -> str:
        """The title of the innermost section that contains ``offset`` ("" if none)."""
        found = ""
        for section in self.sections:
            if section.start <= offset < section.end:
                found = section.title
        return found


@dataclass(frozen=True)
class Chunk:
    """A span of a document's cleaned text: ``text == document.text[start:end]``."""

    source: str
    title: str
    section: str
    start: int
    end: int
    text: str
    language: str = "en"

    @property
    def doc_id(self) -> str:
        return content_id("doc", self.source)

    @property
    def id(self) -> str:
        # The id covers where the chunk sits and what it says, so re-indexing unchanged
        # files yields the same ids and a changed file yields new ones.
        return content_id("chunk", self.source, str(self.start), str(self.end), self.text)


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with the score that ranked it (higher is better).

    ``chunk`` may be a window: the ranked chunk widened by its neighbours in the document
    (``Retriever.widen``). ``focus`` is then the ranked chunk's ``(start, end)`` in the
    document, and ``focus_text`` its text; without a window both are the whole chunk.
    """

    chunk: Chunk
    score: float
    scores: tuple[tuple[str, float], ...] = ()  # per-retriever evidence, for reports
    focus: tuple[int, int] | None = None

    @property
    def focus_span(self) -> tuple[int, int]:
        return self.focus or (self.chunk.start, self.chunk.end)

    @property
    def focus_text(self) -> str:
        start, end = self.focus_span
        return self.chunk.text[start - self.chunk.start : end - self.chunk.start]

    def narrowed(self) -> Passage:
        """This passage as its ranked chunk alone (itself when it is not a window)."""
        if self.focus is None:
            return self
        start, end = self.focus
        chunk = replace(self.chunk, start=start, end=end, text=self.focus_text)
        return replace(self, chunk=chunk, focus=None)

    def to_dict(self) -> dict[str, Any]:
        c = self.chunk
        return {
            "source": c.source,
            "title": c.title,
            "section": c.section,
            "start": c.start,
            "end": c.end,
            "text": c.text,
            "score": round(float(self.score), 6),
            "focus": list(self.focus_span),
        }


@dataclass(frozen=True)
class Citation:
    """A verbatim quote: ``quote == cleaned text of source[start:end]``."""

    n: int
    source: str
    title: str
    section: str
    start: int
    end: int
    quote: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "source": self.source,
            "title": self.title,
            "section": self.section,
            "start": self.start,
            "end": self.end,
            "quote": self.quote,
        }


@dataclass(frozen=True)
class Answer:
    """What the assistant says to one question."""

    question: str
    answer: str
    abstained: bool
    citations: tuple[Citation, ...] = ()
    passages: tuple[Passage, ...] = ()
    backend: str = "extractive"
    notes: tuple[str, ...] = field(default=())  # e.g. verification flags, fallbacks taken
    retrieval_query: str = ""
    confidence: float = 0.0  # the evidence score the refusal decision was made on

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.answer,
            "abstained": self.abstained,
            "citations": [c.to_dict() for c in self.citations],
            "passages": [p.to_dict() for p in self.passages],
            "backend": self.backend,
            "notes": list(self.notes),
            "retrieval_query": self.retrieval_query,
            "confidence": round(float(self.confidence), 6),
        }


@dataclass(frozen=True)
class Skipped:
    """A file that could not be indexed, and why (said so a person can fix it)."""

    path: str
    reason: str


@dataclass(frozen=True)
class IndexReport:
    """What one call to ``Assistant.index`` did."""

    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    chunks: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": list(self.added),
            "updated": list(self.updated),
            "unchanged": list(self.unchanged),
            "removed": list(self.removed),
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "chunks": self.chunks,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class DocumentInfo:
    """A row of the documents view: what is indexed."""

    source: str
    title: str
    chunks: int
    indexed_at: str
    language: str = "en"
