"""Text concepts that several modules share, defined once: Hangul ranges, word tables, and
which characters are unsafe in indexed or printed text.

Standard library only, and no policy: this module says what a Hangul syllable or a bidi
override *is*; the modules that clean, tokenise or print decide what to do about it. Why there
are two Hangul ranges: docs/decisions/063-shared-text-concepts.md.
"""

from __future__ import annotations

import re

__all__ = [
    "BIDI_CONTROLS",
    "HANGUL_JAMO",
    "HANGUL_LETTER",
    "HANGUL_SYLLABLE",
    "HANGUL_SYLLABLES",
    "LATIN_RUN",
    "UNSAFE_CHARACTER",
    "WORD",
    "strip_unsafe",
    "terminal_safe",
    "words",
]

# Character-class bodies, for callers that build a larger pattern around them.
# The 11,172 precomposed syllables (가 … 힣): the units of Korean words, what tokenisers and
# search work on.
HANGUL_SYLLABLES = "\uac00-\ud7a3"
# Conjoining jamo (U+1100–U+11FF) and compatibility jamo (U+3130–U+318F, e.g. "ㅋ", "ㄱ"):
# Korean letters that are not whole syllables. They count when asking "is this Korean script?".
HANGUL_JAMO = "\u1100-\u11ff\u3130-\u318f"

HANGUL_SYLLABLE = re.compile(f"[{HANGUL_SYLLABLES}]")
"""One precomposed Hangul syllable: use for Korean *words* (tokenising, search terms)."""

HANGUL_LETTER = re.compile(f"[{HANGUL_SYLLABLES}{HANGUL_JAMO}]")
"""One Hangul letter, syllable or jamo: use for "is this character Korean script?"."""

LATIN_RUN = re.compile(
    f"[^\\s{HANGUL_SYLLABLES}{HANGUL_JAMO}]*[A-Za-z0-9][^\\s{HANGUL_SYLLABLES}{HANGUL_JAMO}]*"
)
"""A run of text without spaces or Hangul that holds a Latin letter or a digit ("KAIST",
"(1973", "DNA-2"): what an English model reads of Korean text (the rest becomes jamo)."""

WORD = re.compile(r"[^\W_]+(?:[-'’][^\W_]+)*")
"""One word as a reader sees it: letters and digits, joined by inner hyphens or apostrophes
("Myung-bak", "Korea's"); what the answerer compares a question's words by."""

# Explicit bidi embeddings, overrides and isolates (LRE, RLE, PDF, LRO, RLO; LRI, RLI, FSI,
# PDI): they reorder how text is displayed, so text can show other than what it says
# ("Trojan Source", CVE-2021-42574).
BIDI_CONTROLS = "\u202a-\u202e\u2066-\u2069"

UNSAFE_CHARACTER = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{BIDI_CONTROLS}]")
"""A C0 control other than tab and newline, DEL, a C1 control, or a bidi control."""

# What a terminal must never receive raw: the characters above plus lone surrogates (a file
# name that is not UTF-8 arrives as "\udcXX" and cannot even be encoded for printing).
_TERMINAL_UNSAFE = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{BIDI_CONTROLS}\ud800-\udfff]")
_TERMINAL_UNSAFE_LINE = re.compile(f"[\x00-\x1f\x7f-\x9f{BIDI_CONTROLS}\ud800-\udfff]")


def words(text: str) -> frozenset[str]:
    """The whitespace-separated words of ``text``: how word tables are written.

    >>> sorted(words("rss print\\n  share"))
    ['print', 'rss', 'share']
    """
    return frozenset(text.split())


def strip_unsafe(text: str) -> str:
    """``text`` without control characters (tab and newline kept) and bidi controls.

    >>> strip_unsafe("a\\x1b[31mb\\u202ec\\td")
    'a[31mbc\\td'
    """
    return UNSAFE_CHARACTER.sub("", text)


def terminal_safe(text: str, *, one_line: bool = False) -> str:
    """``text`` made safe to print to a terminal: every control character, bidi control and
    lone surrogate is shown as its escape (``\\x1b``, ``\\u202e``), so it can neither move the
    cursor, recolour the screen, reorder what is shown nor fail to encode.

    ``one_line`` escapes tab and newline too, for values printed inside a line (names, titles).

    >>> terminal_safe("ok\\x1b[2Jgone\\u202e")
    'ok\\\\x1b[2Jgone\\\\u202e'
    >>> terminal_safe("a\\nb", one_line=True)
    'a\\\\nb'
    """
    pattern = _TERMINAL_UNSAFE_LINE if one_line else _TERMINAL_UNSAFE
    return pattern.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    if code == 0x0A:
        return "\\n"
    if code == 0x09:
        return "\\t"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
