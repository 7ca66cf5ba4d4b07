"""Decoding text files: legacy encodings read right; mixed and binary files refused, with why."""

from __future__ import annotations

import codecs
import random
from pathlib import Path

import pytest

from policy_qa.errors import DocumentError
from policy_qa.ingest import decode_bytes, load_paths
from policy_qa.ingest.decode import UndecodableError

ENGLISH = (
    "The Ministry’s plan is “bold” — it funds 14 clusters over 5–10 years.\n"
    "Officials said the cluster’s budget would grow by €2bn.\n"
)
FRENCH = "Le ministère a publié le plan : café, naïve, façade, déjà vu à Zürich.\n"
KOREAN = (
    "대덕연구개발특구는 1973년에 조성되었다.\n"
    "정부는 지역 성장을 위해 국가혁신클러스터 예산을 늘렸다. (2019년 기준)\n"
)


def test_cp1252_english_is_not_read_as_korean() -> None:
    """The bug of issue 22: cp949 read "’s" as the syllable 뭩 and that counted as Korean."""
    assert decode_bytes("The Ministry’s plan".encode("cp1252")) == "The Ministry’s plan"
    assert decode_bytes(ENGLISH.encode("cp1252")) == ENGLISH


def test_cp1252_keeps_no_c1_controls() -> None:
    """Before, cp1252 quotes fell through to latin-1 and stayed as C1 controls (\\x93)."""
    text = decode_bytes("He said “yes” and “no”.".encode("cp1252"))
    assert text == "He said “yes” and “no”."
    assert not any(0x80 <= ord(ch) <= 0x9F for ch in text)


def test_latin1_accents() -> None:
    assert decode_bytes(FRENCH.encode("latin-1")) == FRENCH
    assert decode_bytes("Café".encode("latin-1")) == "Café"


@pytest.mark.parametrize("encoding", ["cp949", "euc-kr"])
def test_korean_legacy_encodings(encoding: str) -> None:
    assert decode_bytes(KOREAN.encode(encoding)) == KOREAN
    assert decode_bytes("정책".encode(encoding)) == "정책"
    mixed_script = "IGN이 선정한 Best of 2007 게임 목록"
    assert decode_bytes(mixed_script.encode(encoding)) == mixed_script


def test_cp949_extension_syllables_in_korean_text() -> None:
    """cp949 (not EUC-KR) encodes all 11,172 syllables; a few rare ones do not break it."""
    text = "똠방각하는 흔하지 않은 말이다. 정부의 지역 정책은 계속된다."
    assert decode_bytes(text.encode("cp949")) == text


@pytest.mark.parametrize(
    ("bom", "codec"),
    [
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
        (codecs.BOM_UTF32_LE, "utf-32-le"),
        (codecs.BOM_UTF8, "utf-8"),
    ],
)
def test_byte_order_marks(bom: bytes, codec: str) -> None:
    text = ENGLISH + KOREAN
    assert decode_bytes(bom + text.encode(codec)) == text


def test_utf16_without_a_mark_is_text_not_binary() -> None:
    assert decode_bytes("Policy text in UTF-16.".encode("utf-16-le")) == "Policy text in UTF-16."


def test_a_bom_with_bytes_that_do_not_fit_is_refused() -> None:
    data = codecs.BOM_UTF8 + b"fine line\nthen \x93quoted\x94\n"
    with pytest.raises(UndecodableError, match="UTF-8 byte-order mark but line 2 is not UTF-8"):
        decode_bytes(data)


@pytest.mark.parametrize("other", ["cp1252", "cp949"])
def test_mixed_files_are_refused_naming_the_line(other: str) -> None:
    utf8 = "Summary — 정책 안내\nIntro line.\n".encode()
    tail = (ENGLISH if other == "cp1252" else KOREAN).encode(other)
    with pytest.raises(UndecodableError, match=r"mixes UTF-8 with another encoding \(line 3 "):
        decode_bytes(utf8 + tail)


def test_random_bytes_are_binary() -> None:
    data = random.Random(5).randbytes(4000)
    with pytest.raises(UndecodableError, match="binary data"):
        decode_bytes(data)


def test_control_heavy_text_is_binary() -> None:
    rng = random.Random(6)
    data = bytes(rng.choice(b"abc \x01\x02\x03\x1b\x7f") for _ in range(3000))
    with pytest.raises(UndecodableError, match="binary data"):
        decode_bytes(data)


def test_declared_charset_is_read_as_browsers_read_it() -> None:
    assert decode_bytes("“quoted”".encode("cp1252"), "iso-8859-1") == "“quoted”"
    assert decode_bytes(KOREAN.encode("cp949"), "euc-kr") == KOREAN
    assert decode_bytes(ENGLISH.encode("cp1252"), "no-such-charset") == ENGLISH


def test_undecodable_is_a_document_error() -> None:
    assert issubclass(UndecodableError, DocumentError)


def test_files_are_decoded_or_skipped_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "english.txt").write_bytes(ENGLISH.encode("cp1252"))
    (tmp_path / "korean.txt").write_bytes(KOREAN.encode("euc-kr"))
    (tmp_path / "page.html").write_bytes(
        b'<html><head><meta charset="euc-kr"></head><body><p>'
        + KOREAN.encode("euc-kr")
        + b"</p></body></html>"
    )
    notes = codecs.BOM_UTF16_LE + "# Notes\n\nPlain.".encode("utf-16-le")
    (tmp_path / "notes.md").write_bytes(notes)
    (tmp_path / "random.txt").write_bytes(random.Random(1).randbytes(20_000))
    (tmp_path / "mixed.txt").write_bytes("Intro — ok\n".encode() + ENGLISH.encode("cp1252"))

    docs, skipped = load_paths([tmp_path])
    texts = {d.source: d.text for d in docs}
    assert texts["english.txt"].startswith("The Ministry’s plan is “bold” — it funds")
    assert "대덕연구개발특구는 1973년에 조성되었다." in texts["korean.txt"]
    assert "대덕연구개발특구는" in texts["page.html"]
    assert texts["notes.md"] == "Notes\n\nPlain."
    reasons = {Path(s.path).name: s.reason for s in skipped}
    assert set(reasons) == {"random.txt", "mixed.txt"}
    assert reasons["random.txt"].startswith("it looks like binary data, not text")
    assert reasons["mixed.txt"].startswith("it mixes UTF-8 with another encoding (line 2 ")
    assert all("save it as UTF-8" in r or "binary" in r for r in reasons.values())
