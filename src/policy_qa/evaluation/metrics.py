"""Scoring functions for the evaluation: pure, small, and tested on hand-made cases.

This module owns every number the report prints. It imports only the standard library and
must not know about systems, files or models: callers hand it strings, spans and floats.

Definitions (also in ``eval/README.md``)

- *Answer normalisation* follows SQuAD: lower-case, drop punctuation and the articles
  a/an/the, collapse whitespace. When the gold answer contains Hangul, spaces are removed as
  well (Korean spacing varies) and token F1 is computed over characters, as KorQuAD does.
- A gold answer is an alternative; an alternative may be a list of parts that must *all*
  appear (for list questions). *Answer present* is true when any alternative is contained in
  the normalised prediction. *Token F1* / *token recall* take the maximum over alternatives.
- *Overlap*: two character spans overlap when they share at least half of the shorter one.
  The same rule decides whether a retrieved passage covers a gold evidence span and whether a
  citation quote overlaps gold evidence, for every system alike.
- *Retrieval* is scored against gold evidence spans, not against one system's chunks, so that
  systems that chunk differently are compared fairly. For each ranked passage the caller gives
  the set of evidence indices it covers. Recall@k is the fraction of evidence spans covered by
  the top k; MRR@k is 1/rank of the first passage covering any evidence; nDCG@k treats each
  evidence span as one relevant item found at the rank of the first passage covering it, with
  the ideal finding all of them at rank 1.
- *Citations* (in the spirit of ALCE): a citation is correct when its quote contains a gold
  answer or overlaps a gold evidence span. Precision = correct / all citations given to
  answerable questions; recall = fraction of answerable questions with at least one correct
  citation (a refused answerable question counts as a miss).
- *Refusal rate* is over unanswerable questions; *false-refusal rate* over answerable ones.
- Percentiles interpolate linearly between the two nearest ranks (numpy's default).
"""

from __future__ import annotations

import math
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..text import HANGUL_LETTER as _HANGUL

__all__ = [
    "HEADLINE_METRICS",
    "LOWER_IS_BETTER",
    "Gold",
    "Span",
    "answer_present",
    "citation_correct",
    "citation_scores",
    "coverage",
    "first_hit_rank",
    "has_hangul",
    "locate",
    "mean",
    "mrr_at_k",
    "ndcg_at_k",
    "normalize_answer",
    "overlaps",
    "percentile",
    "rate",
    "recall_at_k",
    "refusal_curve",
    "throughput",
    "token_f1",
    "token_recall",
    "wilson",
]

Gold = str | Sequence[str]  # one alternative: a string, or parts that must all appear

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation) | {"\u2018", "\u2019", "\u201c", "\u201d", "\u00b7", "\u2026"}
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})


def has_hangul(text: str) -> bool:
    return bool(_HANGUL.search(text))


def normalize_answer(text: str, *, korean: bool = False) -> str:
    """SQuAD normalisation; with ``korean`` the spaces go too."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    text = " ".join(text.split())
    if korean:
        text = text.replace(" ", "")
    return text


def _parts(gold: Gold) -> list[str]:
    return [gold] if isinstance(gold, str) else [str(p) for p in gold]


def _is_korean(gold: Gold) -> bool:
    return any(has_hangul(p) for p in _parts(gold))


def answer_present(prediction: str, golds: Iterable[Gold]) -> bool:
    """True when every part of some gold alternative is contained in the prediction."""
    for gold in golds:
        korean = _is_korean(gold)
        pred = normalize_answer(prediction, korean=korean)
        parts = [normalize_answer(p, korean=korean) for p in _parts(gold)]
        parts = [p for p in parts if p]
        if parts and all(_contains(pred, p, korean) for p in parts):
            return True
    return False


def _contains(haystack: str, needle: str, korean: bool) -> bool:
    if korean:
        return needle in haystack
    # Latin letters and digits bound the match, so that "20" is not found inside "2015"
    # (while "1973" is found in "1973년").
    return re.search(rf"(?<![a-z0-9]){re.escape(needle)}(?![a-z0-9])", haystack) is not None


def _tokens(text: str, korean: bool) -> list[str]:
    norm = normalize_answer(text, korean=False)
    if korean:
        return [ch for ch in norm if not ch.isspace()]
    return norm.split()


def _overlap_counts(prediction: str, gold: Gold) -> tuple[int, int, int]:
    korean = _is_korean(gold)
    pred = _tokens(prediction, korean)
    ref = _tokens(" ".join(_parts(gold)), korean)
    common = sum((Counter(pred) & Counter(ref)).values())
    return common, len(pred), len(ref)


def token_f1(prediction: str, golds: Iterable[Gold]) -> float:
    """SQuAD token F1 (character F1 for Korean golds), the maximum over alternatives."""
    best = 0.0
    for gold in golds:
        common, n_pred, n_ref = _overlap_counts(prediction, gold)
        if common == 0:
            continue
        precision, recall = common / n_pred, common / n_ref
        best = max(best, 2 * precision * recall / (precision + recall))
    return best


def token_recall(prediction: str, golds: Iterable[Gold]) -> float:
    """Fraction of the gold answer's tokens found in the prediction (for long references)."""
    best = 0.0
    for gold in golds:
        common, _, n_ref = _overlap_counts(prediction, gold)
        if n_ref:
            best = max(best, common / n_ref)
    return best


# --- spans ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    """A character span of one source's text."""

    source: str
    start: int
    end: int

    def __len__(self) -> int:
        return max(0, self.end - self.start)


def overlaps(a: Span, b: Span) -> bool:
    """Same source and the intersection is at least half of the shorter span."""
    if a.source != b.source:
        return False
    shared = min(a.end, b.end) - max(a.start, b.start)
    shorter = min(len(a), len(b))
    return shorter > 0 and shared > 0 and shared * 2 >= shorter


_FOLD = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u00a0": " "})


def locate(needle: str, text: str, start_hint: int = 0) -> tuple[int, int] | None:
    """Where ``needle`` sits in ``text``, ignoring differences in whitespace and quote style.

    Returns offsets into the original ``text``; the occurrence at or after ``start_hint`` is
    preferred, then the first one.
    """
    folded_needle = " ".join(needle.translate(_FOLD).split())
    if not folded_needle:
        return None
    # Collapse whitespace in text while remembering where each kept character came from.
    chars: list[str] = []
    index: list[int] = []
    previous_space = True
    for i, ch in enumerate(text.translate(_FOLD)):
        if ch.isspace():
            if not previous_space:
                chars.append(" ")
                index.append(i)
            previous_space = True
            continue
        chars.append(ch)
        index.append(i)
        previous_space = False
    folded = "".join(chars)
    hint = next((j for j, i in enumerate(index) if i >= start_hint), len(index))
    found = folded.find(folded_needle, hint)
    if found < 0:
        found = folded.find(folded_needle)
    if found < 0:
        return None
    last = found + len(folded_needle) - 1
    return index[found], index[last] + 1


# --- retrieval -----------------------------------------------------------------------------


def recall_at_k(covered: Sequence[set[int]], n_gold: int, k: int) -> float:
    """Fraction of the ``n_gold`` evidence spans covered by the first ``k`` passages."""
    if n_gold <= 0:
        raise ValueError("recall needs at least one gold evidence span")
    seen: set[int] = set()
    for hits in covered[:k]:
        seen |= hits
    return len(seen & set(range(n_gold))) / n_gold


def mrr_at_k(covered: Sequence[set[int]], k: int) -> float:
    """Reciprocal rank of the first passage that covers any evidence (0 when none in top k)."""
    for rank, hits in enumerate(covered[:k], start=1):
        if hits:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(covered: Sequence[set[int]], n_gold: int, k: int) -> float:
    """nDCG over evidence spans: each span gains 1/log2(r + 1) at the first rank r (<= k) of
    a passage covering it; the ideal ranking covers every span at rank 1.

    Counting spans rather than passages keeps the figure comparable between systems that
    chunk differently: a passage holding all the evidence at rank 1 scores 1.0 whatever the
    chunk size, and evidence split over ranks 1 and 2 scores (1 + 1/log2 3) / 2.
    """
    if n_gold <= 0:
        raise ValueError("nDCG needs at least one gold evidence span")
    first: dict[int, int] = {}
    for rank, hits in enumerate(covered[:k], start=1):
        for i in hits:
            first.setdefault(i, rank)
    dcg = sum(1.0 / math.log2(rank + 1) for i, rank in first.items() if i < n_gold)
    return dcg / n_gold


def first_hit_rank(covered: Sequence[set[int]]) -> int | None:
    """1-based rank of the first relevant passage, or None."""
    return next((rank for rank, hits in enumerate(covered, start=1) if hits), None)


def coverage(
    ranked: Sequence[Span],
    texts: Sequence[str],
    evidence: Sequence[Span],
    golds: Sequence[Gold],
    gold_source: str | None,
) -> list[set[int]]:
    """For each ranked passage, the evidence indices it covers.

    A passage covers evidence span *i* when they overlap. When no evidence span could be
    located (``evidence`` empty) but gold answers exist, there is one pseudo-span (index 0)
    covered by any passage from the gold source (any source when unknown) that contains a gold
    answer.
    """
    result: list[set[int]] = []
    for span, text in zip(ranked, texts, strict=True):
        if evidence:
            result.append({i for i, ev in enumerate(evidence) if overlaps(span, ev)})
        else:
            same_source = gold_source is None or span.source == gold_source
            result.append({0} if same_source and answer_present(text, golds) else set())
    return result


# --- citations -----------------------------------------------------------------------------


def citation_correct(
    quote: str, span: Span, golds: Sequence[Gold], evidence: Sequence[Span]
) -> bool:
    """ALCE-like: the quote contains a gold answer or overlaps a gold evidence span."""
    if golds and answer_present(quote, golds):
        return True
    return any(overlaps(span, ev) for ev in evidence)


def citation_scores(per_question: Sequence[Sequence[bool]]) -> tuple[float | None, float | None]:
    """(precision, recall) over answerable questions, each given as its citations' verdicts."""
    total = sum(len(c) for c in per_question)
    correct = sum(sum(c) for c in per_question)
    precision = correct / total if total else None
    recall = sum(1 for c in per_question if any(c)) / len(per_question) if per_question else None
    return precision, recall


# --- rates and timings ---------------------------------------------------------------------


def rate(flags: Sequence[bool]) -> float | None:
    """Fraction of true flags, None when there is nothing to count."""
    return sum(flags) / len(flags) if flags else None


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval for ``k`` successes in ``n`` (95% at the default ``z``).

    The report prints it beside refusal rates: on a sample of 100 answerable questions a
    false-refusal rate of 0.10 could as well be 0.06 or 0.17, and Wilson's interval, unlike
    the textbook one, stays inside [0, 1] and is honest at small k.
    """
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n >= 1, got k={k}, n={n}")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation, as ``numpy.percentile``."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0-100, got {q}")
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def throughput(items: int, seconds: float) -> float | None:
    """Items per second (None when no time was measured)."""
    return items / seconds if seconds > 0 else None


def refusal_curve(
    confidences: Sequence[float], answerable: Sequence[bool], thresholds: Sequence[float]
) -> list[tuple[float, float, float]]:
    """For each threshold t (refuse when confidence < t): (t, refusal rate, false-refusal rate).

    Refusal rate is over the unanswerable questions, false-refusal rate over the answerable.
    """
    if len(confidences) != len(answerable):
        raise ValueError("confidences and answerable must have the same length")
    pos = [c for c, a in zip(confidences, answerable, strict=True) if a]
    neg = [c for c, a in zip(confidences, answerable, strict=True) if not a]
    curve = []
    for t in thresholds:
        refused = sum(1 for c in neg if c < t) / len(neg) if neg else 0.0
        false_refused = sum(1 for c in pos if c < t) / len(pos) if pos else 0.0
        curve.append((float(t), refused, false_refused))
    return curve


# The figures a report charts and the regression gate checks, and those where smaller is better.
HEADLINE_METRICS = (
    "recall@5",
    "mrr@10",
    "ndcg@10",
    "answer_correct",
    "token_f1",
    "citation_precision",
    "citation_recall",
    "refusal_rate",
    "false_refusal_rate",
)
LOWER_IS_BETTER = frozenset({"false_refusal_rate", "latency_p50", "latency_p95", "index_seconds"})
