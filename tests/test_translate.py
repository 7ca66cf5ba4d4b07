"""Korean questions about English documents are read in English (issue 20): the names offered
to the model, the replies that are refused, and a real translation through the check's worker."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from policy_qa import Assistant, Settings
from policy_qa.judge import judge_available
from policy_qa.translate import glossary, to_english

TEXT = (
    "In the northern part of Daejeon is the famous Daedeok Research Complex. The Ministry of "
    "Trade, Industry and Energy (MOTIE) set the goal. Located south of Seoul, Daejeon grew."
)


def test_the_glossary_holds_the_names_as_the_documents_write_them() -> None:
    names = glossary([TEXT])
    assert "Daedeok Research Complex" in names
    assert "Daejeon" in names and "Seoul" in names and "MOTIE" in names
    assert not any(n.startswith("The ") for n in names)


def test_a_reply_that_is_no_english_question_is_not_used() -> None:
    def replying(text: str) -> Callable[[list[dict[str, str]], int], str]:
        return lambda messages, max_tokens: text

    assert to_english("대전은 어디인가요?", ["Daejeon"], replying("Where is Daejeon?")) == (
        "Where is Daejeon?"
    )
    assert to_english("대전은 어디인가요?", [], replying("Daejeon is in Korea.")) is None
    assert to_english("대전은 어디인가요?", [], replying("대전은 어디?")) is None
    assert to_english("대전은 어디인가요?", [], replying("")) is None


def test_the_names_and_the_question_reach_the_model() -> None:
    seen: list[list[dict[str, str]]] = []

    def reply(messages: list[dict[str, str]], max_tokens: int) -> str:
        seen.append(messages)
        return "How far is Daejeon from Seoul?"

    to_english("대전은 서울에서 얼마나 떨어져 있나요?", ["Daejeon", "Seoul"], reply)
    last = seen[0][-1]["content"]
    assert "- Daejeon" in last and "대전은 서울에서" in last


def test_a_korean_question_is_answered_from_its_english_reading(corpus_index: Path) -> None:
    if not judge_available():
        pytest.skip("the model (llm extra) is not installed")
    settings = Settings.from_env().replace(index_dir=corpus_index, judge="on")
    with Assistant(settings=settings) as qa:
        answer = qa.ask("대전은 서울에서 얼마나 떨어져 있나요?")
        assert not answer.abstained
        assert "164 kilometers" in answer.answer
        assert answer.question == "대전은 서울에서 얼마나 떨어져 있나요?"
        assert any(n.startswith("read in English as “") for n in answer.notes)
        off = qa.ask("일본의 수도는 어디입니까?")  # the capital of Japan: refused, in Korean too
        assert off.abstained and "색인된 문서로는" in off.answer
