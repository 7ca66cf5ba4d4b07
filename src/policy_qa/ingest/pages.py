"""Where each page of a source starts in the cleaned text made from it.

This module owns the page map: given the cleaned text and the raw text of each page, it finds
the offset where each page starts. It reads the cleaned text and never changes it, so every
offset (and every quote) is the same with or without pages; it must not clean, reflow or read
files (docs/decisions/093-page-level-citations.md).

Cleaning drops characters (running headers, widgets, spaces, split-word hyphens) but keeps the
letters and digits it does not drop, in order. So the letters and digits of the cleaned text
are matched, in order, against those of the pages; a page starts where the first character
matched on it sits (moved back to the start of its word).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

__all__ = ["page_starts"]

# Characters matched at once: long enough that a stretch of cleaned text is found where it
# really is, not in a dropped line that happens to contain it.
_PROBE = 32
# How far ahead a probe, or a single character after a failed probe, is looked for: more than
# any stretch cleaning drops in the middle of a document (a widget line, a table of links).
_PROBE_REACH = 20_000
_CHAR_REACH = 200


def page_starts(text: str, pages: Sequence[str]) -> tuple[int, ...]:
    """Offsets in ``text`` where each of ``pages`` starts (the first is 0); () without pages.

    ``text`` is the cleaned text made from ``pages`` (raw text, one string per page, in
    order). A page with nothing left after cleaning starts where the next one does; pages at
    the end with nothing left start at ``len(text)``.

    >>> page_starts("Intro text.\\n\\nSecond page.", ["Intro text.\\n3", "Second page.\\n4"])
    (0, 13)
    """
    if not pages:
        return ()
    bounds: list[int] = []
    raw_parts: list[str] = []
    size = 0
    for page in pages:
        bounds.append(size)
        part = "".join(ch for ch in unicodedata.normalize("NFC", page) if ch.isalnum())
        raw_parts.append(part)
        size += len(part)
    raw = "".join(raw_parts)
    where = [i for i, ch in enumerate(text) if ch.isalnum()]
    matched = _match("".join(text[i] for i in where), raw)

    starts = [0]
    k = 0
    for bound in bounds[1:]:
        while k < len(matched) and matched[k] < bound:  # unmatched (-1) never counts
            k += 1
        offset = _word_start(text, where[k]) if k < len(matched) else len(text)
        starts.append(max(offset, starts[-1]))
    return tuple(starts)


def _match(clean: str, raw: str) -> list[int]:
    """For each character of ``clean``, the index in ``raw`` it was matched to (-1: none);
    the indexes increase."""
    matched = [-1] * len(clean)
    k = j = 0
    while k < len(clean):
        probe = clean[k : k + _PROBE]
        at = raw.find(probe, j, j + _PROBE_REACH)
        if at >= 0:
            run = len(probe)
            while k + run < len(clean) and at + run < len(raw) and clean[k + run] == raw[at + run]:
                run += 1
        else:
            # A dropped or changed stretch inside the probe: step one character at a time.
            at = raw.find(clean[k], j, j + _CHAR_REACH)
            if at < 0:
                k += 1  # not in the pages at all; leave it unmatched
                continue
            run = 1
        matched[k : k + run] = range(at, at + run)
        k += run
        j = at + run
    return matched


def _word_start(text: str, offset: int) -> int:
    """``offset`` moved back to the start of its word, so "(b) Leave" starts at "(", not "b"."""
    while offset > 0 and not text[offset - 1].isspace():
        offset -= 1
    return offset
