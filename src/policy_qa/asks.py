"""What a question asks for beyond the reader's sentence: two stated facts combined.

"How many years after the complex was founded was it re-established?" is answered by no single
sentence: one says 1973, another 2005, and the answer is their difference. The answerer finds
the facts (``compute``); this module only tells that the question asks for a combination, and
which:

- ``difference``: a span between two stated years ("how many years after / between / before",
  "how long after", "몇 년 후 / 만에 / 차이", "...부터 ...까지 몇 년");
- ``product``: a total over a count of like things ("if each of the clusters attracts 150
  businesses, how many in total?", "각 ... 모두 몇");
- ``sum``: a total of separately stated amounts ("in total", "combined", "합계").

These are rules about words, kept because a held-out ablation showed what they buy
(docs/decisions/073-computed-answers.md); the arithmetic itself is done on numbers quoted from
cited sentences (``compute``), never made up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Computation", "computation", "facets"]


@dataclass(frozen=True)
class Computation:
    """How a question combines two stated facts: ``kind`` is ``difference``, ``product`` or
    ``sum``; ``unit`` is what the result counts ("years" for a span of years, else "")."""

    kind: str
    unit: str = ""


_RELATION = (
    r"(?:after|before|between|since|passed|later|earlier|separate[sd]?|apart|elapsed|until|from)"
)
_SPAN = re.compile(
    rf"\bhow\s+many\s+(?:years|decades)\b.*\b{_RELATION}\b"
    rf"|\bhow\s+long\b.*\b(?:after|before|between|since|until|take|took)\b"
    rf"|\b(?:years|time)\s+(?:passed|elapsed|went\s+by)\b",
    re.IGNORECASE | re.DOTALL,
)
_SPAN_KO = re.compile(
    r"몇\s*년\s*(?:후|뒤|만|전|차이|동안|이\s*(?:걸|지나|흘))"
    r"|(?:부터|에서).*까지.*(?:몇\s*년|얼마나)"
    r"|(?:몇\s*년|얼마나)\s*(?:의\s*)?(?:차이|간격)"
)
_TOTAL = re.compile(
    r"\b(?:in\s+total|altogether|all\s+together|combined|in\s+all|total\s+number|overall\s+number)\b",
    re.IGNORECASE,
)
_TOTAL_KO = re.compile(r"모두\s*(?:합|몇)|총\s*(?:몇|얼마)|합계|합치면|전부\s*몇")
_EACH = re.compile(r"\b(?:each|every|per)\b|각\s*|마다", re.IGNORECASE)


def computation(question: str) -> Computation | None:
    """The combination ``question`` asks for, or None when one stated fact can answer it.

    >>> computation("How many years after 1973 was it re-established?")
    Computation(kind='difference', unit='years')
    >>> computation("If each cluster attracts 150, how many will the 14 attract in total?")
    Computation(kind='product', unit='')
    >>> computation("When was it re-established?") is None
    True
    """
    if _SPAN.search(question) or _SPAN_KO.search(question):
        return Computation("difference", "years")
    if _TOTAL.search(question) or _TOTAL_KO.search(question):
        return Computation("product" if _EACH.search(question) else "sum")
    return None


# "How many years separate A and B", "between A and B", "from A to B", "How long after A did B",
# "How many years before B was A", "A부터 B까지 몇 년": the two events a span of years runs between.
_BETWEEN = re.compile(
    r"\b(?:between|separate[sd]?|from)\s+(?P<a>.+?)\s+(?:and|to|until)\s+(?P<b>.+?)[?.!]*$",
    re.IGNORECASE,
)
_AFTER = re.compile(
    r"\b(?:after|since|before)\s+(?P<a>.+)\s+(?:was|were|did|had|has|does|do|is|are)\s+"
    r"(?P<b>.+?)[?.!]*$",
    re.IGNORECASE,
)
_FROM_KO = re.compile(r"^(?P<a>.+?)\s*(?:부터|에서)\s+(?P<b>.+?)\s*까지")
_AFTER_KO = re.compile(
    r"^(?P<a>.+?)\s*(?:후|뒤|이후)\s*(?:몇\s*년\s*(?:만에|후에|뒤에)?)\s*(?P<b>.+?)[?？]*$"
)


def facets(question: str) -> tuple[str, str] | None:
    """The two events a span-of-years question runs between, as written, or None.

    >>> facets("How many years separate the creation of Daedeok Valley and the launch of the belt?")
    ('the creation of Daedeok Valley', 'the launch of the belt')
    >>> facets("How many years after the complex was founded was it re-established?")
    ('the complex was founded', 'it re-established')
    """
    text = question.strip()
    for pattern in (_BETWEEN, _FROM_KO, _AFTER, _AFTER_KO):
        m = pattern.search(text)
        if m and m.group("a").strip() and m.group("b").strip():
            return m.group("a").strip(), m.group("b").strip()
    return None
