"""The refusal sentences: what every answer path says when the documents do not answer.

It owns the fixed sentences and how to recognise a refusal in a model's reply, so that the
extractive answerer, the LLM answerer and its verifier refuse in the same words. It does not
decide *whether* to refuse (``answer`` and ``verify`` do).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from .ingest.sentences import detect_language
from .types import Answer, Passage

__all__ = ["REFUSAL", "REFUSAL_KO", "is_refusal", "refusal_for", "refused"]

REFUSAL = "The indexed documents do not answer this."
REFUSAL_KO = "색인된 문서로는 이 질문에 답할 수 없습니다."

_REFUSAL_PATTERNS = re.compile(
    r"(do(?:es)? not answer|don't answer|cannot be answered|can ?not answer|"
    r"no (?:relevant )?information|not (?:mentioned|stated|provided) in the (?:passages|documents)|"
    r"답할 수 없|답이 없|답하지 않|정보가 없|언급되(?:어 있)?지 않)",
    re.IGNORECASE,
)


def refusal_for(question: str, language: str | None = None) -> str:
    """The refusal sentence for ``question``: English, then Korean for a Korean question (the
    English sentence stays first, so callers and tests can look for it whatever the language).
    ``language``: the question's, when the caller has read it already (``Query``).

    >>> refusal_for("Who chairs it?")
    'The indexed documents do not answer this.'
    """
    korean = (language or detect_language(question)) == "ko"
    return f"{REFUSAL} {REFUSAL_KO}" if korean else REFUSAL


def refused(
    question: str,
    passages: Sequence[Passage],
    notes: tuple[str, ...],
    *,
    language: str | None = None,
    **fields: Any,
) -> Answer:
    """The refusal ``Answer`` for ``question``: its sentence, the closest passages still shown,
    and why (``notes``); ``fields`` are the rest of the answer (confidence, backend, ...).
    ``language``: the question's, when the caller has read it already."""
    return Answer(
        question=question,
        answer=refusal_for(question, language),
        abstained=True,
        passages=tuple(passages),
        notes=notes,
        **fields,
    )


def is_refusal(sentence: str) -> bool:
    """Whether a sentence says the passages do not answer (English or Korean).

    >>> is_refusal("The indexed documents do not answer this.")
    True
    >>> is_refusal("Daejeon hosted the summit in 2015 [1].")
    False
    """
    return bool(_REFUSAL_PATTERNS.search(sentence))
