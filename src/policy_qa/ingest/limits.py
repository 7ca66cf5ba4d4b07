"""What one file may cost to index, checked before it is parsed.

This module owns the limits (``Limits``, built from ``Settings``) and the checks that need no
parser: a file's size, read without ever holding more than the limit; the sizes a ``.docx``
unpacks to, read from its zip directory; and the bounds pypdf is to apply while it
decompresses PDF streams. Each check raises ``LimitError`` with the reason shown in the index
report: the size, the limit and the setting to raise. Why these limits and defaults:
docs/decisions/062-indexing-limits.md.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..config import ENV_PREFIX, Settings
from ..errors import ConfigError, DocumentError

__all__ = [
    "LimitError",
    "Limits",
    "check_docx",
    "pdf_bounds",
    "read_limited",
    "unpacked_reason",
]

_MB = 1_000_000


class LimitError(DocumentError):
    """A file over one of the ``Limits``; ``reason`` names the limit and its setting."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Limits:
    """The limits one file is checked against, and the chunk sizes its count is measured in.

    Build it with ``Limits.from_settings(settings)``: the defaults live in ``Settings``.
    """

    max_file_mb: float
    max_unpacked_mb: float
    max_document_chunks: int
    chunk_size: int
    chunk_min: int

    def __post_init__(self) -> None:
        for name in ("max_file_mb", "max_unpacked_mb", "max_document_chunks"):
            value = getattr(self, name)
            if not value > 0:
                raise ConfigError(f"{_setting(name)} must be more than 0, got {value!r}")

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            max_file_mb=settings.max_file_mb,
            max_unpacked_mb=settings.max_unpacked_mb,
            max_document_chunks=settings.max_document_chunks,
            chunk_size=settings.chunk_size,
            chunk_min=settings.chunk_min,
        )

    def too_many_chunks(self) -> str:
        """The reason for a document over ``max_document_chunks``."""
        return (
            f"it makes more than {self.max_document_chunks:,} chunks, the limit per document; "
            f"split it, or raise {_setting('max_document_chunks')} to index it"
        )


def read_limited(path: Path, limits: Limits) -> bytes:
    """The bytes of ``path``, or ``LimitError`` if it is larger than ``max_file_mb``.

    The size is checked before reading, and reading stops one byte past the limit, so a file
    that grows meanwhile (or a size the file system misreports) cannot make us hold more.
    """
    limit = int(limits.max_file_mb * _MB)
    size = path.stat().st_size
    if size <= limit:
        with path.open("rb") as handle:
            # read(n) sets n bytes aside first: ask for the size, plus one to see growth.
            data = handle.read(size + 1)
            if len(data) > size:
                data += handle.read(limit + 1 - len(data))
        size = len(data)
    if size > limit:
        raise LimitError(
            f"it is {_mb(size)}, over the {_mb(limit)} limit per file; "
            f"raise {_setting('max_file_mb')} to index it"
        )
    return data


def check_docx(data: bytes, limits: Limits) -> None:
    """``LimitError`` if the ``.docx`` in ``data`` unpacks to more than ``max_unpacked_mb``.

    The sizes come from the zip directory, before any part is decompressed; python-docx reads
    parts whole, and Python's zip reader never yields more than a part's declared size. A file
    that is not a zip is left for the parser to report.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            parts = [(info.file_size, info.filename) for info in archive.infolist()]
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return
    total = sum(size for size, _ in parts)
    limit = int(limits.max_unpacked_mb * _MB)
    if total > limit:
        largest, name = max(parts)
        raise LimitError(
            f"it unpacks to {_mb(total)} ({name} alone is {_mb(largest)}), over the "
            f"{_mb(limit)} limit; raise {_setting('max_unpacked_mb')} to index it"
        )


def pdf_bounds(limits: Limits) -> dict[str, int]:
    """pypdf settings (for ``pypdf.apply_configuration``) under which no PDF stream is
    decompressed to more than ``max_unpacked_mb``: pypdf raises ``LimitReachedError`` at the
    bound, and ``unpacked_reason`` says it for a person. (``load`` applies them: it is the one
    module that imports pypdf.)"""
    limit = int(limits.max_unpacked_mb * _MB)
    names = (
        "maximum_declared_stream_length",
        "array_based_stream_maximum_output_length",
        "jbig2_maximum_output_length",
        "lzw_maximum_output_length",
        "run_length_maximum_output_length",
        "zlib_maximum_output_length",
        "image_maximum_buffer_size",
    )
    return dict.fromkeys(names, limit)


def unpacked_reason(limits: Limits) -> str:
    """The reason for a PDF with a stream that would unpack to more than ``max_unpacked_mb``."""
    return (
        f"a stream in it unpacks to more than {_mb(limits.max_unpacked_mb * _MB)}, the limit; "
        f"raise {_setting('max_unpacked_mb')} to index it"
    )


def _setting(name: str) -> str:
    return ENV_PREFIX + name.upper()


def _mb(size: float) -> str:
    """``50 MB``, ``61.2 MB``; sizes under a megabyte in kB, so no size reads "0.0 MB"."""
    if size < _MB:
        return f"{size / 1000:,.1f} kB".replace(".0 kB", " kB")
    return f"{size / _MB:,.1f} MB".replace(".0 MB", " MB")
