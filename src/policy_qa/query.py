"""``Query``: a question read once, at the top of ``Assistant.ask``, and passed down.

Every stage reads what it needs from one frozen value instead of working it out again: the text
the answerer reads, the text retrieval searches (after the follow-up step), the language of
each, the retrieval text's BM25 terms and romanised anchors, the question's own words, and what
it asks for (``asks``). The vectors of each dense model are embedded the first time a stage
asks for them and then kept with the query, so no stage embeds or looks them up again.

It owns no model and no decision: ``asks`` says what a question asks for, the lexical index
tokenises, ``SentenceScorer`` embeds, ``conversation`` decides which reading is searched. Why
one value rather than each stage reading the text itself: docs/decisions/030-query-read-once.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import TypedDict

import numpy as np

from .asks import Computation, answer_type, computation, count_focus, facets, kind_ask, precise_ask
from .ingest.sentences import detect_language
from .lexical import LexicalIndex, Tokenizer, latin_anchors
from .similarity import SentenceScorer
from .text import HANGUL_SYLLABLE, WORD

__all__ = ["Query"]

_ASKED_WORD = re.compile(r"\w+")  # what a question "already gives" (``asked``)


@dataclass(frozen=True)
class Query:
    """One question as every stage sees it, read against one lexical index.

    ``text`` is what the answerer reads (the question, in English when it was translated);
    ``retrieval`` what retrieval searches: the text, or the text joined after the question it
    leans on (``conversation``), or the LLM's condensed question. Fields named for the
    retrieval text (``retrieval_language``, ``terms``, ``anchors``, ``words``) describe it;
    the rest describe ``text``. ``words`` and the vectors are worked out on first use, once:
    not every question needs them.

    >>> q = Query.read("How many years after 1973 was it re-established?", lexical)
    >>> q.answer_type, q.computation
    ('number', Computation(kind='difference', unit='years'))
    >>> q.searching("Which zone? How many years after 1973 was it re-established?", lexical)
    """

    text: str
    retrieval: str
    language: str
    retrieval_language: str
    # The retrieval text's BM25 terms in order, repeats kept (a repeated term weighs twice in
    # BM25), and each once, in order (what coverage weighs).
    terms: tuple[str, ...]
    unique_terms: tuple[str, ...]
    # Index terms its Hangul words spell when romanised (``latin_anchors``): how a Korean
    # question matches an English document's names.
    anchors: tuple[str, ...]
    # The question's own words, lower-cased: a year, number or name it already gives is not
    # an answer to it.
    asked: frozenset[str]
    answer_type: str
    precise_ask: str | None
    kind_ask: str | None
    count_focus: tuple[str, ...]
    computation: Computation | None
    facets: tuple[str, str] | None
    # The index's tokenizer, for ``words``.
    tokenizer: Tokenizer = field(repr=False, compare=False)
    # (model, text) -> unit vector; filled on first use, so each is embedded or looked up once.
    _vectors: dict[tuple[str, str], np.ndarray] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    # ``words`` once worked out (a list, so the frozen value can hold it once filled).
    _words: list[tuple[tuple[str, tuple[str, ...]], ...]] = field(
        default_factory=list, init=False, repr=False, compare=False
    )

    @classmethod
    def read(cls, text: str, lexical: LexicalIndex, retrieval: str | None = None) -> Query:
        """``text`` read once: its language, what it asks for, and (for ``retrieval``, the
        text itself by default) what retrieval needs. ``text`` is already checked
        (``inputs.check_question``)."""
        language = detect_language(text)
        kind = answer_type(text)
        return cls(
            text=text,
            language=language,
            asked=frozenset(w.lower() for w in _ASKED_WORD.findall(text)),
            answer_type=kind,
            precise_ask=precise_ask(text, language=language, kind=kind),
            kind_ask=kind_ask(text, language=language),
            count_focus=tuple(count_focus(text)),
            computation=computation(text),
            facets=facets(text),
            tokenizer=lexical.tokenizer,
            **_for_retrieval(retrieval or text, lexical, text, language),
        )

    def searching(self, retrieval: str, lexical: LexicalIndex) -> Query:
        """The same question, searched as ``retrieval`` (a follow-up joined to the question
        before it, or a condensed question): only what describes the retrieval text is read."""
        if retrieval == self.retrieval:
            return self
        other = replace(self, **_for_retrieval(retrieval, lexical, self.text, self.language))
        # The text's own vectors stay good: a follow-up scores sentences against both.
        other._vectors.update({k: v for k, v in self._vectors.items() if k[1] == self.text})
        return other

    @property
    def words(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """The retrieval text's words (``text.WORD``), each once with its terms, the words that
        yield none left out: what the answerer's soft coverage compares. Worked out on first
        use: a Korean question over English text never needs them, and Kiwi reads each word
        on its own (about 3 ms for a Korean question). Not a ``cached_property``: on Python
        3.11 that holds one lock for every instance, so concurrent questions would wait on
        each other; two threads reading one query's words at once both work them out."""
        if not self._words:
            words = []
            for word in dict.fromkeys(WORD.findall(self.retrieval)):
                terms = tuple(self.tokenizer(word))
                if terms:
                    words.append((word, terms))
            self._words.append(tuple(words))
        return self._words[0]

    @property
    def hangul(self) -> bool:
        """Whether the text or the retrieval text holds Hangul: without it, no term of this
        query (terms, words, anchors, what it counts) comes from a Hangul run, so the answerer
        and the reranker can read passages without their Hangul runs' terms, and without Kiwi
        (docs/decisions/109-english-questions-do-not-load-kiwi.md)."""
        return bool(HANGUL_SYLLABLE.search(self.text) or HANGUL_SYLLABLE.search(self.retrieval))

    def retrieval_vector(self, scorer: SentenceScorer, model: str) -> np.ndarray:
        """The retrieval text's unit vector under ``model``."""
        return self._vector(scorer, model, self.retrieval)

    def text_vector(self, scorer: SentenceScorer, model: str) -> np.ndarray:
        """The text's unit vector under ``model`` (the retrieval vector when they are one)."""
        return self._vector(scorer, model, self.text)

    def _vector(self, scorer: SentenceScorer, model: str, text: str) -> np.ndarray:
        # Through the scorer: it embeds a text it lacks and shares the vector with every other
        # question that searches the same words (docs/decisions/106-many-users-at-once.md).
        key = (model, text)
        vector = self._vectors.get(key)
        if vector is None:
            vector = self._vectors[key] = scorer.vectors(model, [text])[0]
        return vector


class _RetrievalFields(TypedDict):
    retrieval: str
    retrieval_language: str
    terms: tuple[str, ...]
    unique_terms: tuple[str, ...]
    anchors: tuple[str, ...]


def _for_retrieval(
    retrieval: str, lexical: LexicalIndex, text: str, language: str
) -> _RetrievalFields:
    """The fields of a ``Query`` that describe its retrieval text."""
    terms = tuple(lexical.tokens(retrieval))
    return _RetrievalFields(
        retrieval=retrieval,
        retrieval_language=language if retrieval == text else detect_language(retrieval),
        terms=terms,
        unique_terms=tuple(dict.fromkeys(terms)),
        anchors=tuple(latin_anchors(retrieval, lexical.doc_freq)),
    )
