# Over 500 lines: one algorithm, checking a reply, whose steps share its claims and windows.
"""Checking an LLM-written answer, sentence by sentence, against the passages it cites.

This module owns the guarantee that survives an LLM: every sentence we show is backed by the
passage it cites, quoted verbatim with offsets. It parses the ``[n]`` markers of a reply, scores
each sentence against passages (lexical coverage + embedding similarity + a hard rule on
numbers), keeps, re-cites or removes it, and picks the sentence(s) of each cited passage to
quote. It does not call a language model and does not know where passages come from.

Support of a sentence ``s`` by a set of passages ``P``::

    lex(s, P)  = weighted share of s's content terms found in P (numbers weigh 2, stems via
                 ``lexical.Tokenizer``); for Korean sentences only their Latin words and numbers
                 count, since Korean answers cite English passages.
    emb(s, P)  = max cosine between s and any sentence (or adjacent pair) of P, multilingual.
    support    = W_LEX * lex + (1 - W_LEX) * emb      (emb alone when s has no countable term)

A sentence is kept when ``support >= KEEP_EN`` (``KEEP_KO`` for Korean) and every number in it
occurs in its cited passages or is the sum, difference or product of two that do (a derived
number is kept but flagged). Lexical coverage is measured on the one sentence (or adjacent pair)
per cited passage that we quote, so a claim stitched from words scattered over a passage fails.

How the thresholds were set (USE embeddings, paragraphs of the bundled corpus as passages,
22 sentences written from eval/daedeok.jsonl questions, each cited to one passage):

    English, supported (8)      0.667 - 0.916     English, unsupported (6)   0.196 - 0.724
    Korean, supported (4)       0.581 - 0.904     Korean, unsupported (3)    0.159 - 0.419

KEEP_EN = 0.62 sits below every supported English sentence and removes 5 of 6 unsupported
ones (the one above it, "Daejeon is the capital of South Korea" at 0.724, reuses passage words
in a false relation: lexical and embedding checks cannot see that, an NLI model could). KEEP_KO
= 0.50 separates the Korean groups; a Korean sentence with a wrong number fails the number rule
whatever its score. One more sentence with a number absent from its passage was removed by the
number rule alone.
``benchmarks/bench_llm.py`` re-measures citation precision/recall on eval/daedeok.jsonl.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .ingest.sentences import detect_language, split_sentences
from .lexical import Tokenizer
from .refusals import is_refusal
from .text import HANGUL_SYLLABLE as _HANGUL
from .types import Citation, Passage

__all__ = [
    "KEEP_EN",
    "KEEP_KO",
    "W_LEX",
    "Verification",
    "Verifier",
    "parse_reply",
]

log = logging.getLogger(__name__)

# Calibration (benchmarks/bench_llm.py --calibrate, Qwen replies to eval/daedeok.jsonl, USE
# embeddings): docs/decisions/025-llm-answer-verification.md has the distributions these cut.
W_LEX = 0.6
KEEP_EN = 0.62
KEEP_KO = 0.50
# A passage cited next to others stays cited only if it adds a term no other cited passage has
# or supports the sentence on its own at this level.
KEEP_PART = 0.45
# Windows that span two sentences must beat the best single sentence by this much to be quoted.
PAIR_MARGIN = 0.08

_MARKER = re.compile(
    r"\s*[\[【]\s*(?:(?:passage|source|doc(?:ument)?)\s*)?"
    r"(\d{1,2}(?:\s*(?:[,;]|and|&|-|–)\s*\d{1,2})*)\s*[\]】]",
    re.IGNORECASE,
)
_ENUMERATOR = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)])\s+")
# Stems that only say "this was computed" ("in total", "together", "times"): no passage states
# them, so next to a derived number they must not count as unsupported.
_ARITHMETIC = frozenset(
    {"togeth", "total", "altogeth", "combin", "overal", "sum", "multipli", "time", "product"}
)
# What is left of "…, as stated in [1]." once the marker is gone.
_DANGLING_REF = re.compile(
    r",?\s*(?:as (?:stated|mentioned|shown|seen|described|noted) in|according to|see)"
    r"(?:\s+(?:the\s+)?(?:passages?|sources?|documents?))?\s*(?=[.!?]?\s*$)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Claim:
    """One sentence of a reply: its text without markers and the passage numbers it cites."""

    index: int  # 1-based position in the reply
    text: str
    cited: tuple[int, ...]  # as written (1-based, may point nowhere)


@dataclass
class Verification:
    """What verifying one reply produced; ``answer`` is empty when nothing survived."""

    answer: str
    citations: tuple[Citation, ...]
    notes: list[str] = field(default_factory=list)
    supports: list[float] = field(default_factory=list)
    refused: bool = False

    @property
    def confidence(self) -> float:
        return float(np.mean(self.supports)) if self.supports else 0.0


def parse_reply(reply: str) -> list[Claim]:
    """Split a reply into sentences and pull out their ``[n]`` markers.

    A marker standing alone after a sentence end ("… 1973. [1]") belongs to that sentence.

    >>> [(c.text, c.cited) for c in parse_reply("It opened in 1973 [1]. It grew. [2][3]")]
    [('It opened in 1973.', (1,)), ('It grew.', (2, 3))]
    """
    claims: list[tuple[str, list[int]]] = []
    for raw_line in reply.splitlines():
        line = _ENUMERATOR.sub("", raw_line)  # "1. …" list items: the number is not a sentence
        for start, end in split_sentences(line):
            piece = line[start:end]
            numbers = _marker_numbers(piece)
            text = _MARKER.sub("", piece).strip()
            text = _ENUMERATOR.sub("", text).strip()
            if not re.search(r"[^\W\d_]", text):  # no letters: a stray marker or number
                if claims and numbers:  # a stray "[2]" after the full stop
                    claims[-1][1].extend(n for n in numbers if n not in claims[-1][1])
                continue
            text = _DANGLING_REF.sub("", text)
            text = re.sub(r"\s+([.,;:!?。])", r"\1", text)
            claims.append((text, numbers))
    return [Claim(i, text, tuple(nums)) for i, (text, nums) in enumerate(claims, 1)]


def _marker_numbers(text: str) -> list[int]:
    found: list[int] = []
    for match in _MARKER.finditer(text):
        body = match.group(1)
        for a, b in re.findall(r"(\d+)\s*(?:(?:-|–)\s*(\d+))?", body):
            lo = int(a)
            hi = int(b) if b else lo
            for n in range(lo, min(hi, lo + 9) + 1):
                if n not in found:
                    found.append(n)
    return found


@dataclass
class _Window:
    passage: int  # 0-based
    start: int
    end: int
    text: str
    terms: frozenset[str]
    pair: bool = False


class Verifier:
    """Scores reply sentences against passages and builds verified citations.

    ``embed`` maps texts to L2-normalised rows (a multilingual model, so that Korean sentences
    can be checked against English passages). It keeps no cache of its own: the same passages
    come back question after question and encoding them would dominate verification time, so
    the Assistant passes ``similarity.SentenceScorer.embedder``, the cache retrieval and the
    extractive answerer already fill.
    """

    def __init__(
        self,
        embed: Callable[[list[str]], np.ndarray],
        *,
        keep_en: float = KEEP_EN,
        keep_ko: float = KEEP_KO,
        w_lex: float = W_LEX,
    ) -> None:
        if not 0.0 <= w_lex <= 1.0:
            raise ValueError(f"w_lex must be in [0, 1], got {w_lex}")
        self._embed = embed
        self.keep_en = keep_en
        self.keep_ko = keep_ko
        self.w_lex = w_lex
        self._tok = Tokenizer()

    # ------------------------------------------------------------------ scoring primitives

    def _claim_terms(self, text: str) -> tuple[dict[str, float], list[str]]:
        """Weighted countable terms of a sentence, and its numbers."""
        korean = detect_language(text) == "ko"
        weights: dict[str, float] = {}
        numbers: list[str] = []
        for term in self._tok(text):
            if korean and _HANGUL.search(term):
                continue  # Korean bigrams cannot match English passages
            if term[0].isdigit():
                numbers.append(term)
                weights[term] = 2.0
            else:
                weights.setdefault(term, 1.0)
        return weights, numbers

    def _vectors(self, texts: list[str]) -> np.ndarray:
        """Embeddings of ``texts``, one row each."""
        return np.asarray(self._embed(texts), dtype=np.float32).reshape(len(texts), -1)

    def _lex(self, weights: dict[str, float], terms: set[str] | frozenset[str]) -> float:
        total = sum(weights.values())
        return sum(v for t, v in weights.items() if t in terms) / total if total else 0.0

    def keep_threshold(self, claim: str) -> float:
        return self.keep_ko if detect_language(claim) == "ko" else self.keep_en

    # ------------------------------------------------------------------ verification

    def verify(
        self,
        reply: str,
        passages: Sequence[Passage],
        doc_text: Callable[[str], str],
    ) -> Verification:
        """Keep, re-cite or remove each sentence of ``reply``; quote what supports the rest."""
        claims = parse_reply(reply)
        notes: list[str] = []
        answer_claims: list[Claim] = []
        refusals = 0
        seen: set[str] = set()
        repeats = 0
        for claim in claims:
            if is_refusal(claim.text) and not any(1 <= n <= len(passages) for n in claim.cited):
                refusals += 1
                continue
            key = " ".join(claim.text.lower().split())
            if key in seen:  # small models loop; a repeated sentence adds nothing
                repeats += 1
                continue
            seen.add(key)
            answer_claims.append(claim)
        if repeats:
            notes.append(f"removed {repeats} repeated sentence{'s' if repeats > 1 else ''}")
        if refusals and not answer_claims:
            return Verification(answer="", citations=(), notes=notes, refused=True)
        if refusals:
            notes.append("the model said part of the question is not answered by the passages")
        if not answer_claims:
            return Verification(answer="", citations=(), notes=notes)

        windows = self._windows(passages, doc_text)
        claim_vecs = self._vectors([c.text for c in answer_claims])
        win_vecs = self._vectors([w.text for w in windows])
        by_passage: dict[int, list[int]] = {}
        for i, w in enumerate(windows):
            by_passage.setdefault(w.passage, []).append(i)

        claim_weights = [self._claim_terms(c.text)[0] for c in answer_claims]
        passage_numbers = [{t for t in self._tok(p.chunk.text) if t[0].isdigit()} for p in passages]

        def best_window(claim_i: int, p: int) -> int | None:
            """The window of passage ``p`` that best supports the claim: what we would quote."""
            weights = claim_weights[claim_i]
            best: tuple[float, int] | None = None
            for i in by_passage.get(p, []):
                w = windows[i]
                value = float(win_vecs[i] @ claim_vecs[claim_i])
                if weights:
                    value += self._lex(weights, w.terms)
                if w.pair:
                    value -= PAIR_MARGIN
                if best is None or value > best[0]:
                    best = (value, i)
            return None if best is None else best[1]

        def support(claim_i: int, cited: Sequence[int]) -> float:
            """Support by the quoted windows of ``cited``: one sentence (or pair) per passage,
            so a claim stitched from words scattered over a passage does not pass."""
            picked = [i for p in cited if (i := best_window(claim_i, p)) is not None]
            if not picked:
                return 0.0
            emb = max(float(win_vecs[i] @ claim_vecs[claim_i]) for i in picked)
            weights = claim_weights[claim_i]
            if not weights:
                return emb
            terms: set[str] = set().union(*(windows[i].terms for i in picked))
            # A number computed from the cited passages ("14 x 150 = 2,100") counts as found;
            # _numbers_ok flags it so the reader can check the arithmetic.
            have = {t for p in cited for t in passage_numbers[p]}
            derived = {
                t for t in weights if t[0].isdigit() and t not in terms and _derivable(t, have)
            }
            if derived:
                terms |= derived | _ARITHMETIC
            return self.w_lex * self._lex(weights, terms) + (1.0 - self.w_lex) * emb

        kept: list[tuple[str, list[tuple[int, int, int]], float]] = []  # text, (passage, s, e)
        shown = 0
        for ci, claim in enumerate(answer_claims):
            label = f"sentence {claim.index}"
            valid = [n - 1 for n in claim.cited if 1 <= n <= len(passages)]
            dangling = [n for n in claim.cited if not 1 <= n <= len(passages)]
            if dangling:
                notes.append(
                    f"{label} cited {', '.join(f'[{n}]' for n in dangling)}, "
                    "which points to no passage"
                )
            need = self.keep_threshold(claim.text)
            chosen: list[int] | None = None
            value = support(ci, valid) if valid else 0.0
            numbers_ok, derived = self._numbers_ok(claim.text, valid, passages)
            if valid and value >= need and numbers_ok:
                chosen = self._prune(ci, valid, support, claim.text, passages, notes, label)
            else:
                alt, alt_value, alt_derived = self._best_other(
                    ci, claim.text, passages, support, need
                )
                if alt is not None:
                    was = "".join(f"[{n + 1}]" for n in valid) or "no citation"
                    now = "".join(f"[{n + 1}]" for n in alt)
                    notes.append(f"re-cited {label} from {was} to {now}")
                    chosen, value, derived = alt, alt_value, alt_derived
            if chosen is None:
                why = (
                    "a number it states is not in the passages"
                    if valid and value >= need
                    else ("no passage supports it")
                )
                notes.append(f"removed {label} ({why}): {_clip(claim.text)}")
                continue
            shown += 1
            if derived:
                notes.append(
                    f"sentence {shown} computes {', '.join(derived)} from the cited passages: "
                    "check the arithmetic"
                )
            spans = []
            for p in chosen:
                w_i = best_window(ci, p)
                if w_i is not None:
                    spans.append((p, windows[w_i].start, windows[w_i].end))
            kept.append((claim.text, spans, value))

        if not kept:
            # The model refused in part and nothing else held up: that is a refusal.
            return Verification(answer="", citations=(), notes=notes, refused=refusals > 0)
        answer, citations = self._assemble(kept, passages, doc_text)
        return Verification(
            answer=answer, citations=citations, notes=notes, supports=[k[2] for k in kept]
        )

    def _prune(
        self,
        ci: int,
        cited: list[int],
        support: Callable[[int, Sequence[int]], float],
        text: str,
        passages: Sequence[Passage],
        notes: list[str],
        label: str,
    ) -> list[int]:
        """Drop cited passages that neither support the sentence alone nor add a needed term."""
        if len(cited) == 1:
            return cited
        weights, _ = self._claim_terms(text)
        terms = {p: set(self._tok(passages[p].chunk.text)) for p in cited}
        keep: list[int] = []
        for p in cited:
            others = set().union(*(terms[q] for q in cited if q != p))
            adds = any(t in terms[p] and t not in others for t in weights)
            if adds or support(ci, [p]) >= KEEP_PART:
                keep.append(p)
        if not keep:
            return cited
        dropped = [p for p in cited if p not in keep]
        if dropped:
            notes.append(
                f"dropped {', '.join(f'[{p + 1}]' for p in dropped)} from {label} "
                "(it does not support the sentence)"
            )
        return keep

    def _best_other(
        self,
        ci: int,
        text: str,
        passages: Sequence[Passage],
        support: Callable[[int, Sequence[int]], float],
        need: float,
    ) -> tuple[list[int] | None, float, list[str]]:
        """The best single passage (or pair, for combined facts) that supports the sentence."""
        singles = sorted(((support(ci, [p]), p) for p in range(len(passages))), reverse=True)
        candidates: list[list[int]] = [[p] for _, p in singles]
        top = [p for _, p in singles[:3]]
        candidates += [list(pair) for pair in itertools.combinations(sorted(top), 2)]
        for cand in candidates:
            value = support(ci, cand)
            ok, derived = self._numbers_ok(text, cand, passages)
            if value >= need and ok:
                return cand, value, derived
        return None, 0.0, []

    def _numbers_ok(
        self, text: str, cited: Sequence[int], passages: Sequence[Passage]
    ) -> tuple[bool, list[str]]:
        """Every number of the sentence is in the cited passages, or derived from two of them."""
        _, numbers = self._claim_terms(text)
        if not numbers:
            return True, []
        have: set[str] = set()
        for p in cited:
            have.update(t for t in self._tok(passages[p].chunk.text) if t[0].isdigit())
        derived: list[str] = []
        for number in numbers:
            if number in have:
                continue
            if _derivable(number, have):
                derived.append(number)
                continue
            return False, []
        return True, derived

    def _windows(
        self, passages: Sequence[Passage], doc_text: Callable[[str], str]
    ) -> list[_Window]:
        """Sentences (and adjacent pairs) of each passage, as offsets into the cleaned text."""
        out: list[_Window] = []
        for p, passage in enumerate(passages):
            chunk = passage.chunk
            text = doc_text(chunk.source)
            start, end = chunk.start, chunk.end
            if text[start:end] != chunk.text:
                found = text.find(chunk.text)
                if found < 0:
                    log.warning(
                        "passage %d of %s is not in its document; not quoted", p + 1, chunk.source
                    )
                    continue
                start, end = found, found + len(chunk.text)
            spans = split_sentences(text[start:end], offset=start)
            for a, b in spans:
                out.append(_Window(p, a, b, text[a:b], frozenset(self._tok(text[a:b]))))
            for (a, _), (_, b) in itertools.pairwise(spans):
                out.append(_Window(p, a, b, text[a:b], frozenset(self._tok(text[a:b])), pair=True))
        return out

    def _assemble(
        self,
        kept: list[tuple[str, list[tuple[int, int, int]], float]],
        passages: Sequence[Passage],
        doc_text: Callable[[str], str],
    ) -> tuple[str, tuple[Citation, ...]]:
        """Answer text with markers renumbered 1..k in order of first use, and the citations."""
        numbers: dict[tuple[str, int, int], int] = {}
        citations: list[Citation] = []
        sentences: list[str] = []
        for text, spans, _ in kept:
            marks: list[int] = []
            for p, start, end in spans:
                chunk = passages[p].chunk
                key = (chunk.source, start, end)
                if key not in numbers:
                    numbers[key] = len(numbers) + 1
                    quote = doc_text(chunk.source)[start:end]
                    citations.append(Citation.quoting(numbers[key], chunk, start, end, quote))
                if numbers[key] not in marks:
                    marks.append(numbers[key])
            sentences.append(_with_markers(text, marks))
        return " ".join(sentences), tuple(citations)


def _with_markers(text: str, marks: list[int]) -> str:
    tag = "".join(f"[{n}]" for n in marks)
    stripped = text.rstrip()
    if stripped and stripped[-1] in ".!?。":
        return f"{stripped[:-1]} {tag}{stripped[-1]}"
    return f"{stripped} {tag}"


def _derivable(number: str, have: set[str]) -> bool:
    try:
        target = float(number)
        # "1" and "2" make almost anything by addition; only real quantities may combine.
        values = [v for v in (float(h) for h in have) if v >= 2]
    except ValueError:
        return False
    if target <= 2:
        return False
    for a, b in itertools.combinations_with_replacement(values, 2):
        if target in (a + b, a * b, abs(a - b)):
            return True
    return False


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
