"""Domain objects shared by every stage, as frozen dataclasses.

This module owns the shapes that flow from files to answers. It imports only the standard
library so that every other module may depend on it; it must not grow behaviour beyond small,
pure helpers (ids, serialisation).
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = [
    "Answer",
    "Chunk",
    "Citation",
    "Document",
    "DocumentInfo",
    "IndexReport",
    "Pages",
    "Passage",
    "Progress",
    "Section",
    "Skipped",
    "content_id",
    "page_label",
    "page_span",
]

# (page number, offset in the document's cleaned text where that page starts), in order; ()
# for a source without pages (text, Markdown, HTML, a Word file with no page breaks).
Pages = tuple[tuple[int, int], ...]


# How long work reports how far it is: (done, total, what is being worked on).
Progress = Callable[[int, int, str], None]


def content_id(*parts: str) -> str:
    """A stable id derived from content: the same inputs always give the same id."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()[:32]


def page_span(pages: Pages, start: int, end: int) -> tuple[int | None, int | None]:
    """The first and last page of ``text[start:end]``: ``(None, None)`` without pages.

    >>> page_span(((1, 0), (2, 40)), 30, 50)
    (1, 2)
    """
    if not pages:
        return None, None
    offsets = [offset for _, offset in pages]

    def at(offset: int) -> int:
        # A page whose text was all dropped starts where the next one does: the later wins.
        return pages[max(bisect.bisect_right(offsets, offset) - 1, 0)][0]

    return at(start), at(max(start, end - 1))


def page_label(page: int | None, page_end: int | None = None) -> str:
    """How pages are shown to people: "p. 12", "pp. 12–13", or "" without a page.

    >>> page_label(12), page_label(12, 13), page_label(None)
    ('p. 12', 'pp. 12–13', '')
    """
    if page is None:
        return ""
    if page_end is None or page_end == page:
        return f"p. {page}"
    return f"pp. {page}–{page_end}"


def _joined_pages(groups: Iterable[Pages]) -> Pages:
    return tuple(sorted({mark for pages in groups for mark in pages}))


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
    # Where each page starts in ``text``: ``page_starts[i]`` is page i + 1's offset, the first
    # is 0; () without pages (docs/decisions/093-page-level-citations.md).
    page_starts: tuple[int, ...] = ()

    @property
    def id(self) -> str:
        return content_id("doc", self.source)

    @property
    def content_hash(self) -> str:
        # Page starts count only when there are some, so a document without pages keeps the
        # hash it had before pages existed, and a PDF indexed before gains them on re-indexing.
        pages = ",".join(map(str, self.page_starts))
        return content_id("text", self.title, self.text, *([pages] if pages else []))

    @property
    def pages(self) -> Pages:
        return tuple((i + 1, offset) for i, offset in enumerate(self.page_starts))

    def pages_between(self, start: int, end: int) -> Pages:
        """The pages that ``text[start:end]`` touches, each with the offset where it starts."""
        first, last = page_span(self.pages, start, end)
        if first is None or last is None:
            return ()
        return tuple(mark for mark in self.pages if first <= mark[0] <= last)

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
    pages: Pages = ()  # the pages the chunk touches (``Document.pages_between``)

    @property
    def doc_id(self) -> str:
        return content_id("doc", self.source)

    @property
    def page(self) -> int | None:
        return page_span(self.pages, self.start, self.end)[0]

    @property
    def page_end(self) -> int | None:
        return page_span(self.pages, self.start, self.end)[1]

    def joined(self, others: Iterable[Chunk], start: int, end: int, text: str) -> Chunk:
        """This chunk widened to ``text[start:end]`` of its document, which ``others`` (its
        neighbours) fill: their pages join its own."""
        pages = _joined_pages([self.pages, *(o.pages for o in others)])
        return replace(self, start=start, end=end, text=text, pages=pages)

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

    @property
    def page(self) -> int | None:
        """The page ``chunk`` starts on (None for a source without pages)."""
        return self.chunk.page

    @property
    def page_end(self) -> int | None:
        """The page ``chunk`` ends on: ``page`` unless it runs across a page break."""
        return self.chunk.page_end

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
            "page": c.page,
            "page_end": c.page_end,
        }


@dataclass(frozen=True)
class Citation:
    """A verbatim quote: ``quote == cleaned text of source[start:end]``.

    ``page`` and ``page_end`` are the pages the quote starts and ends on (equal unless it runs
    across a page break); None for a source without pages.
    """

    n: int
    source: str
    title: str
    section: str
    start: int
    end: int
    quote: str
    page: int | None = None
    page_end: int | None = None

    @classmethod
    def quoting(cls, n: int, chunk: Chunk, start: int, end: int, quote: str) -> Citation:
        """Citation ``n`` of ``quote``, ``text[start:end]`` of ``chunk``'s document."""
        page, page_end = page_span(chunk.pages, start, end)
        return cls(
            n=n,
            source=chunk.source,
            title=chunk.title,
            section=chunk.section,
            start=start,
            end=end,
            quote=quote,
            page=page,
            page_end=page_end,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "source": self.source,
            "title": self.title,
            "section": self.section,
            "start": self.start,
            "end": self.end,
            "quote": self.quote,
            "page": self.page,
            "page_end": self.page_end,
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
