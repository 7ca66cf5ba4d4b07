"""Bytes to text: which encoding a text file is in, or why it cannot be read as text.

This module owns decoding for ``.txt``, ``.md`` and ``.html`` files, and it is the only place
in the package that imports charset-normalizer. It returns text or raises
``UndecodableError`` with a reason a person can act on; it never returns a guess it is not
sure of, because mojibake that is indexed gets quoted back as evidence. The order of the
steps and the measurements behind them: docs/decisions/060-text-decoding.md.
"""

from __future__ import annotations

import codecs
import logging
import re
from functools import cache

from ..errors import DocumentError
from ..text import HANGUL_SYLLABLE

__all__ = ["UndecodableError", "decode_bytes"]

log = logging.getLogger(__name__)

_BOMS = (
    # UTF-32 first: its little-endian BOM starts with UTF-16's.
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Labels a page may declare, read the way browsers read them (WHATWG Encoding Standard):
# "iso-8859-1" and "ascii" mean windows-1252, "euc-kr" means its superset windows-949.
_DECLARED_ALIASES = {
    "ascii": "cp1252",
    "us-ascii": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "l1": "cp1252",
    "euc-kr": "cp949",
    "ks_c_5601-1987": "cp949",
    "x-windows-949": "cp949",
}
# The legacy code pages this tool's documents come in: Korean Windows (a superset of EUC-KR)
# and Western Windows (a superset of ISO-8859-1's printable range).
_KOREAN = "cp949"
_WESTERN = "cp1252"

# A file is Korean in cp949 when its Hangul are nearly all from the 2,350 everyday syllables
# of KS X 1001 and make up most of what is not ASCII. English cp1252 text read as cp949 gives
# rare syllables instead ("Ministry’s" -> "Ministry뭩"). Both shares: decision 060.
_KOREAN_COMMON_SHARE = 0.9
_KOREAN_HANGUL_SHARE = 0.5
# Chinese code pages that cp949 also reads as everyday Hangul (GBK's hanzi rows are KS X
# 1001's Hangul rows); when the detector prefers one of them, the file is not Korean.
_CHINESE = ("gb2312", "gbk", "gb18030", "big5", "big5hkscs", "hz")
# Like git and grep, a NUL byte this near the start marks a binary file: text has none.
_BINARY_PROBE = 8000
# More control characters than this (share of all characters) is binary data, not text.
_BINARY_CONTROL_SHARE = 0.05

_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f]")

_SAVE_AS_UTF8 = "save it as UTF-8 and index it again"


class UndecodableError(DocumentError):
    """Bytes that are not text, or not text in an encoding we can tell; ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def decode_bytes(data: bytes, declared: str | None = None) -> str:
    """The text of a file's bytes, or ``UndecodableError`` saying why there is none.

    In order: a byte-order mark (UTF-8, UTF-16, UTF-32) decides; NUL bytes near the start
    mean binary data unless they are UTF-16/32 without a mark; valid UTF-8 is UTF-8; a charset
    the file declares (an HTML ``<meta charset>``) is used if the bytes fit it; Korean in
    cp949/EUC-KR is recognised by its syllables; a file that is mostly UTF-8 with some other
    bytes is refused as mixed; anything else goes to charset-normalizer, preferring cp1252
    among the code pages that fit.

    >>> decode_bytes("The Ministry’s plan".encode("cp1252"))
    'The Ministry’s plan'
    >>> decode_bytes("정책 안내".encode("euc-kr"))
    '정책 안내'
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return _checked(data.decode(encoding), encoding)
            except UnicodeDecodeError as error:
                name = "UTF-8" if encoding == "utf-8-sig" else encoding.upper()
                raise UndecodableError(
                    f"it starts with a {name} byte-order mark but {_where(data, error.start)} "
                    f"is not {name}; {_SAVE_AS_UTF8}"
                ) from error
    if b"\x00" in data[:_BINARY_PROBE]:
        wide = _detect(data, wide_only=True)
        if wide is None:
            raise UndecodableError(
                "it looks like binary data, not text (it contains NUL bytes); "
                "if it is a document, index the original .pdf or .docx"
            )
        return _checked(data.decode(wide), wide)
    try:
        return _checked(data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError as error:
        first_bad = error.start
    if declared:
        encoding = _DECLARED_ALIASES.get(declared.strip().lower(), declared)
        try:
            return _checked(data.decode(encoding), encoding)
        except (UnicodeDecodeError, LookupError):
            log.debug("declared charset %r does not fit; detecting", declared)
    if _is_korean(data):
        return _checked(data.decode(_KOREAN), _KOREAN)
    # After the Korean check: EUC-KR's byte pairs are often well-formed UTF-8 sequences too.
    if _has_utf8_line(data):
        raise UndecodableError(
            f"it mixes UTF-8 with another encoding ({_where(data, first_bad)} is not UTF-8); "
            f"{_SAVE_AS_UTF8}"
        )
    detected = _detect(data)
    if detected is None:
        raise UndecodableError(
            f"its text encoding could not be recognised with confidence; {_SAVE_AS_UTF8}"
        )
    return _checked(data.decode(detected), detected)


def _checked(text: str, encoding: str) -> str:
    controls = len(_CONTROL.findall(text))
    if controls and controls > _BINARY_CONTROL_SHARE * len(text):
        raise UndecodableError(
            f"it looks like binary data, not text ({controls} control characters in "
            f"{len(text)}); if it is a document, index the original .pdf or .docx"
        )
    log.debug("decoded as %s", encoding)
    return text


def _where(data: bytes, offset: int) -> str:
    line = data.count(b"\n", 0, offset) + 1
    return f"line {line}"


def _has_utf8_line(data: bytes) -> bool:
    """Whether a line with non-ASCII characters is valid UTF-8 (in a file that is not): then
    the file holds two encodings, and any one code page makes mojibake of part of it."""
    for line in data.split(b"\n"):
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            continue
        return True
    return False


def _is_korean(data: bytes) -> bool:
    try:
        text = data.decode(_KOREAN)
    except UnicodeDecodeError:
        return False
    # Counted by deleting, not by listing matches: a 50 MB file holds millions of syllables.
    syllables = len(text) - len(HANGUL_SYLLABLE.sub("", text))
    if not syllables:
        return False
    everyday = len(text) - len(_common_syllables().sub("", text))
    non_ascii = len(text) - len(text.encode("ascii", "ignore"))
    if everyday < _KOREAN_COMMON_SHARE * syllables or syllables < _KOREAN_HANGUL_SHARE * non_ascii:
        return False
    from charset_normalizer import from_bytes

    chaos = {m.encoding: m.chaos for m in from_bytes(data, cp_isolation=[_KOREAN, *_CHINESE])}
    chinese = min((chaos[e] for e in _CHINESE if e in chaos), default=None)
    return chinese is None or (_KOREAN in chaos and chaos[_KOREAN] <= chinese)


@cache
def _common_syllables() -> re.Pattern[str]:
    """The 2,350 syllables of KS X 1001, the ones EUC-KR encodes in two bytes B0-C8 A1-FE."""
    found = []
    for lead in range(0xB0, 0xC9):
        for trail in range(0xA1, 0xFF):
            try:
                ch = bytes((lead, trail)).decode(_KOREAN)
            except UnicodeDecodeError:
                continue
            if HANGUL_SYLLABLE.fullmatch(ch):
                found.append(ch)
    return re.compile(f"[{''.join(found)}]")


def _detect(data: bytes, wide_only: bool = False) -> str | None:
    """charset-normalizer's choice, preferring cp1252 whenever it fits as well as any.

    The detector cannot tell the Western code pages apart on a few accented letters (it picks
    cp1250 or cp852 for French or English about as often as cp1252); cp1252 is what such files
    are in practice. Returns None when nothing fits (``wide_only``: nothing but UTF-16/32).
    """
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data))
    if wide_only:
        wide = [m for m in matches if m.encoding.startswith(("utf_16", "utf_32"))]
        return wide[0].encoding if wide else None
    for match in matches:
        if _WESTERN in (match.encoding, *match.could_be_from_charset):
            return _WESTERN
    return matches[0].encoding if matches else None
