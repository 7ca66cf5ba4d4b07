"""Tiny deterministic pieces for fast unit tests: an ``Embeddings`` and documents to store.

``HashEmbeddings`` is a hashed bag of words (no model is loaded): texts that share words are
close, and a text's vector never depends on what it is embedded with, so a test can compare
vectors computed in different calls.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

from policy_qa.store import DocumentItem
from policy_qa.types import Chunk, Document, Section

DIMENSIONS = 64


class HashEmbeddings(Embeddings):
    """Hashed bag-of-words vectors (deterministic, batch-independent) that log what they embed."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.seen.extend(texts)
        return [self._vector(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    @staticmethod
    def _vector(text: str) -> list[float]:
        vec = [0.0] * DIMENSIONS
        vec[0] = 0.01  # never the zero vector
        for word in re.findall(r"\w+", text.lower()):
            vec[int(hashlib.md5(word.encode()).hexdigest(), 16) % DIMENSIONS] += 1.0
        return vec


def hash_models(*names: str) -> dict[str, HashEmbeddings]:
    """One fresh ``HashEmbeddings`` per dense model name (default: both of policy-qa's)."""
    return {name: HashEmbeddings() for name in names or ("minilm", "use")}


def document(source: str, paragraphs: list[str]) -> tuple[Document, list[Chunk]]:
    """A document whose chunks are its paragraphs, each at its true offsets."""
    text = "\n\n".join(paragraphs)
    doc = Document(source=source, title=source, text=text, sections=(Section("S", 0, len(text)),))
    chunks, start = [], 0
    for para in paragraphs:
        chunks.append(Chunk(source, source, "S", start, start + len(para), para))
        start += len(para) + 2
    return doc, chunks


def store_item(
    source: str, paragraphs: list[str], models: tuple[str, ...] = ("minilm", "use")
) -> DocumentItem:
    """A document ready for ``Store.write_documents``, its vectors from ``HashEmbeddings``."""
    doc, chunks = document(source, paragraphs)
    rows = HashEmbeddings().embed_documents([c.text for c in chunks])
    vectors = np.asarray(rows, dtype=np.float32)
    return doc, chunks, {m: vectors for m in models}, "/data"


def write_corpus(folder: Path) -> None:
    """Three small documents in ``folder``: water.txt, parks.md and a Korean cluster.txt."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "water.txt").write_text(
        "Water policy\n\nThe Water Board meets every second Tuesday in Busan. It sets tariffs "
        "for households. Industrial users pay a separate rate.\n\nThe board has nine members. "
        "Each member serves four years.\n",
        encoding="utf-8",
    )
    (folder / "parks.md").write_text(
        "# Parks\n\nCity parks open at six in the morning. Dogs must be kept on a lead. "
        "Barbecues are allowed in marked areas only.\n",
        encoding="utf-8",
    )
    (folder / "cluster.txt").write_text(
        "국가혁신클러스터\n\n대덕연구단지는 1973년에 설립되었다. 대전은 서울에서 164킬로미터 "
        "떨어져 있다. 클러스터마다 150개 기업을 유치한다.\n",
        encoding="utf-8",
    )
