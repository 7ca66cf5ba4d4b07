"""Turning extracted text into the cleaned text that every offset refers to.

This module owns the cleaning rules shared by all formats: Unicode and whitespace
normalisation (control characters and bidi overrides removed), re-joining words split by
hyphenation, dropping web-page furniture (share/RSS widgets, empty metadata labels, trailing
links to other articles), and finding headings in plain text. It works on strings and
``Block`` lists only; it never reads files (``load`` does) and never cuts chunks (``chunk``
does).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..text import strip_unsafe, words
from ..types import Section

__all__ = ["Block", "assemble", "clean_blocks", "clean_text", "plain_blocks"]


@dataclass(frozen=True)
class Block:
    """A paragraph (``level == 0``) or a heading (``level >= 1``, smaller is higher)."""

    text: str
    level: int = 0


# Zero-width characters and soft hyphens carry no text; they only break searching.
_INVISIBLE = re.compile("[\u00ad\u200b\u200c\u200d\u2060\ufeff]")
_SPACES = re.compile(r"[ \t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+")
_BLANK_LINES = re.compile(r"\n\s*\n")

# Hyphenated words split across a line ("Nation-\nal") or by a scraper ("Nation- al"). The
# right part must be lowercase so "Seoul- Busan" stays; suspended hyphens ("pre- and post-")
# are kept because their right part is a function word.
_SPLIT_WORD = re.compile(r"\b(\w*[^\W\d_])-(?: ?\n *| +)([a-z]+)\b")
_SUSPENSION_WORDS = words("and or nor to through but than vs versus via as the a an of for with")
# Left parts that form real compounds: keep their hyphen ("well-known", "self-driving").
_COMPOUND_PREFIXES = words(
    """self well non ex co all cross high low long short full part multi semi anti post pre
    mid inter intra state world small large mid middle first second third half one two three
    four five six seven eight nine ten quasi pseudo so wide open fast slow hard"""
)

# Words that make up share/print/RSS widgets and pager links on scraped pages. A line is
# furniture when it has only such words and at least one that is never ordinary text alone.
_FURNITURE_WORDS = words(
    """rss print share email e-mail tweet twitter facebook kakao kakaotalk linkedin top list
    prev previous next scrap bookmark subscribe 목록 인쇄 공유 이전글 다음글 스크랩 맨위로"""
)
_FURNITURE_FILLER = words(
    """go mail line copy url link back to more close font size increase decrease zoom in out
    home menu search on via 위로 닫기 글자 크기 확대 축소 검색"""
)
_BULLETS = "•·▪▫◦‣∙●○■□►▶-*+"
# Metadata labels that scraped article pages show, often with the value lost.
_META_LABELS = words(
    """date sort views view hits author writer by category categories source tags tag posted
    updated published modified reporter editor section type no number read count
    등록일 작성일 작성자 조회수 조회 날짜 출처 분류 담당자 글쓴이 기자"""
)
_EMPTY_FIELD = re.compile(r"^(?P<label>[^\W\d_][\w .]{0,24}?)(?P<gap>\s*)[:：]\s*$")
_LIST_ITEM = re.compile(r"^(?:[-*+•·▪◦‣●○■□►▶]\s|\(?\d{1,3}[.)]\s|\(?[a-zA-Z][.)]\s)")
_SENTENCE_END = re.compile(r"[.!?。！？…](?:[\"')\]’”»」』]*)$")


def clean_text(raw: str) -> str:
    """Clean plain or scraped text: the text a ``.txt`` document is indexed with.

    Paragraphs are separated by exactly one blank line, lines carry no trailing spaces,
    and web furniture and hyphenation splits are gone.

    >>> clean_text("• go rss\\n\\nDate :\\n\\nThe Nation- al plan.\\n\\n\\nMore  text.  ")
    'The National plan.\\n\\nMore text.'
    """
    return "\n\n".join(b.text for b in clean_blocks(_paragraphs(raw), unwrap=True))


def plain_blocks(cleaned: str) -> list[Block]:
    """Paragraph blocks of cleaned plain text, with headings recognised by their shape.

    A heading is a short single line without closing sentence punctuation that is followed by
    a paragraph. A heading-like first line is the title (level 1); other headings are level 2,
    and a short run of consecutive headings nests (the first is the parent).
    """
    paragraphs = [p for p in cleaned.split("\n\n") if p.strip()]
    candidate = [_looks_like_heading(p) for p in paragraphs]
    levels = [0] * len(paragraphs)
    i = 0
    if paragraphs and candidate[0] and len(paragraphs) > 1:
        levels[0] = 1
        i = 1
    while i < len(paragraphs):
        if not candidate[i]:
            i += 1
            continue
        j = i
        while j < len(paragraphs) and candidate[j]:
            j += 1
        if j < len(paragraphs):  # a run of headings needs a paragraph after it
            run = range(i, j) if j - i <= 3 else range(j - 1, j)
            for depth, k in enumerate(run):
                levels[k] = 2 + depth
        i = j
    return [Block(p, level) for p, level in zip(paragraphs, levels, strict=True)]


def clean_blocks(blocks: Iterable[Block], unwrap: bool = False) -> list[Block]:
    """Normalise each block, drop furniture lines and trailing links to other pages.

    ``unwrap`` joins a line to the previous one when it plainly continues it (starts in
    lowercase), which repairs hard-wrapped plain text without merging list items.
    """
    cleaned: list[Block] = []
    for block in blocks:
        lines = [line for line in _normalise(block.text).split("\n") if line]
        lines = [line for line in lines if not _is_furniture(line)]
        if unwrap:
            lines = _unwrap(lines)
        text = "\n".join(lines)
        if text:
            cleaned.append(Block(text, block.level))
    return _drop_trailing_links(cleaned)


def assemble(blocks: Sequence[Block]) -> tuple[str, tuple[Section, ...]]:
    """Join blocks with blank lines; each heading governs text up to the next heading of the
    same or a higher level (its span ends where that heading's blank line begins)."""
    text_parts: list[str] = []
    starts: list[int] = []
    pos = 0
    for block in blocks:
        starts.append(pos)
        text_parts.append(block.text)
        pos += len(block.text) + 2
    text = "\n\n".join(text_parts)
    sections: list[Section] = []
    for i, block in enumerate(blocks):
        if block.level <= 0:
            continue
        end = len(text)
        for j in range(i + 1, len(blocks)):
            if 0 < blocks[j].level <= block.level:
                end = starts[j] - 2
                break
        title = " ".join(block.text.split())
        sections.append(Section(title=title, start=starts[i], end=end))
    return text, tuple(sections)


def _paragraphs(raw: str) -> list[Block]:
    text = raw.replace("\r\n", "\n").replace("\r", "\n")
    return [Block(p) for p in _BLANK_LINES.split(text)]


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n")
    text = text.replace("\u2029", "\n").replace("\x85", "\n")  # NEL: a C1 line break
    text = _INVISIBLE.sub("", text)
    # Control characters and bidi overrides are never text a reader sees; left in, they
    # would reach terminals and reorder quoted evidence (decision 061).
    text = strip_unsafe(text)
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _SPLIT_WORD.sub(_join_split_word, text)


def _join_split_word(match: re.Match[str]) -> str:
    left, right = match.group(1), match.group(2)
    if right in _SUSPENSION_WORDS:
        return match.group(0)
    if left.lower() in _COMPOUND_PREFIXES:
        return f"{left}-{right}"
    return left + right


def _is_furniture(line: str) -> bool:
    words = line.strip(_BULLETS + " ").lower().split()
    words = [w.strip(":|/") for w in words if w.strip(":|/")]
    if (
        words
        and len(words) <= 6
        and any(w in _FURNITURE_WORDS for w in words)
        and all(w in _FURNITURE_WORDS or w in _FURNITURE_FILLER for w in words)
    ):
        return True
    if not words and line.strip() and all(ch in _BULLETS + " |/" for ch in line):
        return True  # a bare bullet or separator
    field = _EMPTY_FIELD.match(line)
    if field:
        label = field.group("label").strip().lower()
        # "Date :" with a space before the colon is a form label; "Summary:" introduces text.
        return label in _META_LABELS or bool(field.group("gap"))
    return False


def _unwrap(lines: list[str]) -> list[str]:
    out: list[str] = []
    for line in lines:
        if out and line[:1].islower() and not out[-1].endswith(":") and not _LIST_ITEM.match(line):
            out[-1] = f"{out[-1]} {line}"
        else:
            out.append(line)
    return out


def _is_real_line(line: str) -> bool:
    """A line of running text, as opposed to a title or a link label."""
    return len(line) > 100 or len(line.split()) > 15 or bool(_SENTENCE_END.search(line))


def _is_title_like(line: str) -> bool:
    if _is_real_line(line) or _LIST_ITEM.match(line) or line.endswith(":") or " | " in line:
        return False  # running text, list items, labels and table rows are content
    first = next((ch for ch in line if ch.isalnum()), "")
    return bool(first) and (first.isupper() or first.isdigit() or not first.isascii())


def _drop_trailing_links(blocks: list[Block]) -> list[Block]:
    """Drop title-like lines after the last running-text line: on scraped article pages these
    are links to other articles ("Related", "Next article"), not part of the text."""
    lines = [(i, line) for i, b in enumerate(blocks) for line in b.text.split("\n")]
    keep = len(lines)
    while keep and _is_title_like(lines[keep - 1][1]):
        keep -= 1
    if keep == len(lines) or not any(_is_real_line(line) for _, line in lines[:keep]):
        return blocks
    kept: dict[int, list[str]] = {}
    for i, line in lines[:keep]:
        kept.setdefault(i, []).append(line)
    return [Block("\n".join(kept[i]), blocks[i].level) for i in sorted(kept)]


def _looks_like_heading(paragraph: str) -> bool:
    if "\n" in paragraph or len(paragraph) >= 100 or len(paragraph.split()) > 15:
        return False
    if _SENTENCE_END.search(paragraph) or paragraph.endswith((":", ";", ",")):
        return False
    if _LIST_ITEM.match(paragraph) or not any(ch.isalpha() for ch in paragraph):
        return False  # list items and bare numbers ("2019", "3.1") are not headings
    first = next((ch for ch in paragraph if ch.isalnum()), "")
    return bool(first) and (first.isupper() or first.isdigit() or not first.isascii())
