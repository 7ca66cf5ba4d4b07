"""The shared sentence-embedding cache and term coverage."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from policy_qa.lexical import LexicalIndex, Tokenizer
from policy_qa.similarity import SentenceScorer, coverage, weighted_share

from .tiny import hash_models

CHUNKS = [  # (chunk id, source, text)
    ("w1", "water.txt", "The Water Board meets in Busan every Tuesday."),
    ("w2", "water.txt", "The board has nine members."),
    ("p1", "parks.md", "City parks open at six."),
]


def test_each_text_is_embedded_once_per_model() -> None:
    models = hash_models()
    scorer = SentenceScorer(models)
    first = scorer.vectors("use", ["a cluster", "a park", "a cluster"])
    assert first.shape == (3, 64) and np.allclose(first[0], first[2])
    again = scorer.vectors("use", ["a park", "a cluster"])
    assert np.allclose(again, first[[1, 0]])
    assert models["use"].seen == ["a cluster", "a park"]
    assert models["minilm"].seen == []
    assert scorer.vectors("use", []).shape[0] == 0


def test_rows_are_unit_vectors_and_similarity_is_their_dot_product() -> None:
    scorer = SentenceScorer(hash_models())
    rows = scorer.vectors("minilm", ["the water board", "the board of water", "city parks"])
    assert np.allclose(np.linalg.norm(rows, axis=1), 1.0)
    sims = scorer.similarity("minilm", "water board", ["the board of water", "city parks"])
    assert sims[0] > sims[1]
    assert scorer.similarity("minilm", "anything", []).shape == (0,)
    # The query's own vector does as well as its text (``Query`` keeps it).
    vector = scorer.vectors("minilm", ["water board"])[0]
    texts = ["the board of water", "city parks"]
    assert np.array_equal(scorer.similarity("minilm", vector, texts), sims)


def test_primed_vectors_are_served_without_embedding() -> None:
    models = hash_models()
    scorer = SentenceScorer(models)
    given = np.ones(64, dtype=np.float32) / 8.0
    scorer.prime("use", {"stored at index time": given})
    assert scorer.missing("use", ["stored at index time", "new"]) == ["new"]
    assert np.allclose(scorer.vectors("use", ["stored at index time"])[0], given)
    assert models["use"].seen == []
    scorer.clear()
    assert scorer.missing("use", ["stored at index time"]) == ["stored at index time"]


def test_the_least_recently_used_text_is_forgotten_first() -> None:
    models = hash_models()
    scorer = SentenceScorer(models, capacity=2)
    scorer.vectors("use", ["one", "two"])
    scorer.vectors("use", ["one"])  # "two" is now the oldest
    scorer.vectors("use", ["three"])
    assert scorer.missing("use", ["one", "two", "three"]) == ["two"]


def test_the_embedder_fills_the_same_cache() -> None:
    models = hash_models()
    scorer = SentenceScorer(models)
    embed = scorer.embedder("use")
    rows = embed(["a passage sentence"])
    assert rows.shape == (1, 64) and scorer.missing("use", ["a passage sentence"]) == []
    embed(["a passage sentence"])
    assert models["use"].seen == ["a passage sentence"]


def test_the_model_follows_the_language() -> None:
    both = SentenceScorer(hash_models())
    assert both.model_for("en") == "minilm" and both.model_for("ko") == "use"
    assert SentenceScorer(hash_models("minilm")).model_for("ko") == "minilm"
    assert SentenceScorer(hash_models("use")).model_for("en") == "use"


def test_coverage_weighs_missing_rare_terms() -> None:
    index = LexicalIndex.build(CHUNKS, Tokenizer())
    text = CHUNKS[0][2]
    assert coverage(index, "When does the Water Board meet?", text) == 1.0
    low = coverage(index, "What is the budget of the Water Board?", text)
    assert 0.0 < low < 0.6
    assert coverage(index, "How was it?", text) == 0.0  # no term to cover


def test_weighted_share_is_coverage_from_known_hits() -> None:
    index = LexicalIndex.build(CHUNKS, Tokenizer())
    question = "What is the budget of the Water Board?"
    terms = list(dict.fromkeys(index.tokens(question)))
    present = set(index.tokens(CHUNKS[0][2]))
    hits = [t in present for t in terms]
    assert weighted_share(index, terms, hits) == coverage(index, question, CHUNKS[0][2])
    assert weighted_share(index, [], []) == 0.0


def test_minilm_reads_english_sentences_only() -> None:
    # Its sentence vectors are kept for English chunks only (decision 100) and an English
    # question's reranker does not score Korean sentences with it (decision 107).
    assert SentenceScorer.reads("minilm", "en") and not SentenceScorer.reads("minilm", "ko")
    assert SentenceScorer.reads("use", "ko") and SentenceScorer.reads("use", "en")


def test_an_english_question_does_not_embed_korean_sentences_with_minilm(tmp_path: Path) -> None:
    from policy_qa import Assistant, Settings
    from policy_qa.memory_store import InMemoryStore

    from .tiny import write_corpus

    write_corpus(tmp_path / "docs")
    models = hash_models()
    settings = Settings(data_dir=tmp_path / "data", korean_tokenizer="bigram", judge="off")
    qa = Assistant(settings=settings, store=InMemoryStore(), embeddings=models)
    qa.index([tmp_path / "docs"])
    models["minilm"].seen.clear()
    # Every chunk is in the reranker's head (3 documents), the Korean one included.
    passages = qa.retrieve("When was the research complex 1973 established?", k=5)
    assert "cluster.txt" in {p.chunk.source for p in passages}
    assert not any(re.search("[가-힣]", t) for t in models["minilm"].seen)
    korean = next(p for p in passages if p.chunk.source == "cluster.txt")
    assert dict(korean.scores)["rerank"] is not None
