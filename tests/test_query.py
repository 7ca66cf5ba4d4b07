"""``Query``: a question read once and passed down, so that no stage works it out again."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from policy_qa import Assistant, Settings
from policy_qa.answer import ExtractiveAnswerer
from policy_qa.asks import answer_type, computation, count_focus, facets, kind_ask, precise_ask
from policy_qa.ingest import detect_language
from policy_qa.lexical import LexicalIndex, Tokenizer, latin_anchors
from policy_qa.memory_store import InMemoryStore
from policy_qa.query import Query
from policy_qa.similarity import SentenceScorer

from .tiny import hash_models, write_corpus

CHUNKS = [
    ("c1", "a.txt", "Daedeok Research Complex was established in 1973."),
    ("c2", "a.txt", "Each cluster should attract 150 businesses."),
    ("c3", "b.txt", "대덕연구단지는 1973년에 설립되었다."),
]


@pytest.fixture(scope="module")
def lexical() -> LexicalIndex:
    return LexicalIndex.build(CHUNKS, Tokenizer())


@pytest.mark.parametrize(
    "text",
    [
        "How many years after the complex was founded was it re-established?",
        "How many businesses should each cluster attract in 2005?",
        "Which industry is assigned to the cluster in Daejeon?",
        "Who chairs the Regional Innovation Council?",
        "대덕연구단지는 언제 설립되었나요?",
    ],
)
def test_it_holds_what_each_rule_says_of_the_question(lexical: LexicalIndex, text: str) -> None:
    q = Query.read(text, lexical)
    assert (q.text, q.retrieval) == (text, text)
    assert q.language == q.retrieval_language == detect_language(text)
    assert q.answer_type == answer_type(text)
    assert q.precise_ask == precise_ask(text)
    assert q.kind_ask == kind_ask(text)
    assert q.count_focus == tuple(count_focus(text))
    assert q.computation == computation(text)
    assert q.facets == facets(text)
    assert list(q.terms) == lexical.tokens(text)
    assert list(q.unique_terms) == list(dict.fromkeys(lexical.tokens(text)))
    assert list(q.anchors) == latin_anchors(text, lexical.doc_freq)


def test_its_words_are_read_once_for_the_answerer(lexical: LexicalIndex) -> None:
    q = Query.read("How many companies were there in 2005, per the Ministry's count?", lexical)
    assert {"2005", "companies", "ministry", "s"} <= q.asked  # what the question already gives
    words = dict(q.words)
    assert words["companies"] == ("compani",)
    assert words["Ministry's"] == ("ministri",)
    assert "the" not in words  # a stop word yields no term: nothing to cover


def test_a_korean_question_carries_the_romanised_names_it_spells(lexical: LexicalIndex) -> None:
    q = Query.read("대덕연구단지는 언제 설립되었나요?", lexical)
    assert q.language == "ko"
    assert "daedeok" in q.anchors
    assert q.precise_ask is None and q.kind_ask is None  # measured for English only


def test_a_second_reading_keeps_what_the_question_itself_says(lexical: LexicalIndex) -> None:
    q = Query.read("How many businesses will it attract?", lexical)
    joined = q.searching(
        "Which cluster was designated? How many businesses will it attract?", lexical
    )
    assert joined.text == q.text and joined.retrieval != q.retrieval
    assert (joined.answer_type, joined.count_focus, joined.asked) == (
        q.answer_type,
        q.count_focus,
        q.asked,
    )
    assert list(joined.terms) == lexical.tokens(joined.retrieval)
    assert q.searching(q.retrieval, lexical) is q


def test_it_is_a_frozen_value(lexical: LexicalIndex) -> None:
    q = Query.read("When was the complex established?", lexical)
    with pytest.raises(dataclasses.FrozenInstanceError):
        q.text = "something else"  # type: ignore[misc]
    again = Query.read("When was the complex established?", lexical)
    assert q == again and hash(q) == hash(again)  # equal readings: one key for a memo
    assert q != q.searching("the complex", lexical)


def test_each_vector_is_embedded_once_per_model(lexical: LexicalIndex) -> None:
    models = hash_models()
    scorer = SentenceScorer(models)
    q = Query.read("When was the complex established?", lexical)
    first = q.retrieval_vector(scorer, "use")
    assert q.text_vector(scorer, "use") is first  # one text: one vector
    assert models["use"].seen == [q.text] and models["minilm"].seen == []
    q.retrieval_vector(scorer, "minilm")
    assert models["minilm"].seen == [q.text]
    # A second reading searches other words, and keeps the question's own vector: even with the
    # scorer's cache emptied, the question is not embedded again.
    scorer.clear()
    joined = q.searching("The complex in Daejeon. When was the complex established?", lexical)
    assert joined.text_vector(scorer, "use") is first
    joined.retrieval_vector(scorer, "use")
    joined.retrieval_vector(scorer, "use")
    assert models["use"].seen == [q.text, joined.retrieval]


def _assistant(tmp_path: Path) -> Assistant:
    write_corpus(tmp_path / "docs")
    settings = Settings(data_dir=tmp_path / "data", korean_tokenizer="bigram", judge="off")
    qa = Assistant(settings=settings, store=InMemoryStore(), embeddings=hash_models())
    qa.index([tmp_path / "docs"])
    return qa


def test_stages_given_a_query_answer_as_they_do_given_its_text(tmp_path: Path) -> None:
    qa = _assistant(tmp_path)
    retriever = qa.retriever()
    text = "How many members does the Water Board have?"
    q = Query.read(text, retriever.lexical)
    passages = retriever.search(q, 3)
    assert passages == retriever.search(text, 3)
    answerer = ExtractiveAnswerer(retriever.scorer, retriever.lexical)
    assert answerer.answer(q, passages) == answerer.answer(text, passages)
    assert qa.ask(text).answer == answerer.answer(q, passages).answer


def test_a_reading_is_scored_once_for_its_passages(tmp_path: Path) -> None:
    qa = _assistant(tmp_path)
    retriever = qa.retriever()
    q = Query.read("How many members does the Water Board have?", retriever.lexical)
    passages = retriever.search(q, 3)
    answerer = ExtractiveAnswerer(retriever.scorer, retriever.lexical)
    # Weighed to choose a follow-up's reading, then answered: the second reads the first's
    # scoring (the very same evidence), it does not score the sentences again.
    evidence = answerer.evidence(q, passages)
    assert answerer.evidence(q, list(passages)) is evidence
    assert answerer.evidence(q, passages[:2]) is not evidence  # other passages: scored anew
    assert answerer.answer(q, passages).confidence == evidence.confidence


def test_an_english_question_answers_without_kiwi_as_it_does_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The answerer and the reranker only meet a passage's terms with the question's: without
    # Hangul in the question, a Korean passage is read without its Hangul runs' terms, so Kiwi
    # is neither loaded nor asked, and nothing changes (decision 109).
    from policy_qa import lexical

    write_corpus(tmp_path / "docs")
    # cluster.txt's sentences are too short to be scored; this one's are not.
    (tmp_path / "docs" / "complex.txt").write_text(
        "대덕연구단지는 1973년에 대전에 설립된 대한민국의 대표적인 연구 단지이다. 이곳에는 "
        "여러 정부 출연 연구기관과 기업 연구소가 함께 모여 있다.\n",
        encoding="utf-8",
    )
    settings = Settings(data_dir=tmp_path / "data", korean_tokenizer="kiwi", judge="off")
    qa = Assistant(settings=settings, store=InMemoryStore(), embeddings=hash_models())
    qa.index([tmp_path / "docs"])
    real = lexical._kiwi
    asked: list[int] = []
    monkeypatch.setattr(lexical, "_kiwi", lambda: asked.append(1) or real())
    retriever = qa.retriever()
    retriever.lexical.tokenizer._kiwi_terms.cache_clear()  # what indexing remembered
    retriever.lexical._tokens.clear()

    text = "When was the research complex established in 1973?"
    answer = qa.ask(text)
    assert "complex.txt" in {p.chunk.source for p in answer.passages[:3]}
    assert not Query.read(text, retriever.lexical).hangul
    assert asked == [] and retriever.lexical.tokenizer._kiwi_terms.cache_info().currsize == 0

    # Kiwi forced on every passage (each ask scores anew): the same answer, confidence and
    # citations.
    monkeypatch.setattr(Query, "hangul", property(lambda self: True))
    assert qa.ask(text) == answer
    assert asked and retriever.lexical.tokenizer._kiwi_terms.cache_info().currsize > 0
