"""Every metric on hand-made cases whose numbers were worked out by hand."""

from __future__ import annotations

import math

import pytest

from policy_qa.evaluation import metrics as M
from policy_qa.evaluation.runner import aggregate, regressions

# --- answers --------------------------------------------------------------------------------


def test_normalize_answer_follows_squad() -> None:
    assert M.normalize_answer("The  Daedeok-Valley, (in 2000)!") == "daedeokvalley in 2000"
    assert M.normalize_answer("An apple a day") == "apple day"
    assert M.normalize_answer("대덕 연구 단지", korean=True) == "대덕연구단지"


def test_answer_present_any_alternative_and_word_boundaries() -> None:
    answer = "Daedeok Research Complex was established in 1973 in a bid to develop science."
    assert M.answer_present(answer, ["1973"])
    assert M.answer_present(answer, ["1999", "established in 1973"])
    assert not M.answer_present(answer, ["197"])  # not inside a longer number
    assert not M.answer_present("It hosted the summit in 2015.", ["20"])
    assert not M.answer_present(answer, [])
    assert M.answer_present("설립 연도는 1973년이다", ["1973"])  # Hangul does not bound a match


def test_answer_present_list_alternative_needs_every_part() -> None:
    answer = "incentives including financial aid, subsidies and tax exemption"
    assert M.answer_present(answer, [["financial aid", "tax exemption"]])
    assert not M.answer_present(answer, [["financial aid", "regulatory exemption"]])
    assert M.answer_present(answer, [["financial aid", "regulatory exemption"], "subsidies"])


def test_answer_present_korean_ignores_spacing() -> None:
    assert M.answer_present("차범근 축구 교실을 운영했다", ["차범근 축구교실"])
    assert not M.answer_present("차범근 축구 학교", ["차범근 축구교실"])


def test_token_f1_exact_numbers() -> None:
    # prediction tokens: established, in, 1973 (3); gold: 1973 (1); common 1
    # precision 1/3, recall 1 -> F1 = 2 * (1/3) / (4/3) = 0.5
    assert M.token_f1("established in 1973", ["1973"]) == pytest.approx(0.5)
    # best of the alternatives: "in 1973" -> p 2/3, r 1 -> 0.8
    assert M.token_f1("established in 1973", ["1973", "in 1973"]) == pytest.approx(0.8)
    assert M.token_f1("nothing shared", ["1973"]) == 0.0
    assert M.token_f1("the 1973", ["1973"]) == pytest.approx(1.0)  # articles dropped


def test_token_f1_korean_is_character_level() -> None:
    # prediction chars 차 붐 (2), gold chars 차 범 근 (3), common 1 -> p 1/2, r 1/3 -> F1 0.4
    assert M.token_f1("차붐", ["차범근"]) == pytest.approx(0.4)


def test_token_recall() -> None:
    # gold tokens: sailing, yachts, race (3); prediction has sailing and yachts -> 2/3
    assert M.token_recall("two sailing yachts", ["sailing yachts race"]) == pytest.approx(2 / 3)
    assert M.token_recall("", ["x"]) == 0.0


# --- spans and evidence ---------------------------------------------------------------------


def test_overlap_needs_half_of_the_shorter_span() -> None:
    a = M.Span("doc", 0, 100)
    assert M.overlaps(a, M.Span("doc", 50, 60))  # fully inside
    assert M.overlaps(a, M.Span("doc", 90, 110))  # 10 of 20 shared: exactly half
    assert not M.overlaps(a, M.Span("doc", 91, 111))  # 9 of 20
    assert not M.overlaps(a, M.Span("other", 0, 100))
    assert not M.overlaps(a, M.Span("doc", 100, 120))  # touching is not sharing


def test_locate_ignores_whitespace_and_quote_style() -> None:
    text = "Intro.\n\nDaejeon is South Korea’s  fifth-largest\nmetropolis. End."
    start, end = M.locate("South Korea's fifth-largest metropolis.", text) or (0, 0)
    assert text[start:end] == "South Korea’s  fifth-largest\nmetropolis."
    assert M.locate("not there", text) is None
    assert M.locate("", text) is None


def test_locate_prefers_the_occurrence_after_the_hint() -> None:
    text = "abc def. abc def."
    assert M.locate("abc def", text) == (0, 7)
    assert M.locate("abc def", text, start_hint=5) == (9, 16)


# --- retrieval ------------------------------------------------------------------------------


def test_retrieval_metrics_single_evidence() -> None:
    covered: list[set[int]] = [set(), set(), {0}, set()]
    assert M.recall_at_k(covered, 1, 1) == 0.0
    assert M.recall_at_k(covered, 1, 5) == 1.0
    assert M.mrr_at_k(covered, 10) == pytest.approx(1 / 3)
    assert M.mrr_at_k(covered, 2) == 0.0
    # DCG = 1/log2(4) = 0.5; ideal = 1/log2(2) = 1
    assert M.ndcg_at_k(covered, 1, 10) == pytest.approx(0.5)
    assert M.first_hit_rank(covered) == 3


def test_retrieval_metrics_two_evidence_spans() -> None:
    # rank 1 covers span 0, rank 2 covers span 0 again (no new gain), rank 3 covers span 1
    covered: list[set[int]] = [{0}, {0}, {1}]
    assert M.recall_at_k(covered, 2, 1) == 0.5
    assert M.recall_at_k(covered, 2, 3) == 1.0
    assert M.mrr_at_k(covered, 10) == 1.0
    # span 0 first covered at rank 1 (gain 1), span 1 at rank 3 (gain 1/log2 4 = 0.5)
    assert M.ndcg_at_k(covered, 2, 10) == pytest.approx((1.0 + 0.5) / 2)
    assert M.ndcg_at_k(covered, 2, 2) == pytest.approx(0.5)
    # one passage covering both spans is a perfect ranking
    assert M.ndcg_at_k([{0, 1}], 2, 10) == pytest.approx(1.0)
    assert M.ndcg_at_k([set(), {0, 1}], 2, 10) == pytest.approx(1 / math.log2(3))
    assert M.recall_at_k([{0, 1}], 2, 1) == 1.0


def test_retrieval_metrics_reject_no_gold() -> None:
    with pytest.raises(ValueError):
        M.recall_at_k([], 0, 5)
    with pytest.raises(ValueError):
        M.ndcg_at_k([], 0, 5)


def test_coverage_by_overlap_or_answer_fallback() -> None:
    ranked = [M.Span("a.txt", 0, 100), M.Span("a.txt", 100, 200), M.Span("b.txt", 0, 50)]
    texts = ["... 1973 ...", "nothing", "founded in 1973"]
    evidence = [M.Span("a.txt", 120, 160)]
    assert M.coverage(ranked, texts, evidence, ["1973"], "a.txt") == [set(), {0}, set()]
    # no evidence located: a passage of the gold source holding the answer counts
    assert M.coverage(ranked, texts, [], ["1973"], "a.txt") == [{0}, set(), set()]
    assert M.coverage(ranked, texts, [], ["1973"], None) == [{0}, set(), {0}]


# --- citations ------------------------------------------------------------------------------


def test_citation_correct_by_answer_or_evidence() -> None:
    evidence = [M.Span("doc", 100, 200)]
    assert M.citation_correct("established in 1973", M.Span("doc", 0, 19), ["1973"], evidence)
    assert M.citation_correct("something else", M.Span("doc", 110, 190), ["1973"], evidence)
    assert not M.citation_correct("something else", M.Span("doc", 0, 14), ["1973"], evidence)
    assert not M.citation_correct("something else", M.Span("doc", 110, 190), [], [])


def test_citation_scores_precision_and_recall() -> None:
    # q1: 2 citations, 1 right; q2: 1 citation, right; q3: none (refused); q4: 1 wrong
    per_question = [[True, False], [True], [], [False]]
    precision, recall = M.citation_scores(per_question)
    assert precision == pytest.approx(2 / 4)
    assert recall == pytest.approx(2 / 4)
    assert M.citation_scores([]) == (None, None)
    assert M.citation_scores([[], []]) == (None, 0.0)


# --- rates, latency, throughput, curve ------------------------------------------------------


def test_rates_and_means() -> None:
    assert M.rate([True, False, False, True]) == 0.5
    assert M.rate([]) is None
    assert M.mean([1.0, 2.0, 6.0]) == 3.0
    assert M.mean([]) is None


def test_percentiles_interpolate_like_numpy() -> None:
    values = [0.4, 0.1, 0.3, 0.2, 1.0]  # sorted: .1 .2 .3 .4 1.0
    assert M.percentile(values, 50) == pytest.approx(0.3)
    # p95: position 0.95 * 4 = 3.8 -> 0.4 + 0.8 * (1.0 - 0.4) = 0.88
    assert M.percentile(values, 95) == pytest.approx(0.88)
    assert M.percentile([2.0], 95) == 2.0
    assert M.percentile([], 50) is None
    with pytest.raises(ValueError):
        M.percentile(values, 101)


def test_throughput() -> None:
    assert M.throughput(120, 4.0) == 30.0
    assert M.throughput(10, 0.0) is None


def test_wilson_interval() -> None:
    # Reference values (Wilson 1927; e.g. Newcombe 1998, table I): 0 of 10 and 13 of 100.
    assert M.wilson(0, 10) == (0.0, pytest.approx(0.2775, abs=1e-4))
    assert M.wilson(13, 100) == (pytest.approx(0.0776, abs=1e-4), pytest.approx(0.2098, abs=1e-4))
    lo, hi = M.wilson(10, 10)
    assert hi == 1.0 and lo == pytest.approx(1 - 0.2775, abs=1e-4)
    # More questions, a narrower interval around the same rate.
    small, large = M.wilson(10, 100), M.wilson(30, 300)
    assert small[0] < large[0] < 0.1 < large[1] < small[1]
    with pytest.raises(ValueError):
        M.wilson(3, 2)


def test_refusal_curve() -> None:
    confidences = [0.9, 0.5, 0.2, 0.1, 0.6]
    answerable = [True, True, True, False, False]
    curve = M.refusal_curve(confidences, answerable, [0.0, 0.3, 0.55, 1.0])
    assert curve == [
        (0.0, 0.0, 0.0),
        (0.3, 0.5, 1 / 3),  # refuses 0.1 (unanswerable) and 0.2 (answerable)
        (0.55, 0.5, 2 / 3),  # also 0.5 (answerable)
        (1.0, 1.0, 1.0),
    ]
    with pytest.raises(ValueError):
        M.refusal_curve([0.1], [True, False], [0.5])


# --- aggregation of rows into a system's figures --------------------------------------------


def _row(answerable: bool, **own: object) -> dict[str, object]:
    base: dict[str, object] = {
        "answerable": answerable,
        "evidence_located": "1/1" if answerable else "0/0",
        "citations": [],
        "abstained": False,
        "latency": 1.0,
    }
    base.update(own)
    return base


def test_aggregate_hand_made_rows() -> None:
    rows = [
        _row(
            True,
            **{"recall@1": 1.0, "recall@5": 1.0, "recall@10": 1.0, "mrr@10": 1.0, "ndcg@10": 1.0},
            answer_present=True,
            token_f1=0.5,
            answer_recall=1.0,
            correct=True,
            citations=[{"correct": True}, {"correct": False}],
            latency=0.1,
        ),
        _row(
            True,
            **{"recall@1": 0.0, "recall@5": 1.0, "recall@10": 1.0, "mrr@10": 0.5, "ndcg@10": 0.6},
            answer_present=False,
            token_f1=0.0,
            answer_recall=0.0,
            correct=False,
            abstained=True,
            latency=0.3,
        ),
        _row(False, correct=True, abstained=True, latency=0.2),
        _row(False, correct=False, citations=[{"correct": False}], latency=0.4),
    ]
    f = aggregate(rows, None)
    assert f["questions"] == 4 and f["answerable"] == 2 and f["unanswerable"] == 2
    assert f["recall@1"] == 0.5 and f["recall@5"] == 1.0 and f["mrr@10"] == 0.75
    assert f["ndcg@10"] == pytest.approx(0.8)
    assert f["answer_present"] == 0.5 and f["answer_correct"] == 0.5
    assert f["token_f1"] == 0.25
    # citations of answerable questions only: 1 right of 2; 1 of 2 questions has a right one
    assert f["citation_precision"] == 0.5 and f["citation_recall"] == 0.5
    assert f["refusal_rate"] == 0.5 and f["false_refusal_rate"] == 0.5
    assert f["overall_correct"] == 0.5
    assert f["latency_p50"] == pytest.approx(0.25)
    assert f["evidence_located"] == 1.0


def test_regression_gate_directions_and_tolerance() -> None:
    baseline = {
        "tolerance": 0.05,
        "figures": {
            "s": {
                "policy-qa": {"recall@5": 0.80, "false_refusal_rate": 0.10, "citation_recall": None}
            }
        },
    }

    def results(recall: float, false_refusal: float) -> dict[str, object]:
        figures = {"recall@5": recall, "false_refusal_rate": false_refusal}
        return {"sets": {"s": {"figures": {"policy-qa": figures}}}}

    assert regressions(results(0.76, 0.14), baseline) == []
    problems = regressions(results(0.74, 0.16), baseline)
    assert len(problems) == 2
    assert "recall@5: 0.800 -> 0.740" in problems[0]
    assert "false_refusal_rate: 0.100 -> 0.160" in problems[1]
    assert regressions({"sets": {}}, baseline) == ["s: not in this run"]
    per_set = dict(baseline, tolerance={"s": 0.2, "default": 0.01})
    assert regressions(results(0.74, 0.16), per_set) == []
    assert len(regressions(results(0.74, 0.16), dict(baseline, tolerance={"default": 0.01}))) == 2
