"""The refusal sentences: one wording for every answer path, recognised in models' replies."""

from __future__ import annotations

import pytest

import policy_qa
from policy_qa.refusals import REFUSAL, REFUSAL_KO, is_refusal, refusal_for


def test_the_package_exports_the_one_refusal_sentence() -> None:
    assert policy_qa.REFUSAL is REFUSAL


def test_a_korean_question_is_refused_in_english_then_korean() -> None:
    assert refusal_for("Who chairs the council?") == REFUSAL
    korean = refusal_for("위원회 의장은 누구인가요?")
    assert korean == f"{REFUSAL} {REFUSAL_KO}" and korean.startswith(REFUSAL)
    # A caller that has read the question's language already (``Query``) passes it.
    assert refusal_for("위원회 의장은 누구인가요?", "ko") == korean
    assert refusal_for("Who chairs the council?", "en") == REFUSAL


@pytest.mark.parametrize(
    "sentence",
    [
        REFUSAL,
        REFUSAL_KO,
        "The passages do not answer who chairs it.",
        "This cannot be answered from the documents.",
        "There is no relevant information about the budget.",
        "The chair is not mentioned in the passages.",
        "문서에 정보가 없습니다.",
    ],
)
def test_refusals_are_recognised(sentence: str) -> None:
    assert is_refusal(sentence)


@pytest.mark.parametrize(
    "sentence",
    [
        "Daejeon hosted the summit in 2015 [1].",
        "The council answers to the governor.",
        "대덕연구단지는 1973년에 설립되었다.",
    ],
)
def test_answers_are_not_refusals(sentence: str) -> None:
    assert not is_refusal(sentence)
