"""A tiny deterministic ``Embeddings`` for fast unit tests (no model is loaded).

Hashed bag of words: texts that share words are close, and a text's vector never depends on
what it is embedded with, so a test can compare vectors computed in different calls.
"""

from __future__ import annotations

import hashlib
import re

from langchain_core.embeddings import Embeddings

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
