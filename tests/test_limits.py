"""Indexing limits: over-limit files are skipped before parsing, with the limit and its setting."""

from __future__ import annotations

import io
import re
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import docx
import pytest

from policy_qa.config import Settings
from policy_qa.errors import ConfigError
from policy_qa.ingest import Limits, chunk_document, load_file, load_paths
from policy_qa.ingest.chunk import TooManyChunksError

PARAGRAPH = "The council reviews each regional cluster and reports to the minister every year. "


def limits(**changes: float) -> Limits:
    return Limits.from_settings(Settings().replace(**changes))


def reasons(folder: Path, lim: Limits) -> dict[str, str]:
    _, skipped = load_paths([folder], limits=lim)
    return {Path(s.path).name: s.reason for s in skipped}


def minimal_pdf(content: bytes) -> bytes:
    """A one-page PDF whose content stream is ``content``, Flate-compressed."""
    stream = zlib.compress(content, 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.writelines(b"%010d 00000 n \n" % offset for offset in offsets)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\n" % (len(objects) + 1))
    out.write(b"startxref\n%d\n%%%%EOF\n" % xref)
    return out.getvalue()


def test_defaults_come_from_settings_and_the_environment() -> None:
    default = Limits.from_settings(Settings())
    assert (default.max_file_mb, default.max_unpacked_mb, default.max_document_chunks) == (
        50.0,
        100.0,
        20_000,
    )
    env = {"POLICY_QA_MAX_FILE_MB": "12.5", "POLICY_QA_MAX_DOCUMENT_CHUNKS": "300"}
    custom = Limits.from_settings(Settings.from_env(env))
    assert (custom.max_file_mb, custom.max_document_chunks) == (12.5, 300)


def test_a_limit_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="POLICY_QA_MAX_FILE_MB must be more than 0"):
        limits(max_file_mb=0)


def test_a_large_file_is_skipped_naming_the_limit_and_setting(tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_text(PARAGRAPH * 100, encoding="utf-8")  # 8.2 kB
    (tmp_path / "small.txt").write_text(PARAGRAPH, encoding="utf-8")
    found = reasons(tmp_path, limits(max_file_mb=0.005))
    assert found == {
        "big.txt": "it is 8.2 kB, over the 5 kB limit per file; "
        "raise POLICY_QA_MAX_FILE_MB to index it"
    }


def test_a_docx_bomb_is_skipped_from_its_zip_directory(tmp_path: Path) -> None:
    """Issue 24: a 0.44 MB .docx with a 400 MB part grew the process by 630 MB."""
    path = tmp_path / "bomb.docx"
    document = docx.Document()
    document.add_paragraph("A memo.")
    document.save(str(path))
    with (
        zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive,
        archive.open("word/media/padding.bin", "w", force_zip64=True) as part,
    ):
        for _ in range(150):  # 150 MB of zeros, about 150 kB compressed
            part.write(bytes(1_000_000))
    assert path.stat().st_size < 1_000_000

    tracemalloc.start()
    try:
        _, skipped = load_paths([path])  # the default limits
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 150 MB and the template's own parts
    assert [re.sub(r"150\.\d MB", "150.x MB", s.reason) for s in skipped] == [
        "it unpacks to 150.x MB (word/media/padding.bin alone is 150 MB), over the 100 MB "
        "limit; raise POLICY_QA_MAX_UNPACKED_MB to index it"
    ]
    assert peak < 20_000_000  # nothing was unpacked


def test_a_docx_under_the_limit_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "memo.docx"
    document = docx.Document()
    document.add_paragraph("A memo about the regional budget.")
    document.save(str(path))
    assert load_file(path, limits=limits(max_unpacked_mb=1)).text == (
        "A memo about the regional budget."
    )


def test_a_pdf_stream_that_unpacks_too_far_is_skipped(tmp_path: Path) -> None:
    content = b"BT /F1 12 Tf 72 720 Td (Policy text.) Tj ET"
    (tmp_path / "fine.pdf").write_bytes(minimal_pdf(content))
    (tmp_path / "bomb.pdf").write_bytes(minimal_pdf(content + b" " * 3_000_000))
    docs, skipped = load_paths([tmp_path], limits=limits(max_unpacked_mb=1))
    assert [d.text for d in docs] == ["Policy text."]
    assert [(Path(s.path).name, s.reason) for s in skipped] == [
        (
            "bomb.pdf",
            "a stream in it unpacks to more than 1 MB, the limit; "
            "raise POLICY_QA_MAX_UNPACKED_MB to index it",
        )
    ]


def test_a_document_with_too_many_chunks_is_skipped(tmp_path: Path) -> None:
    paragraphs = "\n\n".join(f"Part {i}. " + PARAGRAPH * 6 for i in range(12))
    (tmp_path / "long.txt").write_text(paragraphs, encoding="utf-8")
    doc = load_file(tmp_path / "long.txt")
    count = len(chunk_document(doc))
    assert count > 3

    assert load_file(tmp_path / "long.txt", limits=limits(max_document_chunks=count)) == doc
    found = reasons(tmp_path, limits(max_document_chunks=count - 1))
    assert found == {
        "long.txt": f"it makes more than {count - 1} chunks, the limit per document; "
        "split it, or raise POLICY_QA_MAX_DOCUMENT_CHUNKS to index it"
    }
    with pytest.raises(TooManyChunksError):
        chunk_document(doc, max_chunks=count - 1)
    assert chunk_document(doc, max_chunks=count) == chunk_document(doc)


def test_a_large_file_reports_each_step(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text(PARAGRAPH, encoding="utf-8")
    (tmp_path / "b-large.txt").write_text(PARAGRAPH * 13_000, encoding="utf-8")  # 1.1 MB
    seen: list[tuple[int, int, str]] = []
    docs, skipped = load_paths([tmp_path], progress=lambda *a: seen.append(a))
    assert len(docs) == 2 and not skipped
    assert seen == [
        (1, 2, "a.txt"),
        (1, 2, "b-large.txt (reading)"),
        (1, 2, "b-large.txt (extracting and cleaning text)"),
        (1, 2, "b-large.txt (finding the language)"),
        (1, 2, "b-large.txt (counting chunks)"),
        (2, 2, "b-large.txt"),
    ]
