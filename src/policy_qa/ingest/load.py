# Over 500 lines: one reader per file format (text, Markdown, HTML, PDF, Word), sharing the walk,
# the limits and the skip reasons.
"""Reading files into ``Document`` objects: finding them, decoding them, extracting blocks.

This module owns file access for ingestion: walking folders, decoding text, and the
format-specific extraction for plain text, Markdown, HTML, PDF and Word files, plus the
optional ``NAME.ext.meta.json`` sidecar. Extraction yields ``Block`` lists that ``clean``
normalises; this module must not invent its own cleaning rules, and it is the only place in
the package that imports pypdf, python-docx and BeautifulSoup.

A file that cannot be indexed raises ``DocumentError`` from ``load_file``; ``load_paths``
turns those into ``Skipped`` entries so that one bad file never stops the others.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import stat
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import DocumentError
from ..text import strip_unsafe, words
from ..types import Document, Progress, Skipped
from .chunk import TooManyChunksError, chunk_document
from .clean import Block, assemble, clean_blocks, clean_text, plain_blocks
from .decode import UndecodableError, decode_bytes
from .limits import LimitError, Limits, check_docx, pdf_bounds, read_limited, unpacked_reason
from .pages import page_starts
from .sentences import detect_language

__all__ = [
    "SUPPORTED_SUFFIXES",
    "iter_files",
    "load_file",
    "load_paths",
    "resolve_path",
    "shown_path",
]


logger = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx")
SIDECAR_SUFFIX = ".meta.json"

# Files from this size on report each step of their reading through ``progress``: about a
# second of cleaning per MB (decision 062), long enough to look stuck otherwise.
_LARGE_FILE_BYTES = 1_000_000


class UnreadableFileError(DocumentError):
    """A file that cannot be indexed; ``reason`` is what ``Skipped.reason`` shows."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"cannot index {path}: {reason}")
        self.path = path
        self.reason = reason


def iter_files(paths: Sequence[str | Path]) -> list[tuple[Path, Path]]:
    """The ``(file, root)`` pairs that ``load_paths`` will try, in a stable order.

    Folders are walked recursively in sorted order, skipping hidden files and folders (names
    starting with "."), Office lock files ("~$...") and ``*.meta.json`` sidecars; links to
    folders are not followed. A file given directly is its own entry with its folder as root,
    whatever its name. A path that does not exist is listed too (with its parent as root) so
    that it is reported, not silently lost. Unsupported file types are listed; loading them
    reports why they were skipped. (Folders that cannot be listed, and links to folders, are
    reported by ``load_paths``.)
    """
    return _find(paths)[0]


def resolve_path(path: str | Path) -> Path:
    """``path`` made absolute with its links resolved, or only made absolute when a link loop
    (or a name the system rejects) makes resolving fail; ``load_file`` then says why."""
    absolute = Path(path).expanduser().absolute()
    try:
        return absolute.resolve()
    except (OSError, RuntimeError, ValueError):  # RuntimeError: a link loop (Python < 3.13)
        return absolute


def _find(paths: Sequence[str | Path]) -> tuple[list[tuple[Path, Path]], list[Skipped]]:
    found: list[tuple[Path, Path]] = []
    problems: list[Skipped] = []
    seen: set[Path] = set()

    def add(file: Path, root: Path) -> None:
        key = resolve_path(file)
        if key not in seen:
            seen.add(key)
            found.append((file, root))

    for given in paths:
        path = Path(given).expanduser().absolute()
        if path.is_dir():
            for file in _walk(path, problems):
                add(file, path)
        else:
            add(path, path.parent)
    return found, problems


def load_paths(
    paths: Sequence[str | Path],
    progress: Progress | None = None,
    limits: Limits | None = None,
) -> tuple[list[Document], list[Skipped]]:
    """Load every supported file under ``paths`` (files or folders).

    Returns the documents and the files that were skipped with a reason a person can act on.
    ``progress(done, total, name)`` is called after each file, ``done`` counting from 1; while
    a large file is read, it is called with ``done`` unchanged and the step in ``name``.
    ``limits`` default to those of ``Settings()``.
    """
    limits = limits or Limits.from_settings(Settings())
    files, skipped = _find(paths)
    for problem in skipped:
        logger.warning("skipped %s: %s", problem.path, problem.reason)
    documents: list[Document] = []
    for done, (file, root) in enumerate(files, start=1):
        name = shown_path(_source_name(file, root))
        step = None
        if progress is not None and _is_large(file):
            step = partial(_report_step, progress, done - 1, len(files), name)
        try:
            documents.append(load_file(file, root, limits, step=step))
        except DocumentError as error:
            reason = error.reason if isinstance(error, UnreadableFileError) else str(error)
            logger.warning("skipped %s: %s", shown_path(file), reason)
            skipped.append(Skipped(path=shown_path(file), reason=reason))
        if progress is not None:
            progress(done, len(files), name)
    return documents, skipped


def shown_path(path: str | Path) -> str:
    """``path`` as text that can be printed, stored and sent: a name that is not UTF-8 keeps
    its bytes as ``\\xNN`` escapes (``café`` in Latin-1 shows as ``caf\\xe9``)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def load_file(
    path: Path,
    root: Path | None = None,
    limits: Limits | None = None,
    step: Callable[[str], None] | None = None,
) -> Document:
    """Read one file into a cleaned ``Document``; raise ``DocumentError`` if it cannot be.

    ``source`` is ``path`` relative to ``root`` (POSIX separators), or its file name. The
    file is checked against ``limits`` (default: those of ``Settings()``) before it is
    parsed, and its chunks are counted after. ``step(what)`` hears each step as it starts.
    """
    limits = limits or Limits.from_settings(Settings())
    path = Path(path).expanduser().absolute()
    if shown_path(path) != str(path):
        # Python keeps the bytes of such a name as lone surrogates, which no index, JSON or
        # terminal accepts; renaming is the user's fix.
        raise UnreadableFileError(
            path, "its name (or a folder's in its path) is not valid UTF-8; rename it"
        )
    try:
        mode = path.stat().st_mode
    except (OSError, ValueError) as error:
        raise UnreadableFileError(path, _missing_reason(path, error)) from error
    if not stat.S_ISREG(mode):
        raise UnreadableFileError(path, "not a regular file")
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        shown = suffix or "(no extension)"
        raise UnreadableFileError(
            path, f"unsupported file type {shown} (supported: {', '.join(SUPPORTED_SUFFIXES)})"
        )
    if step:
        step("reading")
    try:
        data = read_limited(path, limits)
        if suffix == ".docx":
            check_docx(data, limits)
    except LimitError as error:
        raise UnreadableFileError(path, error.reason) from error
    except OSError as error:
        raise UnreadableFileError(
            path, f"could not read file: {error.strerror or error}"
        ) from error

    if step:
        step("extracting and cleaning text")
    try:
        title, blocks, pages = _extract(path, suffix, data, limits)
    except UndecodableError as error:
        raise UnreadableFileError(path, error.reason) from error
    text, sections = assemble(blocks)
    if not text.strip():
        raise UnreadableFileError(path, "empty after cleaning")

    meta = _read_sidecar(path)
    title = _clean_title(meta.get("title")) or _clean_title(title)
    if not title and sections and sections[0].start == 0:
        title = sections[0].title
    title = title or _title_from_name(path)
    language = meta.get("language") if isinstance(meta.get("language"), str) else None
    if step and not language:
        step("finding the language")
    document = Document(
        source=_source_name(path, root),
        title=title,
        text=text,
        sections=sections,
        language=_primary_language(language) or detect_language(text),
        path=str(path),
        page_starts=page_starts(text, pages),
    )
    if step:
        step("counting chunks")
    try:
        chunk_document(document, limits.chunk_size, limits.chunk_min, limits.max_document_chunks)
    except TooManyChunksError as error:
        raise UnreadableFileError(path, limits.too_many_chunks()) from error
    return document


def _report_step(progress: Progress, done: int, total: int, name: str, what: str) -> None:
    progress(done, total, f"{name} ({what})")


def _missing_reason(path: Path, error: OSError | ValueError) -> str:
    code = getattr(error, "errno", None)
    if code == errno.ELOOP:
        return "it is a symbolic link loop (a link that leads back to itself); fix or remove it"
    if code == errno.ENOENT and path.is_symlink():
        return "it is a symbolic link to a file that does not exist"
    if code in (errno.ENOENT, errno.ENOTDIR):
        return "file not found"
    if code == errno.EACCES:
        return "permission denied: the file cannot be read"
    return f"could not read file: {getattr(error, 'strerror', None) or error}"


def _is_large(path: Path) -> bool:
    try:
        return path.stat().st_size >= _LARGE_FILE_BYTES
    except (OSError, ValueError):
        return False  # load_file says what is wrong with it


# --- finding files --------------------------------------------------------------------------


def _walk(folder: Path, problems: list[Skipped]) -> Iterator[Path]:
    def unreadable(error: OSError) -> None:
        where = shown_path(error.filename or folder)
        reason = f"could not open the folder: {error.strerror or error}"
        problems.append(Skipped(path=where, reason=reason))

    for dirpath, dirnames, filenames in os.walk(folder, onerror=unreadable):
        # Sorting in place makes os.walk descend in a stable order.
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in dirnames:
            if os.path.islink(os.path.join(dirpath, name)):
                # os.walk does not follow them (a link to a parent would never end); say so.
                problems.append(
                    Skipped(
                        path=shown_path(Path(dirpath) / name),
                        reason="it is a link to a folder, and links to folders are not "
                        "followed; index the folder it points to",
                    )
                )
        for name in sorted(filenames):
            if name.startswith((".", "~$")) or name.lower().endswith(SIDECAR_SUFFIX):
                continue
            yield Path(dirpath) / name


def _primary_language(tag: str | None) -> str:
    """A sidecar's language tag as the models are keyed by it: its primary subtag, lower-cased
    ("en-US" and "en_GB" are "en"). A regional tag would otherwise count as a language no
    sentence model reads, and MiniLM would embed an English chunk's Latin runs only
    (docs/decisions/100-indexing-profile-and-speed.md, "Korean, sixth session")."""
    return (tag or "").strip().lower().replace("_", "-").split("-")[0]


def _source_name(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return path.relative_to(Path(root).expanduser().absolute()).as_posix()
        except ValueError:
            pass
    return path.name


def _read_sidecar(path: Path) -> dict[str, Any]:
    sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
    if not sidecar.is_file():
        return {}
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        # A broken sidecar should not cost the document itself.
        logger.warning("ignoring %s: %s", sidecar, error)
        return {}
    if not isinstance(meta, dict):
        logger.warning("ignoring %s: expected a JSON object", sidecar)
        return {}
    return meta


def _clean_title(title: object) -> str:
    if not isinstance(title, str):
        return ""
    title = " ".join(strip_unsafe(unicodedata.normalize("NFC", title)).split())
    # Producers write placeholders into PDF/Word metadata; they are not titles.
    if title.lower() in {"untitled", "untitled document", "title", "document", "(anonymous)"}:
        return ""
    return title


def _title_from_name(path: Path) -> str:
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    words = re.sub(r"[-_.]+", " ", stem).strip()
    return words[:1].upper() + words[1:] if words else path.name


# --- extractors: (path, bytes) -> (title found in the file, cleaned blocks, pages) ----------

# The raw text of each page, for ``page_starts``: () for formats without pages.
Extracted = tuple[str, list[Block], Sequence[str]]


def _extract_text(path: Path, data: bytes) -> Extracted:
    return "", plain_blocks(clean_text(decode_bytes(data))), ()


_FENCE = re.compile(r"^\s{0,3}(```+|~~~+)")
_ATX = re.compile(r"^\s{0,3}(#{1,6})(?:\s+(.*?))?\s*#*\s*$")
_SETEXT = re.compile(r"^\s{0,3}(=+|-+)\s*$")
_RULE = re.compile(r"^\s{0,3}([-*_])(?:\s*\1){2,}\s*$")
_REF_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*\S+.*$")
_TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
_MD_BULLET = re.compile(r"^(\s*)(?:[-*+]|\d{1,3}[.)])\s+(\[[ xX]\]\s+)?")
_HTML_BLOCK = re.compile(r"<(script|style|noscript|iframe|template)\b.*?</\1\s*>", re.I | re.S)
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.S)
_HTML_TAG = re.compile(r"</?[A-Za-z][^<>]*>")
_IMAGE = re.compile(r"!\[([^\]]*)\]\((?:[^()]|\([^()]*\))*\)")
_LINK = re.compile(r"\[([^\]]+)\]\((?:[^()]|\([^()]*\))*\)")
_REF_LINK = re.compile(r"\[([^\]]+)\]\[[^\]]*\]")
_AUTOLINK = re.compile(r"<((?:https?|mailto|ftp|javascript|data|vbscript):[^<>\s]*)>", re.I)
_UNSAFE_URL = re.compile(r"\b(?:javascript|vbscript|data):\S*", re.I)
_EMPHASIS = (
    re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"),
    re.compile(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])"),
    re.compile(r"(?<!\w)_(?=\S)(.+?)(?<=\S)_(?!\w)"),
    re.compile(r"~~(?=\S)(.+?)(?<=\S)~~"),
)
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_FRONT_MATTER = re.compile(r"\A---\n(.*?)\n(?:---|\.\.\.)\n", re.S)


def _extract_markdown(path: Path, data: bytes) -> Extracted:
    text = decode_bytes(data).replace("\r\n", "\n").replace("\r", "\n")
    title = ""
    front = _FRONT_MATTER.match(text)
    if front:
        found = re.search(r"^title:\s*['\"]?(.*?)['\"]?\s*$", front.group(1), re.M)
        title = found.group(1) if found else ""
        text = text[front.end() :]
    text = _HTML_COMMENT.sub("", _HTML_BLOCK.sub("", text))

    blocks: list[Block] = []
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            blocks.append(Block("\n".join(paragraph)))
            paragraph.clear()

    lines = text.split("\n")
    fence: str | None = None
    for i, line in enumerate(lines):
        if fence is not None:
            if line.strip().startswith(fence):
                fence = None
                flush()
            else:
                paragraph.append(line)
            continue
        opened = _FENCE.match(line)
        if opened:
            flush()
            fence = opened.group(1)[:3]
            continue
        atx = _ATX.match(line)
        if atx:
            flush()
            blocks.append(Block(_md_inline(atx.group(2) or ""), len(atx.group(1))))
            continue
        setext = _SETEXT.match(line)
        if setext and len(paragraph) == 1 and lines[i - 1].strip():
            level = 1 if setext.group(1).startswith("=") else 2
            blocks.append(Block(_md_inline(paragraph.pop()), level))
            continue
        if not line.strip() or _RULE.match(line) or _REF_DEF.match(line):
            flush()
            continue
        if _TABLE_SEPARATOR.match(line) and "|" in line:
            continue
        stripped = line.strip()
        while stripped.startswith(">"):
            stripped = stripped[1:].lstrip()
        if stripped.startswith("|") or stripped.endswith("|"):
            cells = [c.strip() for c in stripped.strip("|").split("|")]
            stripped = " | ".join(c for c in cells if c)
        bullet = _MD_BULLET.match(stripped)
        if bullet:
            # Each list item is a line of its own, with one bullet style for all formats.
            stripped = "- " + stripped[bullet.end() :]
        stripped = _md_inline(stripped)
        hard_break = i > 0 and lines[i - 1].endswith(("  ", "\\"))
        if paragraph and not bullet and "|" not in stripped and not hard_break:
            # Markdown joins soft-wrapped lines; keeping the break would end a sentence there.
            paragraph[-1] = f"{paragraph[-1]} {stripped}"
        else:
            if paragraph:
                paragraph[-1] = paragraph[-1].removesuffix("\\")
            paragraph.append(stripped)
    flush()
    return title, clean_blocks(blocks), ()


def _md_inline(text: str) -> str:
    text = _IMAGE.sub(lambda m: m.group(1), text)
    text = _LINK.sub(lambda m: m.group(1), text)
    text = _REF_LINK.sub(lambda m: m.group(1), text)
    text = _AUTOLINK.sub(lambda m: "" if _UNSAFE_URL.match(m.group(1)) else m.group(1), text)
    text = _HTML_TAG.sub("", text)
    text = _UNSAFE_URL.sub("", text)
    text = _CODE_SPAN.sub(lambda m: m.group(2).strip(), text)
    for pattern in _EMPHASIS:
        text = pattern.sub(lambda m: m.group(m.lastindex or 1), text)
    return re.sub(r"\\([\\`*_{}\[\]()#+\-.!|>~])", r"\1", text)


_DROP_TAGS = sorted(
    words(
        "script style nav header footer aside form noscript template iframe svg canvas button "
        "select option textarea input object embed head"
    )
)
_BLOCK_TAGS = words(
    """p div li ul ol dl dt dd pre blockquote section article main table thead tbody tfoot tr
    caption figure figcaption address details summary hr h1 h2 h3 h4 h5 h6 center"""
)
_BREAK = "\x00"


def _extract_html(path: Path, data: bytes) -> Extracted:
    from bs4 import BeautifulSoup
    from bs4.element import CData, NavigableString, PreformattedString, Tag

    head = data[:4096].decode("ascii", errors="ignore")
    declared = re.search(r"charset\s*=\s*[\"']?([\w-]+)", head, re.I)
    soup = BeautifulSoup(decode_bytes(data, declared.group(1) if declared else None), "lxml")

    title = ""
    if soup.title and soup.title.get_text(strip=True):
        title = soup.title.get_text(" ", strip=True)
    for tag in soup.find_all(_DROP_TAGS):
        tag.decompose()
    hidden = []
    for tag in soup.find_all(True):
        # Hidden elements are not part of what a reader sees.
        style = str(tag.get("style", "")).replace(" ", "").lower()
        if tag.has_attr("hidden") or tag.get("aria-hidden") == "true" or "display:none" in style:
            hidden.append(tag)
    for tag in hidden:
        if not tag.decomposed:
            tag.decompose()
    if not title:
        first_h1 = soup.find("h1")
        if first_h1 is not None:
            title = first_h1.get_text(" ", strip=True)

    # (text, heading level, kind): list items and table rows become lines of one paragraph.
    pieces: list[tuple[str, int, str]] = []
    current: list[str] = []

    def flush(level: int = 0, kind: str = "") -> None:
        text = "".join(current)
        current.clear()
        # Source whitespace is layout; only <br> (marked by _BREAK) breaks a line.
        lines = [" ".join(part.split()) for part in text.split(_BREAK)]
        joined = "\n".join(line for line in lines if line)
        if joined.strip("- "):
            pieces.append((joined, level, kind))

    def walk(node: Tag) -> None:
        for child in node.children:
            if isinstance(child, PreformattedString) and not isinstance(child, CData):
                continue  # comments, doctypes, processing instructions
            if isinstance(child, NavigableString):
                current.append(str(child))
                continue
            if not isinstance(child, Tag):
                continue
            name = child.name.lower()
            if name == "br":
                current.append(_BREAK)
            elif re.fullmatch(r"h[1-6]", name):
                flush()
                walk(child)
                flush(int(name[1]))
            elif name == "tr":
                flush()
                cells = [c.get_text(" ", strip=True) for c in child.find_all(["td", "th"])]
                current.append(" | ".join(c for c in cells if c))
                flush(kind="tr")
            elif name == "li":
                flush()
                current.append("- ")
                walk(child)
                flush(kind="li")
            elif name in _BLOCK_TAGS:
                flush()
                walk(child)
                flush()
            else:
                walk(child)

    root = soup.find("main") or soup.body or soup
    if isinstance(root, Tag):
        walk(root)
    flush()

    blocks: list[Block] = []
    previous_kind = ""
    for text, level, kind in pieces:
        if kind and kind == previous_kind and blocks:
            blocks[-1] = Block(f"{blocks[-1].text}\n{text}")
        else:
            blocks.append(Block(text, level))
        previous_kind = kind
    return title, clean_blocks(blocks), ()


def _extract(path: Path, suffix: str, data: bytes, limits: Limits) -> Extracted:
    if suffix != ".pdf":
        return _EXTRACTORS[suffix](path, data)
    from pypdf import apply_configuration
    from pypdf.errors import LimitReachedError

    try:
        with apply_configuration(None, **pdf_bounds(limits)):
            return _extract_pdf(path, data)
    except LimitReachedError as error:
        raise UnreadableFileError(path, unpacked_reason(limits)) from error


def _extract_pdf(path: Path, data: bytes) -> Extracted:
    import io

    from pypdf import PdfReader
    from pypdf.errors import LimitReachedError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnreadableFileError(path, "could not read PDF: it is password-protected")
        pages = [page.extract_text() or "" for page in reader.pages]
        metadata = reader.metadata
        title = (metadata.title if metadata else None) or ""
    except (UnreadableFileError, LimitReachedError):
        raise
    except Exception as error:  # pypdf raises many types for damaged files
        raise UnreadableFileError(path, f"could not read PDF: {error}") from error
    if not any(p.strip() for p in pages):
        raise UnreadableFileError(
            path, "empty after cleaning (the PDF has no text layer; is it a scan needing OCR?)"
        )
    kept = _page_lines(pages)
    return str(title), plain_blocks(clean_text(_reflow_pdf(kept))), ["\n".join(p) for p in kept]


_PAGE_NUMBER = re.compile(
    r"^(?:page\s*)?[-–—(]?\s*\d{1,4}\s*[-–—)]?(?:\s*(?:of|/)\s*\d{1,4})?$", re.I
)


def _page_lines(pages: list[str]) -> list[list[str]]:
    """Each page's lines without running headers, footers and page numbers (lines repeated
    on most pages, or a number at the top or bottom)."""
    page_lines = [[" ".join(line.split()) for line in page.split("\n")] for page in pages]
    counts: dict[str, int] = {}
    for page in page_lines:
        filled = [line for line in page if line]
        for line in {*filled[:2], *filled[-2:]}:
            counts[line] = counts.get(line, 0) + 1
    repeated = {line for line, n in counts.items() if len(pages) >= 3 and n * 2 > len(pages)}
    kept: list[list[str]] = []
    for page in page_lines:
        used = [i for i, line in enumerate(page) if line]
        edges = {*used[:1], *used[-1:]}
        # Page numbers only count at the top or bottom: elsewhere "2019" may be data.
        kept.append(
            [
                line
                for i, line in enumerate(page)
                if line not in repeated and not (i in edges and _PAGE_NUMBER.match(line))
            ]
        )
    return kept


def _reflow_pdf(page_lines: list[list[str]]) -> str:
    """Join a PDF's lines (``_page_lines``) into paragraphs: PDF text is laid out line by
    line, so paragraph breaks must be inferred from short lines and sentence ends."""
    lines: list[str] = []
    for page in page_lines:
        lines.extend(page)
        lines.append("")  # a page break may end a paragraph; reflow decides below
    lengths = sorted(len(line) for line in lines if line)
    width = lengths[int(len(lengths) * 0.8)] if lengths else 0

    paragraphs: list[list[str]] = [[]]
    for i, line in enumerate(lines):
        if not line:
            if paragraphs[-1] and not _continues(paragraphs[-1][-1], lines, i, width):
                paragraphs.append([])
            continue
        short = len(line) < 0.7 * width
        ends = bool(re.search(r"[.!?:。)\"”]$", line))
        after_sentence = paragraphs[-1] and re.search(r"[.!?:。]$", paragraphs[-1][-1])
        if short and not ends and line[:1].isupper() and after_sentence:
            paragraphs.append([])  # a short capitalised line after a full stop: a heading
        paragraphs[-1].append(line)
        if short and (ends or not re.search(r"[,;]$|\w-$", line)):
            paragraphs.append([])
    joined = []
    for para in paragraphs:
        text = ""
        for line in para:
            if text.endswith("-") and line[:1].islower():
                text += "\n" + line  # clean_text decides if this hyphen was a line-break split
            else:
                text = f"{text} {line}" if text else line
        if text:
            joined.append(text)
    return "\n\n".join(joined)


def _continues(previous: str, lines: list[str], i: int, width: int) -> bool:
    """Whether the text after a page break continues the previous paragraph."""
    nxt = next((line for line in lines[i + 1 :] if line), "")
    full = len(previous) >= 0.7 * width
    return full and not re.search(r"[.!?:。]$", previous) and nxt[:1].islower()


def _extract_docx(path: Path, data: bytes) -> Extracted:
    import io

    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(io.BytesIO(data))
        title = document.core_properties.title or ""
        blocks: list[Block] = []
        for item in document.iter_inner_content():
            if isinstance(item, Paragraph):
                text = item.text
                style = (item.style.name if item.style is not None else "") or ""
                level = _heading_level(style)
                if level == 0 and style.lower().startswith("list"):
                    text = "- " + text
                blocks.append(Block(text, level))
            elif isinstance(item, Table):
                blocks.extend(_table_blocks(item))
        pages = _docx_pages(document.element.body)
    except Exception as error:  # python-docx raises zip, XML and key errors for damaged files
        raise UnreadableFileError(path, f"could not read Word document: {error}") from error
    return title, clean_blocks(b for b in blocks if b.text.strip("- ")), pages


def _docx_pages(body: Any) -> list[str]:
    """The text of each page of a Word file, cut at its page breaks; [] when it has none.

    Word lays pages out when it shows a file, so a .docx knows its pages only through marks:
    where Word last broke pages when it saved (``w:lastRenderedPageBreak``), used when there
    are any, else explicit breaks (a page break, "page break before" on a paragraph).
    """
    from docx.oxml.ns import qn

    text, rendered, br = qn("w:t"), qn("w:lastRenderedPageBreak"), qn("w:br")
    before = qn("w:pageBreakBefore")
    by_word = next(body.iter(rendered), None) is not None
    off = {"0", "false", "off"}
    pages: list[list[str]] = [[]]
    for element in body.iter():
        tag = element.tag
        if tag == text:
            pages[-1].append(element.text or "")
        elif by_word:
            if tag == rendered:
                pages.append([])
        elif (tag == br and element.get(qn("w:type")) == "page") or (
            tag == before and element.get(qn("w:val"), "true").lower() not in off
        ):
            pages.append([])
    return ["".join(page) for page in pages] if len(pages) > 1 else []


def _heading_level(style: str) -> int:
    name = style.strip().lower()
    if name == "title":
        return 1
    match = re.fullmatch(r"(?:heading|제목)\s*(\d)", name)
    # Word's "Title" sits above "Heading 1", so headings start one level lower.
    return int(match.group(1)) + 1 if match else 0


def _table_blocks(table: Any) -> list[Block]:
    rows: list[str] = []
    for row in table.rows:
        cells: list[str] = []
        previous = None
        for cell in row.cells:
            # Merged cells come back once per grid column; show their text once.
            if previous is not None and cell._tc is previous:
                continue
            previous = cell._tc
            text = " ".join(cell.text.split())
            if text:
                cells.append(text)
        if cells:
            rows.append(" | ".join(cells))
    return [Block("\n".join(rows))] if rows else []


_EXTRACTORS: dict[str, Callable[[Path, bytes], Extracted]] = {
    ".txt": _extract_text,
    ".md": _extract_markdown,
    ".markdown": _extract_markdown,
    ".html": _extract_html,
    ".htm": _extract_html,
    ".pdf": _extract_pdf,
    ".docx": _extract_docx,
}
