"""Whether a question leans on the conversation, decided by what the evidence says.

In a conversation a question is read twice: alone, and joined after the question before it.
It leans on that question only when the joined reading finds clearly stronger evidence (the
answerer's confidence, before any check). "How many members will it have?" alone finds nothing
that says what "it" is; after "Which council will be created ...?" it finds "comprised of 20
specialists". A question that stands on its own ("대덕연구단지는 언제 설립되었나요?" after a
question about businesses) finds its answer alone at least as surely, and is answered as if it
were asked alone. No word list or word count decides; the margin was chosen on the tune
dialogues (docs/decisions/074-follow-ups-by-evidence.md).
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["FOLLOW_UP_MARGIN", "joined", "leans_on_previous", "previous_question"]

# How much stronger the evidence must be with the earlier question joined (074).
FOLLOW_UP_MARGIN = 0.05


def previous_question(history: Sequence[tuple[str, str]] | None) -> str:
    """The last question the user asked, or "" (no history, or an empty turn)."""
    for asked, _ in reversed(history or ()):
        if asked and asked.strip():
            return asked.strip()
    return ""


def joined(previous: str, question: str) -> str:
    """The retrieval query for ``question`` read after ``previous``."""
    return f"{previous} {question}" if previous else question


def leans_on_previous(alone: float, with_previous: float, margin: float = FOLLOW_UP_MARGIN) -> bool:
    """Whether to answer from the joined reading, given the evidence confidence each way.

    >>> leans_on_previous(alone=0.2, with_previous=0.7)
    True
    >>> leans_on_previous(alone=0.8, with_previous=0.82)
    False
    """
    return with_previous >= alone + margin
