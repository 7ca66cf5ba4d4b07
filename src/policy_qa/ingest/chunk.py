"""Cutting a cleaned ``Document`` into ``Chunk`` spans for retrieval.

This module owns chunk boundaries: chunks follow paragraphs, split long paragraphs at sentence
boundaries, never cross a heading, and keep each heading with the text it heads. Every chunk is
an exact span of ``Document.text`` (``chunk.text == doc.text[chunk.start:chunk.end]``), so a
citation can point back into the cleaned text. It must not change text or read files.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from ..errors import DocumentError
from ..types import Chunk, Document
from .sentences import split_sentences

__all__ = ["TooManyChunksError", "chunk_document"]

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")


class TooManyChunksError(DocumentError):
    """A document that would make more chunks than allowed (``limit``)."""

    def __init__(self, source: str, limit: int) -> None:
        super().__init__(f"{source} makes more than {limit:,} chunks")
        self.limit = limit


@dataclass(frozen=True)
class _Unit:
    """A span that chunks are built from; a ``glue`` unit (a heading) sticks to the next one."""

    start: int
    end: int
    glue: bool = False


def chunk_document(
    doc: Document, size: int = 700, min_size: int = 200, max_chunks: int | None = None
) -> list[Chunk]:
    """Chunks of about ``size`` characters covering ``doc.text``, in order.

    No chunk is shorter than ``min_size`` unless the whole stretch between two headings is;
    a chunk is longer than ``size`` only when a heading and its first piece of text, or a
    short leftover merged into a neighbour, need the room. The same document always gives
    the same chunks (and so the same ``Chunk.id`` values). With ``max_chunks``, a document
    that would make more raises ``TooManyChunksError`` as soon as that is certain.
    """
    if size < 1:
        raise ValueError(f"chunk size must be at least 1 character, got {size}")
    if not 0 <= min_size <= size:
        raise ValueError(f"min_size must be between 0 and size ({size}), got {min_size}")

    spans: list[tuple[int, int]] = []
    for region_start, region_end, heading in _regions(doc):
        units = _units(doc.text, region_start, region_end, heading, size)
        spans.extend(_merge_small(_pack(units, size), min_size))
        if max_chunks is not None and len(spans) > max_chunks:
            raise TooManyChunksError(doc.source, max_chunks)
    return [
        Chunk(
            source=doc.source,
            title=doc.title,
            section=_section_title(doc, start, end),
            start=start,
            end=end,
            text=doc.text[start:end],
            language=doc.language,
            pages=doc.pages_between(start, end),
        )
        for start, end in spans
    ]


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _regions(doc: Document) -> list[tuple[int, int, list[int]]]:
    """Stretches between consecutive headings: ``(start, end, heading starts inside)``.

    A heading with no text of its own before a sub-heading ("Chapter 2" then "2.1 Scope")
    joins the sub-heading's stretch, so it is not left as a chunk on its own.
    """
    text = doc.text
    heading_starts = sorted({s.start for s in doc.sections if 0 <= s.start < len(text)})
    bounds = sorted({0, *heading_starts, len(text)})
    raw: list[tuple[int, int, list[int]]] = []
    for a, b in itertools.pairwise(bounds):
        start, end = _strip(text, a, b)
        if start < end:
            raw.append((start, end, [start] if a in heading_starts else []))

    regions: list[tuple[int, int, list[int]]] = []
    for region in raw:
        if regions and _is_heading_only(text, regions[-1]) and _encloses(doc, regions[-1], region):
            start, _, headings = regions.pop()
            region = (start, region[1], headings + region[2])
        regions.append(region)
    return regions


def _is_heading_only(text: str, region: tuple[int, int, list[int]]) -> bool:
    start, end, headings = region
    return bool(headings) and "\n" not in text[start:end]


def _encloses(
    doc: Document, outer: tuple[int, int, list[int]], inner: tuple[int, int, list[int]]
) -> bool:
    return any(
        _strip(doc.text, s.start, s.end)[0] == outer[0] and s.end >= inner[1] for s in doc.sections
    )


def _units(text: str, start: int, end: int, headings: list[int], size: int) -> list[_Unit]:
    """Paragraphs of the region, headings marked as glue, long paragraphs cut by sentence."""
    units: list[_Unit] = []
    pos = start
    for match in [*_PARAGRAPH_BREAK.finditer(text, start, end), None]:
        para_end = match.start() if match else end
        a, b = _strip(text, pos, para_end)
        pos = match.end() if match else end
        while a < b and a in headings:
            # The heading is its first line; any text under it on the next line is a paragraph.
            line_end = text.find("\n", a, b)
            line_end = b if line_end == -1 else line_end
            units.append(_Unit(a, _strip(text, a, line_end)[1], glue=True))
            a = _strip(text, line_end, b)[0]
        if a < b:
            units.extend(_Unit(x, y) for x, y in _split_long(text, a, b, size))
    return units


def _split_long(text: str, start: int, end: int, size: int) -> list[tuple[int, int]]:
    if end - start <= size:
        return [(start, end)]
    pieces: list[tuple[int, int]] = []
    for a, b in split_sentences(text[start:end], offset=start):
        if b - a > size:
            pieces.extend(_hard_split(text, a, b, size))
        elif pieces and b - pieces[-1][0] <= size:
            pieces[-1] = (pieces[-1][0], b)
        else:
            pieces.append((a, b))
    return pieces


def _hard_split(text: str, start: int, end: int, size: int) -> list[tuple[int, int]]:
    """Cut an over-long sentence at the last space that fits, or at ``size`` if none does."""
    pieces: list[tuple[int, int]] = []
    while end - start > size:
        cut = max(
            text.rfind(" ", start + 1, start + size + 1),
            text.rfind("\n", start + 1, start + size + 1),
        )
        cut = cut if cut > start else start + size
        a, b = _strip(text, start, cut)
        if a < b:
            pieces.append((a, b))
        start = _strip(text, cut, end)[0]
    if start < end:
        pieces.append((start, end))
    return pieces


def _pack(units: list[_Unit], size: int) -> list[tuple[int, int]]:
    """Greedily fill chunks up to ``size``; a heading always travels with what follows it."""
    fused: list[tuple[int, int]] = []
    pending = -1
    for unit in units:
        start = unit.start if pending < 0 else pending
        pending = start if unit.glue else -1
        if not unit.glue:
            fused.append((start, unit.end))
    if pending >= 0:
        fused.append((pending, units[-1].end))  # a heading with nothing under it

    chunks: list[tuple[int, int]] = []
    for start, end in fused:
        if chunks and end - chunks[-1][0] <= size:
            chunks[-1] = (chunks[-1][0], end)
        else:
            chunks.append((start, end))
    return chunks


def _merge_small(chunks: list[tuple[int, int]], min_size: int) -> list[tuple[int, int]]:
    """Merge each chunk shorter than ``min_size`` into its smaller neighbour."""
    chunks = list(chunks)
    while len(chunks) > 1:
        small = next((i for i, (a, b) in enumerate(chunks) if b - a < min_size), None)
        if small is None:
            break
        left = chunks[small - 1] if small > 0 else None
        right = chunks[small + 1] if small + 1 < len(chunks) else None
        if right is None or (left is not None and left[1] - left[0] <= right[1] - right[0]):
            chunks[small - 1 : small + 1] = [(chunks[small - 1][0], chunks[small][1])]
        else:
            chunks[small : small + 2] = [(chunks[small][0], chunks[small + 1][1])]
    return chunks


def _section_title(doc: Document, start: int, end: int) -> str:
    """The innermost section that holds the whole chunk (the one at its start otherwise)."""
    found: tuple[int, str] | None = None
    for section in doc.sections:
        if (
            section.start <= start
            and end <= section.end
            and (found is None or section.start >= found[0])
        ):
            found = (section.start, section.title)
    return found[1] if found else doc.section_at(start)
