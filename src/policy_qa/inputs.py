"""What ``Assistant.ask`` accepts: the question, the history and the options, checked once.

Every surface (the CLI, the Python API, the web chat and its ``/ask`` endpoint) hands its
input to the library as it came; these checks turn anything unusable into one
``QuestionError`` that says what was wrong and what to send instead, before any model or index
is touched. Before them, a lone surrogate reached the tokenizer (``TypeError:
TextEncodeInput``) and ``history=[(None, None)]`` an ``AttributeError``
(docs/decisions/083-one-line-for-every-bad-input.md).

Standard library only. It must not answer, retrieve or clean text for indexing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from .errors import DocumentNotFoundError, QuestionError

__all__ = [
    "History",
    "Messages",
    "check_history",
    "check_k",
    "check_question",
    "check_source",
    "check_within",
    "message_pairs",
]

History = Sequence[tuple[str, str]]  # earlier turns, oldest first: (question, answer)
# The same turns as chat messages {"role": "user" | "assistant", "content": ...} (message_pairs).
Messages = Sequence[Mapping[str, object]]

_SURROGATE = re.compile("[\ud800-\udfff]")
_SHOWN = 60  # characters of a bad value quoted back in a message


def _invalid(text: str) -> str | None:
    """Why ``text`` is not valid Unicode text (None when it is).

    A lone surrogate cannot be encoded at all; Python makes one of each byte that is not UTF-8
    (0x80-0xFF become U+DC80-U+DCFF) when a terminal or a file name sends such bytes.
    """
    found = _SURROGATE.search(text)
    if found is None:
        return None
    code, at = ord(found.group()), found.start() + 1
    if 0xDC80 <= code <= 0xDCFF:
        return f"byte 0x{code - 0xDC00:02X} at character {at} is not UTF-8"
    return f"character {at} is a lone surrogate (U+{code:04X}), which is not a character"


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def _kind(value: object) -> str:
    return "bytes (decode them to text first)" if isinstance(value, bytes) else type(value).__name__


def check_question(question: object, limit: int) -> str:
    """``question`` with its whitespace runs made single spaces, or a ``QuestionError``."""
    if question is None:
        raise QuestionError("Please type a question.")
    if not isinstance(question, str):
        raise QuestionError(f"The question must be text, got {_kind(question)}.")
    why = _invalid(question)
    if why:
        raise QuestionError(
            f"The question is not valid text: {why}. Retype it, or send it as UTF-8."
        )
    if not question.strip():
        raise QuestionError("Please type a question.")
    if len(question) > limit:
        raise QuestionError(
            f"The question is {len(question):,} characters long; the limit is {limit:,}. "
            "Ask the question itself and leave out pasted text."
        )
    return " ".join(question.split())


def check_history(history: object) -> list[tuple[str, str]]:
    """``history`` as a list of (question, answer) pairs of text, or a ``QuestionError``.

    None is no history. Each turn is a pair (a tuple or a two-item list, as JSON gives it) of
    a question and the answer given to it; an answer may be empty, never missing. Chat messages
    (``{"role": "user" | "assistant", "content": ...}``, as OpenAI-style and Gradio clients
    keep a conversation) are read as pairs too (``message_pairs``), so the Python API and the
    web API take the same shapes.
    """
    if history is None:
        return []
    if isinstance(history, str | bytes) or not isinstance(history, Sequence):
        raise QuestionError(
            f"history must be a list of [question, answer] pairs, got {_kind(history)}."
        )
    if any(isinstance(turn, Mapping) for turn in history):
        history = message_pairs(history)
    turns = []
    for n, turn in enumerate(history, 1):
        pair = tuple(turn) if isinstance(turn, list | tuple) else None
        if pair is None or len(pair) != 2 or not all(isinstance(t, str) for t in pair):
            raise QuestionError(
                f"history turn {n} must be a [question, answer] pair of text, got {_shown(turn)}."
            )
        for part, text in zip(("question", "answer"), pair, strict=True):
            why = _invalid(text)
            if why:
                raise QuestionError(
                    f"history turn {n}'s {part} is not valid text: {why}. Send it as UTF-8."
                )
        turns.append((pair[0], pair[1]))
    return turns


def message_pairs(history: Sequence[object]) -> list[object]:
    """Chat messages (and any pairs among them) as [question, answer] turns.

    Each user message pairs with the assistant messages after it (joined; "" when none came),
    an assistant message before any user one (a greeting) is dropped, and "system" and "tool"
    messages are ignored. A ``content`` may be a list of parts (``{"type": "text", "text":
    ...}``); only text parts count. The turns are checked as pairs by ``check_history``.
    """
    turns: list[object] = []
    asked: list[str] | None = None  # the last user turn, while assistant messages may follow
    for n, item in enumerate(history, 1):
        if not isinstance(item, Mapping):
            turns.append(item)
            asked = None
            continue
        role = item.get("role")
        text = _message_text(item.get("content"), n)
        if role == "user":
            asked = [text, ""]
            turns.append(asked)
        elif role == "assistant":
            if asked is not None:
                asked[1] = f"{asked[1]}\n\n{text}" if asked[1] else text
        elif role not in ("system", "tool"):
            raise QuestionError(
                f"history message {n} has role {_shown(role)}; use 'user' or 'assistant'."
            )
    return turns


def _message_text(content: object, n: int) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: keep the text ones
        return "\n".join(
            str(part.get("text", "")) if isinstance(part, dict) else str(part)
            for part in content
            if isinstance(part, str) or (isinstance(part, dict) and "text" in part)
        )
    raise QuestionError(
        f"history message {n}'s content must be text or a list of text parts, got {_kind(content)}."
    )


def check_within(within: object) -> str | None:
    """A source prefix to search under (None: everything), or a ``QuestionError``."""
    if within is None:
        return None
    if not isinstance(within, str):
        raise QuestionError(f"within must be a source prefix (text), got {_kind(within)}.")
    why = _invalid(within)
    if why:
        raise QuestionError(f"within is not valid text: {why}.")
    return within


def check_k(k: object) -> int | None:
    """How many passages to return (None: the setting), or a ``QuestionError``."""
    if k is None:
        return None
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise QuestionError(f"k must be a whole number of passages, 1 or more, got {_shown(k)}.")
    return k


def check_source(source: object) -> str:
    """A document's source as given to ``remove`` or ``document_text``, or a
    ``DocumentNotFoundError`` (what is not text, or not valid text, was never indexed)."""
    if isinstance(source, str) and _invalid(source) is None:
        return source
    raise DocumentNotFoundError(
        f"{_shown(source)} is not the source of an indexed document: a source is text, as "
        "`policy-qa documents` lists it."
    )
