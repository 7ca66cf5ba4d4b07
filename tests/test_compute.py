"""Answers that combine two stated facts (issue 20.4): the parts of a question, the facts the
model confirms, the arithmetic, and the answer through ``Assistant.ask``."""

from __future__ import annotations

from pathlib import Path

import pytest

from policy_qa import Assistant, Settings
from policy_qa.asks import Computation, computation, facets
from policy_qa.compute import facts_for_parts, operands, worded
from policy_qa.judge import judge_available

SPAN = Computation("difference", "years")


def test_questions_that_combine_two_facts_are_told_apart() -> None:
    assert computation("How many years passed between the launch and the summit?") == SPAN
    assert computation("대덕밸리 설립부터 과학비즈니스벨트 사업 시작까지 몇 년이 걸렸나요?") == SPAN
    assert computation("If each cluster attracts 150, how many in total?") == Computation("product")
    assert computation("When was the summit held?") is None


def test_a_span_has_two_parts() -> None:
    assert facets("How many years after the complex was established was it re-established?") == (
        "the complex was established",
        "it re-established",
    )
    assert facets("How long after its re-establishment did Daejeon host the summit?") == (
        "its re-establishment",
        "Daejeon host the summit",
    )
    assert facets("How many years separate A and B?") == ("A", "B")


def test_each_part_takes_the_first_sentence_the_model_confirms() -> None:
    texts = ["It was re-established in 2005.", "It was founded in 1973.", "A summit in 2015."]
    # By similarity alone the first part would take the 2005 sentence; the model says no.
    sims = [[0.9, 0.8, 0.1], [0.7, 0.2, 0.1]]
    yes = {(0, 1), (1, 0)}
    found = facts_for_parts(SPAN, texts, sims, lambda part, i: (part, i) in yes)
    assert found.facts == (1, 0) and found.values == (1973.0, 2005.0) and found.missing == ()
    assert worded(SPAN, found.values) == ("2005 − 1973", "32 years")


def test_a_part_no_sentence_states_is_missing() -> None:
    texts = ["It was founded in 1973.", "Nothing dated here."]
    found = facts_for_parts(SPAN, texts, [[0.9, 0.1], [0.5, 0.4]], lambda part, i: part == 0)
    assert found.values == (1973.0,) and found.missing == (1,)


def test_the_same_year_is_not_two_facts() -> None:
    texts = ["Founded in 1973.", "Also in 1973, a road."]
    found = facts_for_parts(SPAN, texts, [[0.9, 0.8], [0.9, 0.8]], lambda part, i: True)
    assert found.values == (1973.0,) and found.missing == (1,)


def test_numbers_end_at_a_full_stop_not_at_a_decimal_point() -> None:
    found = operands(
        "If each of the 14 clusters attracts businesses, how many in total?",
        Computation("product"),
        [("Each cluster will attract 150 businesses.", 0.9), ("Growth was 3.5.", 0.8)],
    )
    assert found.values == (150.0, 14.0)
    assert worded(Computation("product"), found.values) == ("150 × 14", "2100")


def test_a_span_of_years_is_answered_with_both_facts_cited(corpus_index: Path) -> None:
    if not judge_available():
        pytest.skip("the answerability check (llm extra) is not installed")
    settings = Settings.from_env().replace(index_dir=corpus_index, judge="on")
    with Assistant(settings=settings) as qa:
        _span_of_years(qa)
    # The ablation switch of decision 073: off, no answer is computed.
    with Assistant(settings=settings.replace(computed_answers=False)) as qa:
        answer = qa.ask(SPAN_QUESTION)
    assert not any(n.startswith("computed:") for n in answer.notes)
    assert " = 4 years" not in answer.answer


SPAN_QUESTION = (
    "How many years passed between the science-business belt launch and the OECD "
    "Science Summit in Daejeon?"
)


def _span_of_years(qa: Assistant) -> None:
    answer = qa.ask(SPAN_QUESTION)
    assert not answer.abstained
    assert answer.answer.startswith("2015 − 2011 = 4 years (computed from [1] and [2]).")
    assert sorted(y for c in answer.citations for y in ("2011", "2015") if y in c.quote) == [
        "2011",
        "2015",
    ]
    assert any(n.startswith("computed: 2015 − 2011 = 4 years") for n in answer.notes)
    text = qa.document_text(answer.citations[0].source)
    for c in answer.citations:
        assert text[c.start : c.end] == c.quote
