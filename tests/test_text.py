"""Shared text concepts: the Hangul ranges, word tables, and what is unsafe to index or print."""

from __future__ import annotations

import re
from pathlib import Path

import policy_qa.text as text
from policy_qa.text import (
    HANGUL_LETTER,
    HANGUL_SYLLABLE,
    WORD,
    strip_unsafe,
    terminal_safe,
    words,
)

SRC = Path(__file__).resolve().parents[1] / "src" / "policy_qa"


def test_public_api_is_pinned() -> None:
    assert sorted(text.__all__) == [
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


def test_a_word_keeps_its_inner_hyphens_and_apostrophes() -> None:
    found = WORD.findall("Lee Myung-bak's 2011 belt, 대덕연구단지 (snake_case) -- 'quoted'")
    assert found == [
        "Lee",
        "Myung-bak's",
        "2011",
        "belt",
        "대덕연구단지",
        "snake",
        "case",
        "quoted",
    ]


def test_hangul_syllables_are_exactly_the_11172_precomposed_ones() -> None:
    bmp = [chr(i) for i in range(0x10000) if not 0xD800 <= i < 0xE000]
    syllables = [ch for ch in bmp if HANGUL_SYLLABLE.fullmatch(ch)]
    assert len(syllables) == 11172
    assert (syllables[0], syllables[-1]) == ("가", "힣")


def test_hangul_letters_add_the_jamo() -> None:
    assert HANGUL_LETTER.fullmatch("ㅋ") and HANGUL_LETTER.fullmatch("\u1100")
    assert not HANGUL_SYLLABLE.fullmatch("ㅋ")
    for ch in "aZ1 國ア":
        assert not HANGUL_LETTER.fullmatch(ch)


def test_one_definition_of_the_hangul_ranges() -> None:
    """No module spells a Hangul range itself; they all import it from policy_qa.text."""
    spelled = re.compile(r"\\uac00|\\uAC00|가-힣|\\u1100-|\\u3130-")
    offenders = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if path.name != "text.py" and spelled.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_words_builds_a_table() -> None:
    assert words("  rss print\n share rss ") == frozenset({"rss", "print", "share"})
    assert words("") == frozenset()


def test_strip_unsafe_keeps_tab_and_newline_only() -> None:
    raw = "a\x00b\x07c\x1b[31md\x7fe\x85f\x9bg\u202eh\u2066i\u2069j\tk\nl"
    assert strip_unsafe(raw) == "abc[31mdefghij\tk\nl"
    assert strip_unsafe("정책 “quotes” — é") == "정책 “quotes” — é"


def test_terminal_safe_neutralises_escapes_bidi_and_surrogates() -> None:
    shown = terminal_safe("ok\x1b]0;title\x07\x1b[2J\u202eevil\udce9.txt\nnext\tcol")
    assert shown == "ok\\x1b]0;title\\x07\\x1b[2J\\u202eevil\\udce9.txt\nnext\tcol"
    shown.encode("utf-8")  # printable on any UTF-8 terminal: no lone surrogate left
    assert terminal_safe("a\nb\tc\rd", one_line=True) == "a\\nb\\tc\\x0dd"
    assert terminal_safe("정책 “안내” é") == "정책 “안내” é"
