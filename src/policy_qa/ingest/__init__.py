"""Ingestion: files → cleaned text with provenance → chunks with character offsets.

``load`` finds and reads files, ``decode`` turns a text file's bytes into text, ``clean`` owns
the cleaning rules, ``sentences`` finds sentence spans and the language, ``chunk`` cuts
documents into retrievable spans. Nothing here embeds, indexes or answers.
"""

from __future__ import annotations

from .chunk import chunk_document
from .clean import clean_text
from .decode import decode_bytes
from .limits import Limits
from .load import SUPPORTED_SUFFIXES, iter_files, load_file, load_paths
from .sentences import detect_language, split_sentences

__all__ = [
    "SUPPORTED_SUFFIXES",
    "Limits",
    "chunk_document",
    "clean_text",
    "decode_bytes",
    "detect_language",
    "iter_files",
    "load_file",
    "load_paths",
    "split_sentences",
]
