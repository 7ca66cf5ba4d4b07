"""Answers that combine two stated facts: both facts cited, the result marked as computed.

The operands are numbers quoted from the answerer's best-ranked sentences, never made up: a span
of years takes the two best sentences that state different years (or one, when the question
gives the other year itself), a total takes two stated numbers. When only one of the two facts
is found the question is refused, and the refusal says which fact the documents do state
(docs/decisions/073-computed-answers.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .asks import Computation

__all__ = [
    "FACT_TRIES",
    "FACT_YES",
    "OPERAND_DEPTH",
    "OPERAND_RATIO",
    "Operands",
    "facts_for_parts",
    "operands",
    "worded",
]

OPERAND_DEPTH = 6  # best-ranked sentences searched for the two facts (073)
OPERAND_RATIO = 0.6  # a fact's sentence scores at least this share of the best sentence's (073)
FACT_YES = 0.5  # the model's P(yes) that confirms a fact (073)
FACT_TRIES = 3  # sentences per part the model is asked about, most similar first (073)

# A number ends where no digit follows, nor a point or comma that a digit follows ("in 2011."
# ends a year; "2011.5" does not).
_END = r"(?!\d|[.,]\d)"
_START = r"(?<![\d.,])"
_YEAR = re.compile(rf"{_START}(1[6-9]\d\d|20\d\d){_END}")
_NUMBER = re.compile(rf"{_START}\d{{1,3}}(?:,\d{{3}})+{_END}|{_START}\d+(?:\.\d+)?{_END}")


@dataclass(frozen=True)
class Operands:
    """The facts found for a computation: ``facts`` index the ranked sentences, ``values``
    are the numbers they state (then any the question states itself)."""

    facts: tuple[int, ...]
    values: tuple[float, ...]
    missing: tuple[int, ...] = ()  # the parts (``facts_for_parts``) no sentence states


def operands(question: str, asked: Computation, ranked: Sequence[tuple[str, float]]) -> Operands:
    """The facts for ``asked`` among ``ranked`` (sentence text, score; best first)."""
    pattern = _YEAR if asked.kind == "difference" else _NUMBER
    given = {m.group(0).replace(",", "") for m in pattern.finditer(question)}
    facts: list[int] = []
    values: list[float] = []
    best = ranked[0][1] if ranked else 0.0
    for i, (text, score) in enumerate(ranked[:OPERAND_DEPTH]):
        if score < OPERAND_RATIO * best or len(facts) + len(given) >= 2:
            break
        stated = [
            float(m.group(0).replace(",", ""))
            for m in pattern.finditer(text)
            if m.group(0).replace(",", "") not in given
        ]
        if not stated or stated[0] in values:
            continue
        facts.append(i)
        values.append(stated[0])
    return Operands(tuple(facts), tuple(values) + tuple(float(g) for g in sorted(given)))


def facts_for_parts(
    asked: Computation,
    texts: Sequence[str],
    sims: Sequence[Sequence[float]],
    confirms: Callable[[int, int], bool],
) -> Operands:
    """For each part of a span (``asks.facets``), the first of its ``FACT_TRIES`` most similar
    sentences stating a year (``sims[part][sentence]``) that the model confirms states when
    that part happened (``confirms(part, sentence)``), and states another year than the other
    part's. Similarity alone picks wrong: "the complex was established" reads most like the
    sentence on its *re*-establishment.
    """
    pattern = _YEAR if asked.kind == "difference" else _NUMBER
    stated = [[float(m.group(0).replace(",", "")) for m in pattern.finditer(t)] for t in texts]
    facts: list[int] = []
    values: list[float] = []
    missing: list[int] = []
    for part, row in enumerate(sims):
        order = [i for i in sorted(range(len(texts)), key=lambda k: -row[k]) if stated[i]]
        pick = next(
            (i for i in order[:FACT_TRIES] if stated[i][0] not in values and confirms(part, i)),
            None,
        )
        if pick is None:
            missing.append(part)
            continue
        facts.append(pick)
        values.append(stated[pick][0])
    return Operands(tuple(facts), tuple(values), missing=tuple(missing))


def worded(asked: Computation, values: Sequence[float]) -> tuple[str, str]:
    """The expression and result for two ``values``: ("2005 − 1973", "32 years")."""
    a, b = values[0], values[1]
    if asked.kind == "difference":
        expression, result = f"{_fmt(max(a, b))} − {_fmt(min(a, b))}", abs(a - b)
    elif asked.kind == "product":
        expression, result = f"{_fmt(a)} × {_fmt(b)}", a * b
    else:
        expression, result = f"{_fmt(a)} + {_fmt(b)}", a + b
    unit = f" {asked.unit}" if asked.unit else ""
    return expression, f"{_fmt(result)}{unit}"


def _fmt(value: float) -> str:
    # No thousands separator: years read as "2005", and totals as plain numbers.
    return f"{value:.0f}" if value == int(value) else f"{value:.2f}"
