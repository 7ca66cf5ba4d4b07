# Over 500 lines: scoring, choosing and checking answer sentences are one algorithm; the reader
# (docs/decisions/070-reader-cross-encoder-measured.md) is to replace it whole, so it is not split.
"""Extractive answers: the few retrieved sentences that answer the question, each cited.

Every sentence in an answer is a verbatim span of a source's cleaned text, so each citation's
quote is exact by construction. When the evidence is too weak the answer is a refusal, with the
closest passages still attached so a person can look for themselves.

This module decides *what to say*; it does not retrieve, and it calls a language model only
through the optional answerability check it is given (``policy_qa.judge``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from .asks import PRECISE_ASKS, Computation, kind_ask, precise_ask
from .asks import answer_type as answer_type  # where tests and research scripts import it
from .compute import FACT_YES, facts_for_parts, operands, worded
from .errors import LLMError
from .ingest import detect_language, split_sentences
from .lexical import LexicalIndex
from .query import Query
from .refusals import refused
from .similarity import SentenceScorer, weighted_share
from .text import HANGUL_SYLLABLE as _HANGUL
from .text import HANGUL_SYLLABLES
from .text import WORD as _WORD
from .types import Answer, Citation, Passage

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from .judge import AnswerabilityJudge

# Calibrated on dev samples (seed 1) of CLAP NQ, PolicyQA and KorQuAD with
# research/calibrate_refusal.py (docs/decisions/013-evidence-confidence-and-refusal-threshold.md
# has the table). See ``ExtractiveAnswerer._score``.
SIMILARITY_WEIGHT = 0.4  # confidence = w * best sentence similarity + (1 - w) * term coverage
CROSS_LINGUAL_OFFSET = 0.15  # USE similarities across languages run lower than within one
KOREAN_OFFSET = 0.15  # Korean questions over Korean text: USE similarities and bigram coverage
TYPE_MISMATCH_PENALTY = 0.8
# An amount of money or of people is a precise ask: a passage without one cannot answer it.
STRICT_TYPE_PENALTY = 0.5
_STRICT_TYPES = frozenset({"money", "population"})
UNKNOWN_NAME_PENALTY = 0.6
SOFT_MATCH_FLOOR = 0.55  # word-embedding similarity below which a paraphrase earns nothing
COUNT_MATCH_FLOOR = 0.6  # how close a counted word must be to what "how many" asks about
_LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z-]{2,}")

_YEAR = re.compile(r"\b(1[5-9]\d\d|20\d\d)s?\b|\d{4}년")
_DATE = re.compile(
    r"\b(January|February|March|April|May|June|July|August|September|October|November|"
    r"December)\b|\b\d{1,2}(st|nd|rd|th)\b|\d+월|\d+일",
    re.IGNORECASE,
)
_NUMBER = re.compile(
    r"\d|\b(two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|"
    r"forty|fifty|hundred|thousand|million|billion|dozen)\b",
    re.IGNORECASE,
)
# "How many" / "몇 개" and other Korean counters ask for a count of things, never for a year.
_COUNT_ASK = re.compile(
    r"\bhow many\b(?!\s+(years|decades|centuries)\b)"
    r"|몇\s*(개|명|곳|가지|군데|차례|번|건|회|대|권|채|마리|척|종)",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"[.!?。…:;\"”’']$|[다요죠음함임됨]$")


_MONEY = re.compile(
    r"[$€£¥₩]|\b(won|dollars?|euros?|yen|usd|krw|trillion|billion|million)\b|\d+\s*원",
    re.IGNORECASE,
)
_POPULATION = re.compile(
    r"\d[\d,.]*\s*(million\s+)?(people|residents|inhabitants|citizens)|population of|인구|\d+\s*명",
    re.IGNORECASE,
)
_CAPITALISED = re.compile(r"\b[A-Z][a-zA-Z]+")
_NOT_NAMES = frozenset(
    "january february march april may june july august september october november december "
    "monday tuesday wednesday thursday friday saturday sunday i".split()
)


def _names(sentence: str) -> set[str]:
    """Capitalised words that are not just the first word of a sentence or clause, nor dates."""
    out = set()
    for m in _CAPITALISED.finditer(sentence):
        before = sentence[: m.start()].rstrip()
        if not before or before[-1] in '.!?:;"“(':
            continue
        word = m.group(0).lower()
        if word not in _NOT_NAMES:
            out.add(word)
    return out


_CLAUSE = re.compile(r"[,;:()–—]|\band\b|\bbut\b|\bwhile\b")


def _counted_words(sentence: str) -> list[str]:
    """The words that share a clause with a number in ``sentence``: what the sentence counts.

    "A cluster will be designated in each of the 14 cities" counts clusters; "the zone had
    doubled its number of companies and its revenue had grown eight times" does not.
    """
    out: list[str] = []
    for clause in _CLAUSE.split(sentence):
        words = _WORD.findall(clause)
        if any(_NUMBER.fullmatch(w) or w[0].isdigit() for w in words):
            out.extend(w.lower() for w in words if not w[0].isdigit())
    return out


def _type_match(kind: str, sentence: str, query: Query) -> float:
    """1.0 when the sentence holds the kind of thing the question asks for, else 0 (0.5: n/a).

    The thing must be new: a number, year or name that the question itself already gives
    ("How many companies were there in 2005?") is not an answer to it.
    """
    if kind == "other":
        return 0.5
    asked = query.asked
    fresh = re.sub(r"\w+", lambda m: " " if m.group(0).lower() in asked else m.group(0), sentence)
    if kind == "year":
        return 1.0 if _YEAR.search(fresh) else 0.0
    if kind == "when":
        return 1.0 if _YEAR.search(fresh) or _DATE.search(fresh) else 0.0
    if kind == "money":
        return 1.0 if _MONEY.search(fresh) else 0.0
    if kind == "population":
        return 1.0 if _POPULATION.search(fresh) else 0.0
    if kind == "number":
        if _COUNT_ASK.search(query.text):
            # A count is not a year or a date: "몇 개의 기업" (how many businesses) is not
            # answered by "dates back to the 1970s" or "On June 10th", which otherwise win
            # across languages on similarity alone.
            fresh = _DATE.sub(" ", _YEAR.sub(" ", fresh))
        return 1.0 if _NUMBER.search(fresh) else 0.0
    return 1.0 if _names(sentence) - asked else 0.0


_TWO_PART = re.compile(rf"\band\b|,|\bboth\b|그리고|각각|[{HANGUL_SYLLABLES}](와|과)\s")


def _answer_items(kind: str, sentence: str, query: Query) -> set[str]:
    """The answers of the asked kind a sentence offers (years, numbers or names)."""
    asked = query.asked
    if kind in ("year", "when"):
        found = {m.group(0) for m in _YEAR.finditer(sentence)}
    elif kind in ("number", "money", "population"):
        found = {m.group(0).lower() for m in _NUMBER.finditer(sentence)}
        found |= set(re.findall(r"\d+(?:[.,]\d+)*", sentence))
    elif kind in ("who", "where"):
        found = _names(sentence)
    else:
        return set()
    return {x for x in found if x.lower() not in asked}


_PERCENT = re.compile(r"%|\bper\s?cent\b", re.I)


def quote_ask(question: str | Query, evidence: Evidence) -> str | None:
    """The precise ask a yes to ``question`` must back with a quote (``precise_ask``), or None.

    Only when the best sentence already lacks that kind of answer (``type_miss``), except for a
    percentage, which any nearby number passes for: it is always checked.
    """
    kind = question.precise_ask if isinstance(question, Query) else precise_ask(question)
    if kind == "percent" or (kind and dict(evidence.features).get("type_miss")):
        return kind
    return None


_NAME_RUN = re.compile(
    r"[A-Z][\w'’-]*(?:(?:\s*,\s*|\s+(?:of|and|for|the|de|&)\s+|\s+)[A-Z][\w'’-]*)*"
)
_RUN_GLUE = frozenset("of and for the de".split())
_NOT_NAME_WORDS = _NOT_NAMES | frozenset(
    "the a an this that these those it its in on at he she they we text".split()
)


def quoted_names(quote: str, question: str) -> list[str]:
    """The capitalised names in ``quote`` that share no word with ``question``.

    A name is a run of capitalised words ("Lee Myung-bak", "Ministry of Trade, Industry and
    Energy"); unlike ``_names``, a quote's first word counts ("Frank wrote ..."). A run that
    repeats a question word names what was asked about, not the answer: "Who was the Minister
    of Trade?" is not answered by "the Ministry of Trade".
    """
    asked = {w.lower() for w in _WORD.findall(question)}
    out = []
    for m in _NAME_RUN.finditer(quote):
        words = [w.lower().removesuffix("'s").removesuffix("’s") for w in _WORD.findall(m.group(0))]
        words = [w for w in words if w not in _RUN_GLUE]
        if words and not set(words) & asked and not set(words) <= _NOT_NAME_WORDS:
            out.append(m.group(0))
    return out


def _as_written(word: str, text: str) -> str:
    """``word`` as ``text`` spells it (``_names`` lower-cases)."""
    m = re.search(rf"\b{re.escape(word)}\b", text, re.IGNORECASE)
    return m.group(0) if m else word


# A people's adjective and its country's name: the regular ones by their ending (Japanese,
# Korean, Australian, Iraqi), the rest by name.
_DEMONYM = re.compile(r"(ese|n|i)$")
_DEMONYMS = {
    "british": "britain", "canadian": "canada", "chinese": "china", "danish": "denmark",
    "dutch": "netherlands", "english": "england", "filipino": "philippines",
    "finnish": "finland", "french": "france", "greek": "greece", "irish": "ireland",
    "norwegian": "norway", "peruvian": "peru", "polish": "poland", "scottish": "scotland",
    "spanish": "spain", "swedish": "sweden", "swiss": "switzerland", "thai": "thailand",
    "turkish": "turkey", "welsh": "wales",
}  # fmt: skip
# A function word capitalised after the first word ("Is", "THE"): the question is in title case
# or capitals.
_TITLE_WORDS = "is are was were will do does did has have can of the an in on at to for with"
_TITLE_CASE = re.compile(
    r"(?<=\s)(?:" + "|".join(f"{w.capitalize()}|{w.upper()}" for w in _TITLE_WORDS.split()) + r")\b"
)


def _unknown_names(question: str, lexical: LexicalIndex) -> list[str]:
    """Names in the question (capitalised, not sentence-initial) that no indexed text contains,
    as the question writes them.

    A question about "Japan" put to documents that never mention Japan is not answerable from
    them, however close the rest of its words come. A name is known in its people's adjective
    too: "South Korean" to an article that only ever says "South Korea", "Californian" to a
    policy on California, "British" to one on Britain. A question in title case or capitals
    ("How Many Businesses Is Each Cluster Meant To Attract?") has no names to tell: "Meant" is
    not one.
    """

    if _TITLE_CASE.search(question):
        return []  # capitals there mark every word, not names

    def known(terms: list[str]) -> bool:
        return any(lexical.doc_freq.get(t, 0) for t in terms)

    unknown = []
    for name in sorted(_names(question), key=question.lower().find):  # in the question's order
        terms = lexical.tokenizer(name)
        if not terms or known(terms):
            continue
        root = _DEMONYMS.get(name) or _DEMONYM.sub("", name)
        if root == name or len(root) < 4 or not known(lexical.tokenizer(root)):
            unknown.append(_as_written(name, question))
    return unknown


def _piece(passage: Passage, offset: int) -> tuple[int, str]:
    """(start, text) of the part of a window that holds document ``offset``: the ranked
    chunk, or what the window added before or after it (a neighbouring chunk)."""
    c = passage.chunk
    focus_start, focus_end = passage.focus_span
    if offset < focus_start:
        start, end = c.start, focus_start
    elif offset >= focus_end:
        start, end = focus_end, c.end
    else:
        start, end = focus_start, focus_end
    return start, c.text[start - c.start : end - c.start].strip()


def _when(part: str) -> str:
    """The question the check is asked about one part of a span of years."""
    return f"When: {part}?"


def _is_heading(text: str) -> bool:
    return len(text) < 120 and not _SENTENCE_END.search(text.rstrip())


@dataclass(frozen=True)
class _Candidate:
    passage_rank: int
    source: str
    start: int
    end: int
    text: str
    title: str
    section: str
    score: float
    terms: frozenset[str]


@dataclass(frozen=True)
class Evidence:
    """How strongly the passages support an answer: what the refusal decision rests on."""

    confidence: float
    best_similarity: float
    coverage: float
    # The signals the confidence is made of, by name: recorded so that the refusal model can be
    # refitted on dev questions (research/calibrate_refusal.py) without re-deriving them.
    features: tuple[tuple[str, float], ...] = ()
    # Names in the question that no indexed text contains (``_unknown_names``).
    unknown_names: tuple[str, ...] = ()
    # Which passage the answerability check reads (its rank among the passages).
    checked_rank: int = 0


# A question's scored sentences (best first) and the evidence they give together.
_Scored = tuple[list[_Candidate], Evidence]
# Scorings an answerer keeps: a follow-up's two readings, a computed question's two passage
# lists (docs/decisions/030-query-read-once.md).
_SCORINGS_KEPT = 4


class ExtractiveAnswerer:
    """Picks answer sentences from passages and decides when to refuse.

    ``threshold`` is the confidence below which we refuse; it was chosen on the dev sets'
    unanswerable questions (docs/decisions/013-evidence-confidence-and-refusal-threshold.md).
    With a ``judge``, confidences in its band are decided by the judge instead
    (docs/decisions/014-answerability-check.md).
    """

    def __init__(
        self,
        scorer: SentenceScorer,
        lexical: LexicalIndex,
        threshold: float = 0.48,
        max_sentences: int = 3,
        passages_considered: int = 4,
        judge: AnswerabilityJudge | None = None,
    ) -> None:
        if max_sentences < 1:
            raise ValueError(f"max_sentences must be >= 1, got {max_sentences}")
        self.scorer = scorer
        self.lexical = lexical
        self.threshold = threshold
        self.max_sentences = max_sentences
        self.passages_considered = passages_considered
        self.judge = judge
        # The last few scorings, by (query, passages): a follow-up's reading is scored to
        # choose it and again to answer it, a computed question's passages to compute and
        # again to answer (docs/decisions/030-query-read-once.md). One answerer serves one
        # question in ``Assistant``, so this holds one question's readings.
        self._scored: dict[tuple[Query, tuple[Passage, ...]], _Scored] = {}

    def _read(self, question: str | Query, retrieval: str | None = None) -> Query:
        """``question`` as a ``Query`` (read now, when it is a text, for ``retrieval``)."""
        if isinstance(question, Query):
            return question
        return Query.read(question, self.lexical, retrieval or question)

    def answer(
        self,
        question: str | Query,
        passages: Sequence[Passage],
        retrieval_query: str | None = None,
    ) -> Answer:
        """The cited answer to ``question`` from ``passages``, or a refusal. ``retrieval_query``:
        the text retrieval searched, when ``question`` is a text and that differs."""
        q = self._read(question, retrieval_query)
        question, query = q.text, q.retrieval
        if not passages:
            return refused(
                question,
                (),
                ("no passage matched the question",),
                language=q.language,
                retrieval_query=query,
            )
        candidates, evidence = self._score(q, passages)
        refuse = not candidates or evidence.confidence < self.threshold
        notes: tuple[str, ...] = ()
        if refuse and candidates and evidence.unknown_names:
            # The check reads one passage and cannot know that no document names what the
            # question asks about; it said yes to "Who was the Minister of Trade ...?" over
            # "the Ministry of Trade". It may still refuse such a question, never answer it.
            said = ", ".join(f"“{name}”" for name in evidence.unknown_names)
            notes = (f"no indexed text mentions {said}: check the spelling, or add a document",)
        elif candidates and self.judge is not None and self.judge.in_band(evidence.confidence):
            # Borderline evidence: the passage is on the topic, but does it hold the answer?
            checked = passages[evidence.checked_rank]
            try:
                # The check reads the ranked chunk, not its window: it was calibrated on
                # chunks, and more context made it no better
                # (docs/decisions/010-check-reads-the-ranked-chunk.md).
                verdict = self.judge(question, checked.focus_text, evidence.confidence)
                refuse, notes = not verdict.answerable, (verdict.note,)
                if not refuse:
                    refuse, notes = self._check_quote(q, checked, evidence, notes)
            except LLMError as exc:
                notes = (f"answerability check failed, refusal threshold used: {exc}",)
        if refuse:
            return refused(
                question,
                passages,
                notes,
                language=q.language,
                retrieval_query=query,
                confidence=evidence.confidence,
            )
        chosen = self._choose(candidates, q)
        answer = self._compose(q, chosen, passages, evidence)
        return replace(answer, notes=answer.notes + notes) if notes else answer

    def computed(
        self,
        question: str | Query,
        asked: Computation,
        passages: Sequence[Passage],
        query: str | None = None,
        parts: tuple[str, str] | None = None,
    ) -> Answer | None:
        """The answer to a question that combines two stated facts (``compute``): both facts
        cited and the result marked as computed, a refusal naming the fact found and the one
        missing, or None when neither is found (the usual answer then decides).

        With ``parts`` (the two events a span of years runs between, ``asks.facets``) each
        fact is the sentence stating a year that reads most like its part; otherwise the two
        best-ranked sentences stating different numbers."""
        if not passages:
            return None
        q = self._read(question, query)
        question, query = q.text, q.retrieval
        candidates, evidence = self._score(q, passages)
        if parts is not None:
            if self.judge is None:
                return None  # similarity alone picks wrong years: no check, no computing
            language = q.language
            if language != "en":
                # A Korean part against English sentences: USE ranks them poorly and the check
                # confirmed a wrong year on the tune set (073). The usual answer decides.
                return None
            judge = self.judge
            sentences = self._sentences(passages)
            texts = [c.text for c in sentences]
            model = self.scorer.model_for(language)
            sims = [self.scorer.similarity(model, part, texts).tolist() for part in parts]
            asks = [_when(part) for part in parts]

            def confirms(part: int, sentence: int) -> bool:
                return judge(asks[part], texts[sentence], 0.0).p_yes >= FACT_YES

            try:
                found = facts_for_parts(asked, texts, sims, confirms)
            except LLMError as exc:
                log.warning("the check could not confirm a computed answer's facts: %s", exc)
                return None
            pool = sentences
        else:
            found = operands(question, asked, [(c.text, c.score) for c in candidates])
            pool = candidates
        facts = [pool[i] for i in found.facts]
        if not facts:
            return None
        if len(found.values) < 2:
            fact = facts[0].text
            clipped = fact if len(fact) <= 120 else fact[:119] + "…"
            missing = ""
            if parts is not None and found.missing:
                missing = f"; nothing says when {parts[found.missing[0]]}"
            note = (
                "the question combines two facts, and the documents state only one of them: "
                f"“{clipped}”{missing}"
            )
            return refused(
                question,
                passages,
                (note,),
                language=q.language,
                retrieval_query=query,
                confidence=evidence.confidence,
            )
        expression, result = worded(asked, found.values)
        cited = self._compose(q, facts, passages, evidence)
        marks = " and ".join(f"[{c.n}]" for c in cited.citations)
        return replace(
            cited,
            answer=f"{expression} = {result} (computed from {marks}). {cited.answer}",
            notes=(f"computed: {expression} = {result}, from numbers the cited sentences state",),
        )

    def _sentences(self, passages: Sequence[Passage]) -> list[_Candidate]:
        """Every sentence of ``passages`` once, in passage order (score: 0)."""
        seen: set[tuple[str, int]] = set()
        out = []
        for rank, p in enumerate(passages):
            c = p.chunk
            for s, e in split_sentences(c.text):
                key = (c.source, c.start + s)
                if key in seen:
                    continue
                seen.add(key)
                text = c.text[s:e]
                out.append(
                    _Candidate(
                        rank,
                        c.source,
                        c.start + s,
                        c.start + e,
                        text,
                        c.title,
                        c.section,
                        0.0,
                        frozenset(),
                    )
                )
        return out

    def evidence(
        self, question: str | Query, passages: Sequence[Passage], query: str | None = None
    ) -> Evidence:
        """How strongly ``passages`` support an answer to ``question`` (no check is asked);
        ``query``: the text retrieval searched, when ``question`` is a text and that differs."""
        if not passages:
            return Evidence(0.0, 0.0, 0.0)
        return self._score(self._read(question, query), passages)[1]

    def _check_quote(
        self,
        question: Query,
        passage: Passage,
        evidence: Evidence,
        notes: tuple[str, ...],
    ) -> tuple[bool, tuple[str, ...]]:
        """(refuse, notes) after a yes from the check, for a question with a precise ask or a
        kind ask.

        The check is credulous about near-misses: over "the zone had doubled its number of
        companies" it says yes to "How many companies were there in 2005?". For the questions
        ``quote_ask`` or ``kind_ask`` picks, the model is asked to quote its answer, and the yes
        stands only if ``quote_verdict`` finds nothing wrong with the quote. Measured on the dev
        sets (docs/decisions/018-quote-check-for-precise-asks.md,
        docs/decisions/019-kind-asks-and-where-the-quote-comes-from.md).
        """
        assert self.judge is not None
        if not self.wants_quote(question, evidence):
            return False, notes
        try:
            quote = self.judge.quote(question.text, passage.focus_text)
        except LLMError as exc:
            return False, (*notes, f"quote check failed, the check's yes kept: {exc}")
        flaw = self.quote_verdict(question, evidence, quote, passage)
        if flaw is None:
            return False, notes
        said = " ".join(quote.split())[:200]
        return True, (*notes, f"quote check: {flaw}, so it is refused: “{said}”")

    @staticmethod
    def wants_quote(question: str | Query, evidence: Evidence) -> bool:
        """Whether a yes to ``question`` must be backed by a quote (``_check_quote``)."""
        kind = question.kind_ask if isinstance(question, Query) else kind_ask(question)
        return quote_ask(question, evidence) is not None or kind is not None

    def quote_verdict(
        self,
        question: str | Query,
        evidence: Evidence,
        quote: str,
        passage: Passage,
        query: str | None = None,
    ) -> str | None:
        """What is wrong with ``quote``, the model's answer to ``question`` from ``passage``
        (its ranked chunk), worded for the refusal note, or None when nothing is. ``query`` is
        the question as retrieval read it: a follow-up ("Which industry was it for?") joined to
        the turn before, whose words say what "it" is."""
        q = self._read(question, query)
        ask = quote_ask(q, evidence)
        if ask is not None and not self._holds(ask, quote, q):
            return f"the words Qwen quotes as the answer hold no {PRECISE_ASKS[ask]}"
        kind = q.kind_ask
        if kind is not None and not self._anchored(q, kind, quote, passage):
            return (
                f"the sentence Qwen quotes the {kind} from says nothing else the question asks "
                "about"
            )
        return None

    def _anchored(self, query: Query, kind: str, quote: str, passage: Passage) -> bool:
        """Whether a sentence of ``passage`` that ``quote`` comes from, read under its headings,
        shares a word with ``query`` (the question as retrieval read it) other than ``kind``.

        The quote's sentences are those holding the largest share of its words, at least
        half; a quote that is not the passage's words (Qwen restates or paraphrases) gives
        nothing to test, and passes. The headings are the chunk's section title and any
        heading line in the text: "the park's oldest rocks" is about Joshua Tree under the
        heading "Joshua Tree National Park". The document's title is not one of them: an
        article's title names its whole subject ("… the National Innovation Cluster"), so it
        would vouch for every sentence.
        """
        words = set(self.lexical.tokens(quote))
        if not words:
            return True
        text = passage.focus_text
        sentences = [text[a:b] for a, b in split_sentences(text)]
        terms = [set(self.lexical.tokens(s)) for s in sentences]
        shares = [len(words & t) / len(words) for t in terms]
        best = max(shares, default=0.0)
        if best < 0.5:
            return True
        asked = set(query.terms) - set(self.lexical.tokens(kind))
        headings = [passage.chunk.section, *(s for s in sentences if _is_heading(s))]
        if any(asked & set(self.lexical.tokens(h)) for h in headings):
            return True
        return any(asked & t for t, share in zip(terms, shares, strict=True) if share == best)

    def _holds(self, ask: str, quote: str, question: Query) -> bool:
        """Whether ``quote`` offers the kind of answer ``precise_ask`` found in ``question``."""
        if ask == "percent":
            return bool(_PERCENT.search(quote))
        if ask == "who":
            return bool(quoted_names(quote, question.text))
        if _type_match(ask, quote, question) == 0:
            return False
        return ask != "number" or self._counts(question.count_focus, quote)

    # --- scoring --------------------------------------------------------------------------

    def _score(self, q: Query, passages: Sequence[Passage]) -> _Scored:
        """``_scored``, once per (query, passages) among the last few."""
        key = (q, tuple(passages))
        scored = self._scored.get(key)
        if scored is None:
            scored = self._scored[key] = self._scored_now(q, passages)
            while len(self._scored) > _SCORINGS_KEPT:
                del self._scored[next(iter(self._scored))]
        return scored

    def _scored_now(self, q: Query, passages: Sequence[Passage]) -> _Scored:
        """Every sentence of the top passages scored as an answer to ``q``, best first, and the
        evidence they give together."""
        question, query = q.text, q.retrieval
        language = q.language
        kind = q.answer_type
        raw: list[tuple[int, Passage, int, int, str, bool]] = []
        for rank, p in enumerate(passages[: self.passages_considered]):
            c = p.chunk
            focus = p.focus_span
            for s, e in split_sentences(c.text):
                text = c.text[s:e]
                if len(text) < 25 or _is_heading(text):
                    # Fragments and headings answer nothing on their own: a title that merely
                    # names the topic ("Helena (A Midsummer Night's Dream)") must not pass
                    # for evidence.
                    continue
                # A sentence the window added around the ranked chunk counts as one rank
                # lower: the ranker never saw it, and across languages (where the rank
                # weighs most) the next paragraph's date would otherwise beat the ranked one's.
                outside = c.start + e <= focus[0] or c.start + s >= focus[1]
                raw.append((rank, p, c.start + s, c.start + e, text, outside))
        if not raw:
            return [], Evidence(0.0, 0.0, 0.0)

        model = self.scorer.model_for(language)
        texts = [r[4] for r in raw]
        sims = self.scorer.similarity(model, q.retrieval_vector(self.scorer, model), texts)
        if query != question:
            # A follow-up: the current question still matters most for which sentence answers.
            text_sims = self.scorer.similarity(model, q.text_vector(self.scorer, model), texts)
            sims = 0.4 * sims + 0.6 * text_sims
        cross_lingual = language != "en" and all(
            detect_language(p.chunk.text) == "en" for p in passages[:3]
        )
        # Across languages words cannot match, except names (romanised anchors); the answer
        # type and the reranker's passage order carry more of the decision.
        anchors = list(q.anchors) if cross_lingual else []
        typed = kind != "other"
        sim_w, lex_w, type_w, rank_w = (
            (0.6, 0.15, 0.25 if typed else 0.0, 0.06)
            if cross_lingual
            else (0.6, 0.35, 0.15 if typed else 0.0, 0.02)
        )
        q_terms = frozenset(q.terms) | frozenset(anchors)

        # A sentence's terms meet only the question's (``_coverage``, ``q_terms``, anchors):
        # a question without Hangul reads them without Hangul runs, and so without Kiwi
        # (docs/decisions/109-english-questions-do-not-load-kiwi.md).
        hangul = q.hangul
        candidates = []
        for (rank, p, start, end, text, outside), sim in zip(raw, sims, strict=True):
            terms = frozenset(self.lexical.tokens(text, hangul=hangul))
            if cross_lingual:
                lex = len(terms & set(anchors)) / len(anchors) if anchors else 0.0
            else:
                lex = self._coverage(q, terms)
            score = (
                sim_w * float(sim)
                + lex_w * lex
                + type_w * _type_match(kind, text, q)
                - rank_w * (rank + outside)
            )
            c = p.chunk
            candidates.append(
                _Candidate(
                    rank, c.source, start, end, text, c.title, c.section, score, terms & q_terms
                )
            )
        candidates.sort(key=lambda c: -c.score)
        best = candidates[0]
        best_sim = float(np.max(sims))
        unknown = tuple(_unknown_names(question, self.lexical))

        if cross_lingual:
            cov = len(best.terms & set(anchors)) / len(anchors) if anchors else 0.0
            confidence = best_sim + CROSS_LINGUAL_OFFSET + 0.1 * cov
        else:
            # Coverage over the passages the best sentences come from: a question whose key
            # terms appear nowhere near the evidence asks what the documents do not say.
            # "Near" is the chunk that holds the sentence, not the whole window around it: a
            # window's extra paragraphs would cover more of any question, answerable or not,
            # and the threshold and the check were calibrated on chunks.
            near = sorted(
                {
                    (c.passage_rank, *_piece(passages[c.passage_rank], c.start))
                    for c in candidates[:2]
                }
            )
            context = " ".join(f"{passages[rank].chunk.section} {text}" for rank, _, text in near)
            cov = self._soft_coverage(q, context)
            confidence = SIMILARITY_WEIGHT * best_sim + (1 - SIMILARITY_WEIGHT) * cov
            if language == "ko":
                confidence += KOREAN_OFFSET
            if unknown:
                confidence *= UNKNOWN_NAME_PENALTY
        type_miss = typed and _type_match(kind, best.text, q) == 0
        counted = list(q.count_focus) if kind == "number" else []
        strict = kind in _STRICT_TYPES or bool(counted)
        if type_miss:
            # "When" needs a time, "how many" a number, "who" a name the question lacks: if the
            # best sentence has none, the passages are about the topic but not the answer.
            # "How many X" is as precise as money: no number at all weighs as much as a
            # number that counts something else (below).
            confidence *= STRICT_TYPE_PENALTY if strict else TYPE_MISMATCH_PENALTY
        elif counted and not self._counts(counted, best.text):
            # "How many companies ...?" is answered by a count of companies, not by "six years"
            # or "doubled its number of companies": a number that counts something else is
            # as good as none, and the question is as precise as one about money.
            type_miss = True
            confidence *= STRICT_TYPE_PENALTY
        features = (
            ("similarity", best_sim),
            ("coverage", cov),
            # The best sentence's terms are kept with it: its coverage is not worked out again.
            ("sentence_coverage", self._coverage(q, best.terms)),
            ("best_score", best.score),
            ("passage_score", float(passages[0].score)),
            ("type_miss", float(type_miss)),
            ("strict_miss", float(type_miss and strict)),
            ("typed", float(typed)),
            ("unknown_name", float(bool(unknown))),
            ("korean", float(language == "ko" and not cross_lingual)),
            ("cross_lingual", float(cross_lingual)),
            ("follow_up", float(query != question)),
        )
        # Across languages the passage order is the weak part (the right passage is in the top
        # 3 for every bundled Korean question, first for 7 of 12), while the answer type picks
        # the sentence well: the check reads the passage that sentence comes from. For English,
        # the top passage checks better
        # (docs/decisions/020-korean-questions-checked-on-their-answer-passage.md).
        checked = best.passage_rank if cross_lingual else 0
        return candidates, Evidence(confidence, best_sim, cov, features, unknown, checked)

    def _coverage(self, q: Query, terms: frozenset[str]) -> float:
        """``similarity.coverage`` of a sentence whose terms are ``terms`` (all of them, or at
        least all it shares with the question): the question's terms are read once, in ``q``."""
        return weighted_share(self.lexical, q.unique_terms, [t in terms for t in q.unique_terms])

    def _counts(self, focus: Sequence[str], sentence: str) -> bool:
        """Whether a number in ``sentence`` counts what ``focus`` names (True without a focus).

        The counted word may be a paraphrase ("20 experts" for "how many specialists"), so
        words that do not share a stem are compared by embedding, like ``_soft_coverage``.
        """
        if not focus:
            return True
        counted = _counted_words(sentence)
        if not counted:
            return False
        asked = " ".join(focus)
        stems = set(self.lexical.tokens(asked))
        # Only met with ``stems``: without Hangul in them, Hangul runs' terms cannot meet
        # (docs/decisions/109-english-questions-do-not-load-kiwi.md).
        hangul = bool(_HANGUL.search(asked))
        if stems & set(self.lexical.tokens(" ".join(counted), hangul=hangul)):
            return True
        model = self.scorer.model_for("en")
        sims = self.scorer.vectors(model, list(focus)) @ self.scorer.vectors(model, counted).T
        return bool(sims.max() >= COUNT_MATCH_FLOOR)

    def _soft_coverage(self, question: Query, context: str) -> float:
        """Like ``coverage``, but a word the context paraphrases earns partial credit.

        "founded" is not in a passage that says "established": exact matching alone would call
        that evidence missing. Each missing question word is compared with the context's words
        by embedding similarity; only a close neighbour earns credit, so "budget" does not find
        itself in "revenue". The question's words are those retrieval searched
        (``Query.words``): after a follow-up's earlier question, the words that say what "it" is.
        """
        tokenizer = self.lexical.tokenizer
        # Only the question's words' terms are looked up in it: a question without Hangul
        # reads the context without Hangul runs (docs/decisions/109).
        present = set(tokenizer(context, hangul=question.hangul))
        weights: list[float] = []
        credit: list[float] = []
        missing: dict[str, int] = {}  # question word -> its slot in ``credit``
        for word, terms in question.words:
            hit = sum(t in present for t in terms) / len(terms)
            if hit < 1.0 and not _HANGUL.search(word):
                missing[word] = len(credit)
            weights.append(max(self.lexical.idf(t) for t in terms))
            credit.append(hit)
        if not weights:
            return 0.0
        context_words = (
            list(dict.fromkeys(w for w in _LATIN_WORD.findall(context) if tokenizer(w)))
            if missing
            else []
        )
        if context_words:
            model = self.scorer.model_for("en")
            # One call for both lists: MiniLM reads its weights once a call
            # (docs/decisions/105-warm-questions.md).
            vectors = self.scorer.vectors(model, [*missing, *context_words])
            sims = vectors[: len(missing)] @ vectors[len(missing) :].T
            for slot, best in zip(missing.values(), sims.max(axis=1), strict=True):
                soft = (float(best) - SOFT_MATCH_FLOOR) / (1.0 - SOFT_MATCH_FLOOR)
                credit[slot] = max(credit[slot], min(max(soft, 0.0), 1.0))
        w = np.asarray(weights)
        return float((w * np.asarray(credit)).sum() / max(w.sum(), 1e-9))

    def _choose(self, candidates: list[_Candidate], question: Query) -> list[_Candidate]:
        """The best sentence, plus any close runner-up that adds what the question asks.

        A runner-up joins when it brings question terms the answer lacks, or, for a question in
        two parts ("in which years were X and Y established?"), a new answer of the asked
        kind (another year, number or name).
        """
        best = candidates[0]
        chosen = [best]
        covered = set(best.terms)
        kind = question.answer_type
        two_part = bool(_TWO_PART.search(question.text))
        items = _answer_items(kind, best.text, question)
        for c in candidates[1:]:
            if len(chosen) >= self.max_sentences or c.score < 0.7 * best.score:
                break
            if any(c.source == x.source and c.start < x.end and x.start < c.end for x in chosen):
                continue
            new_items = _answer_items(kind, c.text, question) - items
            gain = sum(self.lexical.idf(t) for t in c.terms - covered)
            wanted = (two_part and new_items) or (gain >= 1.0 and c.score >= 0.75 * best.score)
            if not wanted:
                continue  # it would only repeat what the answer already says
            chosen.append(c)
            covered |= c.terms
            items |= new_items
        return chosen

    def _compose(
        self,
        question: Query,
        chosen: list[_Candidate],
        passages: Sequence[Passage],
        evidence: Evidence,
    ) -> Answer:
        ordered = sorted(chosen, key=lambda c: (c.source, c.start))
        citations = tuple(
            Citation.quoting(i + 1, passages[c.passage_rank].chunk, c.start, c.end, c.text)
            for i, c in enumerate(ordered)
        )
        text = " ".join(f"{c.text} [{i + 1}]" for i, c in enumerate(ordered))
        return Answer(
            question=question.text,
            answer=text,
            abstained=False,
            citations=citations,
            passages=tuple(passages),
            retrieval_query=question.retrieval,
            confidence=evidence.confidence,
        )
