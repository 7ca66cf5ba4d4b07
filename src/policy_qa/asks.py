"""What a question asks for: the kind of answer, how precisely, and whether two stated facts
must be combined.

- ``answer_type``: a coarse expected-answer type (year, when, money, population, number, who,
  where, other), which the evidence score rewards a sentence for holding;
- ``precise_ask`` and ``kind_ask``: the asks the quote check holds a yes to
  (docs/decisions/018-quote-check-for-precise-asks.md,
  docs/decisions/019-kind-asks-and-where-the-quote-comes-from.md);
- ``count_focus``: what a "how many X" question counts;
- ``computation`` and ``facets``: a question answered by no single sentence.

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
cited sentences (``compute``), never made up. This module reads only the question's words:
``Query`` (``policy_qa.query``) calls each rule once per question and holds the result
(docs/decisions/030-query-read-once.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .ingest import detect_language
from .text import HANGUL_SYLLABLE as _HANGUL

__all__ = [
    "PRECISE_ASKS",
    "Computation",
    "answer_type",
    "computation",
    "count_focus",
    "facets",
    "kind_ask",
    "precise_ask",
]

# An English "when" asks for a time only as the question's first word or as a second ask
# ("... and when?"); elsewhere it opens a clause that places the asked thing in time: "Who was
# the Minister when the follow-up was announced?" asks for a name, "Is my IP address collected
# when I visit?" for a yes or no.
_WHEN_ASKED = re.compile(r"^\W*when\b|(\band|,|;|\bsince|\buntil|\bby)\s+when\b", re.IGNORECASE)
_WHEN_CLAUSE = re.compile(r"\bwhen\b.*", re.IGNORECASE | re.DOTALL)


def answer_type(question: str) -> str:
    """A coarse expected-answer type: year / when / money / population / number / who / where /
    other."""
    q = question.lower()
    if re.search(r"what year|which year|in what year|몇\s*년|연도|어느\s*해|무슨\s*해", q):
        return "year"
    if re.search(r"\bwhen\b", q) and not _WHEN_ASKED.search(q) and not _HANGUL.search(q):
        return answer_type(_WHEN_CLAUSE.sub("", question))
    if re.search(r"\bwhen\b|what date|언제", q):
        return "when"
    if re.search(
        r"\b(budget|budgets|cost|costs|price|funding|salary|salaries|fee|fees|spend|spent|paid)\b"
        r"|how much money|\bin (won|dollars|euros|yen)\b|예산|비용|금액|가격|투자액",
        q,
    ):
        return "money"
    if re.search(r"\bpopulation\b|how many (people|residents|inhabitants|citizens)|인구", q):
        return "population"
    if re.search(
        r"how (many|much|far|long|large|big|old)|\b(percent|percentage|share|number of|amount|"
        r"size|area|total)\b|몇|얼마|규모",
        q,
    ):
        return "number"
    if re.search(r"\bwho\b|\bwhom\b|누가|누구|어느\s*대통령", q):
        return "who"
    if re.search(r"\bwhere\b|어디", q):
        return "where"
    return "other"


_HOW_MANY = re.compile(r"\bhow many\s+((?:[a-z][\w-]*\s*){1,3})", re.IGNORECASE)
_NOT_FOCUS = frozenset(
    "is are was were will would do does did have has had can could should of the a an in on at "
    "to for there it they he she we you".split()
)


# Words that count anything: "How many members will it have?" is answered by "20 specialists".
_ANY_COUNT = frozenset("members people persons ones units items things times".split())


def count_focus(question: str) -> list[str]:
    """What a "how many X" question counts: the words after each "how many", up to a verb.

    Empty when there is no "how many", or when X is a word that any count answers.
    """
    focus: list[str] = []
    for m in _HOW_MANY.finditer(question):
        words = []
        for word in m.group(1).split():
            if word.lower() in _NOT_FOCUS:
                break
            words.append(word.lower())
        if not words or _ANY_COUNT & set(words):
            return []
        focus.extend(words)
    return focus


_QUANTITY_ASK = re.compile(r"\bhow (many|much|far|long|large|big|old)\b|\bnumber of\b", re.I)
_PERCENT_ASK = re.compile(r"\b(percent|percentage|proportion)\b", re.I)
_WHO = re.compile(r"\bwho\b", re.I)
# "Who is X?" wants a description; "Who can / will / does ...?" asks for a kind of party ("our
# service providers", "law enforcement"), as policies answer it, more often than for a name.
_WHO_NOT_A_NAME = re.compile(
    r"\bwho(\s+(is|was|are|were|can|could|may|might|will|would|shall|should|must|do|does|did|"
    r"has|have|had)\b|'s\b|’s\b)",
    re.I,
)
# What "the answer" means for each precise ask, as the refusal note words it.
PRECISE_ASKS = {
    "year": "year",
    "money": "sum of money",
    "population": "number of people",
    "number": "count of what the question asks about",
    "percent": "percentage",
    "who": "name the question does not already give",
}


def precise_ask(
    question: str, *, language: str | None = None, kind: str | None = None
) -> str | None:
    """The kind of answer an English question pins down so exactly that a quote can be checked
    for it (a key of ``PRECISE_ASKS``), or None.

    Looser kinds are left out because their answers take too many shapes: "when" (a decade,
    "three years later"), "where" (a tissue, an organ), "who is X" (a description), "who can
    access my data?" (a kind of party), and "number" asked by a word such as "area" or "size"
    rather than "how many".

    ``language`` and ``kind`` are the question's language and ``answer_type`` when the caller
    has them already (``Query`` reads them once).
    """
    if (language or detect_language(question)) != "en":
        # Measured for Korean figures: Qwen quotes the wrong English sentence for a Korean
        # question often enough to refuse answerable ones
        # (docs/decisions/022-quote-check-variants-not-taken.md).
        return None
    kind = kind or answer_type(question)
    if kind in ("year", "money", "population"):
        return kind
    if kind == "number":
        if _PERCENT_ASK.search(question):
            return "percent"
        return "number" if _QUANTITY_ASK.search(question) else None
    if kind == "who" and _WHO.search(question) and not _WHO_NOT_A_NAME.search(question):
        return "who"
    return None


_AUX = r"(?:is|was|are|were|did|does|do|has|have|had|will|would|can|could|should|must|may|might)"
# "Which …", "In which …": the opening of a kind ask, up to the word after "which".
_WHICH_OPENING = r"^\W*(?:(?:in|on|at|for|from|to|by|of|with|under)\s+)?which\s+(?!" + _AUX + r"\b)"
# "Which international event did …": the noun just before the first auxiliary names the kind.
_KIND_BEFORE_AUX = re.compile(
    _WHICH_OPENING + r"(?:[a-z][\w'’-]*\s+){0,2}?([a-z][\w'’-]*)\s+" + _AUX + r"\b", re.IGNORECASE
)
# "Which country won …": no auxiliary, and the next word is the kind.
_KIND_AFTER_WHICH = re.compile(_WHICH_OPENING + r"([a-z][\w'’-]*)", re.IGNORECASE)
# "Which of these is …", "Which one …": the words after "which" name no kind.
_NOT_KINDS = frozenset("of these those them one ones".split())


def kind_ask(question: str, *, language: str | None = None) -> str | None:
    """The kind of thing an English "which <noun>" question asks for ("industry" in "Which
    industry is assigned to the cluster in Daejeon?"), or None.

    An answer of the right kind can come from the wrong sentence: over a paragraph on Daejeon
    that also tells why its research complex was founded, Qwen says yes to that question and
    quotes "the heavy chemicals industry", from a sentence about 1973 that says nothing of the
    cluster. The quote check asks such a quote to come from a sentence about what the question
    asks (``ExtractiveAnswerer.quote_verdict``). "What <noun>" is left out: in policies it asks
    for a description ("For what purpose do you use my data?", "What type of information …"),
    which the answering sentence gives in its own words; measured on PolicyQA, checking it
    refused answerable questions and no unanswerable one
    (docs/decisions/019-kind-asks-and-where-the-quote-comes-from.md). ``language``: the
    question's language, when the caller has it already.
    """
    if (language or detect_language(question)) != "en":
        return None
    m = _KIND_BEFORE_AUX.match(question) or _KIND_AFTER_WHICH.match(question)
    kind = m.group(1).lower() if m else None
    return None if kind in _NOT_KINDS else kind


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
