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

import bisect
import itertools
import re
import unicodedata
from collections.abc import Sequence

__all__ = ["page_starts"]

# Letters and digits (``str.isalnum``): what cleaning keeps in order when it keeps a word.
_ALNUM = re.compile(r"[^\W_]+")

# Characters matched at once: long enough that a stretch of cleaned text is found where it
# really is, not in a dropped line that happens to contain it.
_PROBE = 32
# How far ahead a probe, or a single character after a failed probe, is looked for: more than
# any stretch cleaning drops in the middle of a document (a widget line, a table of links).
_PROBE_REACH = 20_000
_CHAR_REACH = 200
# The longest word a page start moves back over to the word's beginning.
_WORD_REACH = 40


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
    parts: list[str] = []
    size = 0
    for page in pages:
        bounds.append(size)
        parts.append("".join(_ALNUM.findall(unicodedata.normalize("NFC", page))))
        size += len(parts[-1])
    spans = [match.span() for match in _ALNUM.finditer(text)]
    clean = "".join(text[a:b] for a, b in spans)
    # Where each span of letters and digits starts in ``clean``.
    firsts = list(itertools.accumulate((b - a for a, b in spans), initial=0))
    runs = _match(clean, "".join(parts))

    starts = [0]
    r = 0
    for bound in bounds[1:]:
        while r < len(runs) and runs[r][1] + runs[r][2] <= bound:
            r += 1
        if r == len(runs):
            starts.append(len(text))
            continue
        k, at, _ = runs[r]
        k += max(0, bound - at)  # the first character of the run that is on this page
        i = bisect.bisect_right(firsts, k) - 1
        starts.append(max(_word_start(text, spans[i][0] + k - firsts[i]), starts[-1]))
    return tuple(starts)


def _match(clean: str, raw: str) -> list[tuple[int, int, int]]:
    """Runs ``(k, at, length)``: ``clean[k:k+length] == raw[at:at+length]``, in order of both;
    a character of ``clean`` in no run was not found in ``raw``."""
    runs: list[tuple[int, int, int]] = []
    k = j = 0
    while k < len(clean):
        probe = clean[k : k + _PROBE]
        at = raw.find(probe, j, j + _PROBE_REACH)
        if at >= 0:
            run = len(probe) + _common_length(clean, k + len(probe), raw, at + len(probe))
        else:
            # A dropped or changed stretch inside the probe: step one character at a time.
            at = raw.find(clean[k], j, j + _CHAR_REACH)
            if at < 0:
                k += 1  # not in the pages at all; leave it unmatched
                continue
            run = 1
        runs.append((k, at, run))
        k += run
        j = at + run
    return runs


def _common_length(a: str, i: int, b: str, j: int) -> int:
    """How many characters ``a[i:]`` and ``b[j:]`` share at their start (compared in slices:
    a document's text is one long run, and a loop over its characters took a second per MB)."""
    length, step = 0, 4096
    while step:
        if a[i + length : i + length + step] == b[j + length : j + length + step]:
            length += step
            if i + length >= len(a) or j + length >= len(b):
                break
        else:
            step //= 2
    return min(length, len(a) - i, len(b) - j)


def _word_start(text: str, offset: int) -> int:
    """``offset`` moved back to the start of its word, so "(b) Leave" starts at "(", not "b";
    unmoved in text without spaces between words (Chinese, Japanese)."""
    start = offset
    while start > 0 and offset - start < _WORD_REACH and not text[start - 1].isspace():
        start -= 1
    return start if start == 0 or text[start - 1].isspace() else offset
