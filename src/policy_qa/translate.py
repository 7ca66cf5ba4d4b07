"""Korean questions about English documents, read in English.

Across languages words cannot match, and the English sentence scorer cannot read Hangul
(MiniLM's tokenizer splits it into jamo), so a Korean question about an English article was
answered from passage order and answer type alone. The packaged Qwen, asked through the check's
worker, translates the question first. It is given the English names that the question's
passages contain, so "대덕연구단지" becomes "Daedeok Research Complex" as the documents write it,
not "Daejeon" or "Daegu" (docs/decisions/075-korean-questions-translated.md).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence

from .text import HANGUL_SYLLABLE

__all__ = ["GLOSSARY_SIZE", "glossary", "to_english"]

GLOSSARY_SIZE = 40  # names offered to the model, most frequent first (075)

# A name as documents write it: capitalised words in a row ("Daedeok Special Zone for Research
# and Development" keeps its "for" and "and"), or an acronym.
_NAME = re.compile(
    r"\b[A-Z][\w’'-]*(?:[ \t]+(?:(?:of|for|and|the|on|in|de)[ \t]+)?[A-Z][\w’'-]*)*"
    r"|\b[A-Z]{2,}\b"
)
_LEADING = re.compile(
    r"^(?:The|A|An|On|In|At|For|To|By|As|This|That|These|Its|Their|Although|While|Though|"
    r"However|Against|After|Before|With|From)[ \t]+"
)
_POSSESSIVE = re.compile(r"[’']s$")
# A name used inside a sentence (after a lower-case word or a comma): "Daejeon", "Seoul".
_INNER = re.compile(r"(?:\b[a-z]+|[,;:]) ([A-Z][a-z][\w-]+)\b(?![’'-]?\w*[ \t]+[A-Z])")
_SYSTEM = (
    "You translate Korean questions about English documents into English questions. Do not "
    "answer them. Where the question names something in the list of names, write that name "
    "exactly as the list does. Reply with one English question only."
)
# One worked example, about nothing in any corpus: it shows the form of the reply.
_EXAMPLE = (
    "Names:\n- Seoul\n- Han River Park\n\nKorean question: 한강공원에는 몇 개의 다리가 있나요?",
    "How many bridges are there in Han River Park?",
)


def glossary(texts: Sequence[str], size: int = GLOSSARY_SIZE) -> list[str]:
    """The names in ``texts`` (multi-word names and acronyms), most frequent first."""
    counts: Counter[str] = Counter()
    for text in texts:
        for m in _NAME.finditer(text):
            name = _POSSESSIVE.sub("", _LEADING.sub("", m.group(0).strip(" .’'-")))
            if " " in name or (name.isupper() and len(name) > 1):
                counts[name] += 1
        counts.update(m.group(1) for m in _INNER.finditer(text))
    return [name for name, _ in counts.most_common(size)]


def to_english(
    question: str,
    names: Sequence[str],
    reply: Callable[[list[dict[str, str]], int], str],
) -> str | None:
    """``question`` in English by the model's ``reply``, or None when it gives no usable
    question (empty, still Korean, or runaway)."""
    listed = "\n".join(f"- {n}" for n in names)
    messages = [
        {"role": "system", "content": _SYSTEM},
        {"role": "user", "content": _EXAMPLE[0]},
        {"role": "assistant", "content": _EXAMPLE[1]},
        {"role": "user", "content": f"Names:\n{listed}\n\nKorean question: {question}"},
    ]
    text = " ".join(reply(messages, 60).split()).strip().strip('"“”')
    # A reply that is no question (the model answered instead) or kept Korean is no use.
    if not text.endswith("?") or HANGUL_SYLLABLE.search(text) or len(text) > 4 * len(question) + 80:
        return None
    return text
