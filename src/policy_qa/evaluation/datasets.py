# Over 500 lines: the .jsonl format and one loader per public dataset, all into one EvalSet.
"""Question sets: our JSON Lines format, and loaders for public SQuAD-style and CLAP NQ files.

Everything becomes one shape, an ``EvalSet``: a corpus folder (plain files the systems index)
and ``Item``s, each with one turn or several (a dialogue). Public datasets carry their passages
inline, so their loaders first write each passage to a ``.txt`` file under a folder the caller
chooses, then point the set at it.

This module reads question files and writes corpus files; it must not index, ask or score.
The JSON Lines format is documented in ``eval/README.md``.
"""

from __future__ import annotations

import json
import logging
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import ConfigError
from ..types import content_id
from .metrics import Gold, has_hangul

__all__ = [
    "DATASET_NAMES",
    "DATASET_PATHS",
    "QUESTION_TYPES",
    "EvalSet",
    "Item",
    "Turn",
    "answer_sentence",
    "describe",
    "dump_item",
    "load_clapnq",
    "load_korquad",
    "load_named",
    "load_policyqa",
    "load_set",
    "load_squad",
    "questions",
]

log = logging.getLogger(__name__)

QUESTION_TYPES = (
    "fact",
    "list",
    "definition",
    "multi-passage",
    "computed",  # needs two stated facts combined (a span of years, a total)
    "paraphrase",  # asked in other words than the document's
    "unanswerable",
    "korean",
    "dialogue",
    "reading",  # a public reading-comprehension question
)


# --- the shapes the runner consumes ---------------------------------------------------------


@dataclass(frozen=True)
class Turn:
    """One question with its gold: alternatives (a list alternative needs all its parts)."""

    question: str
    answers: tuple[Gold, ...] = ()
    evidence: tuple[str, ...] = ()  # verbatim quotes of the source's (cleaned) text
    answerable: bool = True


@dataclass(frozen=True)
class Item:
    """A question, or a dialogue whose later turns depend on the earlier ones."""

    id: str
    type: str
    turns: tuple[Turn, ...]
    lang: str = "en"
    source: str | None = None  # gold source, relative to the corpus folder
    within: str | None = None  # restrict retrieval to sources starting with this

    @property
    def is_dialogue(self) -> bool:
        return len(self.turns) > 1 or self.type == "dialogue"

    def row_id(self, index: int) -> str:
        """The id of turn ``index`` (from 0) in reports and journals: the item's own id when
        it has one turn, ``id#N`` (N from 1) when it has more."""
        return self.id if len(self.turns) == 1 else f"{self.id}#{index + 1}"


@dataclass(frozen=True)
class EvalSet:
    """Questions over one corpus folder.

    ``long_answers``: the references are long sentences (CLAP NQ), so an answer counts as
    correct when it recalls at least half of a reference's tokens rather than containing it.
    """

    name: str
    corpus: Path
    items: tuple[Item, ...]
    long_answers: bool = False
    description: str = ""

    @property
    def n_questions(self) -> int:
        return sum(len(item.turns) for item in self.items)

    def sample(self, limit: int | None, seed: int = 0) -> EvalSet:
        """At most ``limit`` items chosen by ``seed``, kept in file order (all when None)."""
        if limit is None or limit >= len(self.items):
            return self
        if limit < 1:
            raise ConfigError(f"limit must be at least 1, got {limit}")
        chosen = sorted(random.Random(seed).sample(range(len(self.items)), limit))
        return replace(self, items=tuple(self.items[i] for i in chosen))

    def without_scope(self) -> EvalSet:
        return replace(self, items=tuple(replace(i, within=None) for i in self.items))


# --- our JSON Lines format ------------------------------------------------------------------


class _TurnRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1)
    answers: list[str | list[str]] = []
    evidence: list[str] = []
    answerable: bool | None = None

    @field_validator("answers")
    @classmethod
    def _no_empty_answers(cls, value: list[str | list[str]]) -> list[str | list[str]]:
        for answer in value:
            parts = [answer] if isinstance(answer, str) else answer
            if not parts or any(not p.strip() for p in parts):
                raise ValueError("answers must not be empty strings or empty lists")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> _TurnRow:
        if self.answerable is None:
            self.answerable = bool(self.answers or self.evidence)
        if self.answerable and not (self.answers or self.evidence):
            raise ValueError("an answerable question needs answers or evidence")
        if not self.answerable and self.answers:
            raise ValueError("an unanswerable question must not list answers")
        return self

    def to_turn(self) -> Turn:
        return Turn(
            question=self.question,
            answers=tuple(a if isinstance(a, str) else tuple(a) for a in self.answers),
            evidence=tuple(self.evidence),
            answerable=bool(self.answerable),
        )


class _ItemRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    type: str = "fact"
    lang: str | None = None
    source: str | None = None
    within: str | None = None
    # a single question ...
    question: str | None = None
    answers: list[str | list[str]] = []
    evidence: list[str] = []
    answerable: bool | None = None
    # ... or a dialogue
    turns: list[_TurnRow] = []

    @model_validator(mode="after")
    def _one_shape(self) -> _ItemRow:
        if self.turns and self.question is not None:
            raise ValueError("give either 'question' or 'turns', not both")
        if not self.turns and self.question is None:
            raise ValueError("give 'question' (or 'turns' for a dialogue)")
        if self.turns and (self.answers or self.evidence or self.answerable is not None):
            raise ValueError("in a dialogue, answers/evidence/answerable belong to each turn")
        if self.type not in QUESTION_TYPES:
            raise ValueError(f"type must be one of {', '.join(QUESTION_TYPES)}")
        return self

    def to_item(self) -> Item:
        if self.turns:
            turns = tuple(t.to_turn() for t in self.turns)
        else:
            row = _TurnRow(
                question=self.question or "",
                answers=self.answers,
                evidence=self.evidence,
                answerable=self.answerable,
            )
            turns = (row.to_turn(),)
        lang = self.lang or ("ko" if any(has_hangul(t.question) for t in turns) else "en")
        return Item(
            id=self.id,
            type=self.type,
            turns=turns,
            lang=lang,
            source=self.source,
            within=self.within,
        )


class _Header(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    corpus: str | None = None
    description: str = ""
    long_answers: bool = False


def load_set(path: str | Path, corpus: str | Path | None = None) -> EvalSet:
    """Read a question set in our JSON Lines format (see ``eval/README.md``).

    The corpus folder is, in order: ``corpus`` if given; the header's ``corpus`` (relative to
    the set file); a ``corpus`` folder beside the set file or beside its parent folder.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"question set {path} not found")
    header = _Header()
    items: list[Item] = []
    seen: set[str] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        where = f"{path}:{number}"
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where}: not valid JSON ({exc.msg})") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: each line must be a JSON object")
        try:
            if "set" in raw:
                if items or len(raw) != 1:
                    raise ConfigError(f"{where}: the 'set' header must be alone on the first line")
                header = _Header.model_validate(raw["set"])
                continue
            item = _ItemRow.model_validate(raw).to_item()
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'row'}: {e['msg']}" for e in exc.errors()
            )
            raise ConfigError(f"{where}: {problems}") from None
        if item.id in seen:
            raise ConfigError(f"{where}: duplicate id {item.id!r}")
        seen.add(item.id)
        items.append(item)
    if not items:
        raise ConfigError(f"question set {path} has no questions")
    folder = _corpus_folder(path, header.corpus, corpus)
    return EvalSet(
        name=header.name or path.stem,
        corpus=folder,
        items=tuple(items),
        long_answers=header.long_answers,
        description=header.description,
    )


def _corpus_folder(path: Path, declared: str | None, override: str | Path | None) -> Path:
    if override is not None:
        candidates = [Path(override)]
    elif declared:
        candidates = [(path.parent / declared)]
    else:
        candidates = [path.parent / "corpus", path.parent.parent / "corpus"]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate.resolve()
    raise ConfigError(
        f"no corpus folder for {path}: looked for {', '.join(str(c) for c in candidates)}; "
        "name one in the set's header line or with --corpus"
    )


def dump_item(item: Item) -> dict[str, Any]:
    """An item as a JSON Lines row (the inverse of what ``load_set`` reads)."""

    def gold(a: Gold) -> str | list[str]:
        return a if isinstance(a, str) else list(a)

    def turn(t: Turn) -> dict[str, Any]:
        return {
            "question": t.question,
            "answers": [gold(a) for a in t.answers],
            "evidence": list(t.evidence),
            "answerable": t.answerable,
        }

    row: dict[str, Any] = {"id": item.id, "type": item.type, "lang": item.lang}
    if item.source:
        row["source"] = item.source
    if item.within:
        row["within"] = item.within
    if item.is_dialogue:
        row["turns"] = [turn(t) for t in item.turns]
    else:
        row.update(turn(item.turns[0]))
    return row


# --- public datasets ------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?。])[\"')\]]*\s+|\n+")
_UNSAFE = re.compile(r"[^\w.\-]+")


def answer_sentence(context: str, start: int, end: int) -> str:
    """The sentence(s) of ``context`` that hold ``context[start:end]``: SQuAD's evidence."""
    left = 0
    right = len(context)
    for match in _SENTENCE_END.finditer(context):
        if match.end() <= start:
            left = match.end()
        elif match.start() >= end:
            right = match.start()
            break
    return context[left:right].strip()


def _safe_name(text: str, fallback: str) -> str:
    name = _UNSAFE.sub("_", text.strip()).strip("._")[:80]
    return name or fallback


def _write(corpus: Path, relative: str, text: str, meta: dict[str, str]) -> None:
    path = corpus / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    # The sidecar gives our loader the title and language; the plain baseline ignores it.
    sidecar = path.with_name(path.name + ".meta.json")
    sidecar.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")


def _prepare(out_dir: str | Path) -> Path:
    corpus = Path(out_dir)
    if corpus.exists() and any(corpus.iterdir()):
        raise ConfigError(f"{corpus} is not empty: give a fresh folder for the dataset's corpus")
    corpus.mkdir(parents=True, exist_ok=True)
    return corpus.resolve()


def _read_squad(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise ConfigError(f"dataset file {path} not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
        articles = data["data"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path} is not a SQuAD-format file ({exc})") from None
    return list(articles)


def _squad_turn(context: str, qa: dict[str, Any]) -> Turn:
    answers: list[str] = []
    evidence: list[str] = []
    for answer in qa.get("answers", []):
        text = str(answer.get("text", "")).strip()
        if not text or text in answers:
            continue
        answers.append(text)
        start = int(answer.get("answer_start", -1))
        if context[start : start + len(text)] != text:
            start = context.find(text)
        if start >= 0:
            sentence = answer_sentence(context, start, start + len(text))
            if sentence and sentence not in evidence:
                evidence.append(sentence)
    return Turn(
        question=str(qa["question"]).strip(), answers=tuple(answers), evidence=tuple(evidence)
    )


def load_squad(
    path: str | Path,
    out_dir: str | Path,
    *,
    name: str,
    limit: int | None = None,
    seed: int = 0,
    scope: bool = False,
    titles: int | None = None,
    lang: str = "en",
    keep_titles: frozenset[str] | None = None,
) -> EvalSet:
    """A SQuAD v1.1-format file as a corpus plus questions.

    Questions are sampled with ``random.Random(seed)``: first ``titles`` articles (all when
    None), then ``limit`` questions among theirs. The corpus holds every paragraph of the
    articles that sampled questions come from, as ``<title>/p<NNN>.txt``; with ``scope`` each
    question is restricted to its own article (``within="<title>/"``).
    """
    articles = [a for a in _read_squad(Path(path)) if a.get("paragraphs")]
    if keep_titles is not None:
        # One part of a frozen split (eval/splits.json): whole articles, never single questions.
        articles = [a for a in articles if str(a.get("title")) in keep_titles]
    rng = random.Random(seed)
    if titles is not None:
        if titles < 1:
            raise ConfigError(f"titles must be at least 1, got {titles}")
        articles = [
            articles[i]
            for i in sorted(rng.sample(range(len(articles)), min(titles, len(articles))))
        ]
    candidates: list[tuple[int, int, dict[str, Any]]] = []
    for a, article in enumerate(articles):
        for p, paragraph in enumerate(article["paragraphs"]):
            for qa in paragraph.get("qas", []):
                if qa.get("answers"):
                    candidates.append((a, p, qa))
    if limit is not None and limit < len(candidates):
        if limit < 1:
            raise ConfigError(f"limit must be at least 1, got {limit}")
        candidates = [candidates[i] for i in sorted(rng.sample(range(len(candidates)), limit))]
    corpus = _prepare(out_dir)
    folders: dict[int, str] = {}
    used: set[str] = set()
    for a in sorted({a for a, _, _ in candidates}):
        article = articles[a]
        title = str(article.get("title") or f"article-{a}")
        folder = _safe_name(title, f"article-{a}")
        while folder in used:
            folder += "_"
        used.add(folder)
        folders[a] = folder
        for p, paragraph in enumerate(article["paragraphs"]):
            _write(
                corpus,
                f"{folder}/p{p:03d}.txt",
                str(paragraph["context"]),
                {"title": f"{title} ({p + 1})", "language": lang},
            )
    items = []
    for a, p, qa in candidates:
        folder = folders[a]
        context = str(articles[a]["paragraphs"][p]["context"])
        items.append(
            Item(
                id=str(qa.get("id") or content_id(qa["question"])[:12]),
                type="reading",
                turns=(_squad_turn(context, qa),),
                lang=lang,
                source=f"{folder}/p{p:03d}.txt",
                within=f"{folder}/" if scope else None,
            )
        )
    return EvalSet(name=name, corpus=corpus, items=tuple(items))


def load_policyqa(
    path: str | Path,
    out_dir: str | Path,
    *,
    limit: int | None = None,
    seed: int = 0,
    scope: bool = True,
    policies: int | None = None,
    keep: frozenset[str] | None = None,
    name: str = "policyqa",
) -> EvalSet:
    """PolicyQA (SQuAD format): questions are generic, so by default each is asked of its own
    policy only (``within="<site>/"``); ``policies`` samples that many policies first, among
    the policies in ``keep`` (all when None)."""
    return load_squad(
        path,
        out_dir,
        name=name,
        limit=limit,
        seed=seed,
        scope=scope,
        titles=policies,
        keep_titles=keep,
    )


def load_korquad(
    path: str | Path,
    out_dir: str | Path,
    *,
    limit: int | None = None,
    seed: int = 0,
    articles: int | None = None,
    keep: frozenset[str] | None = None,
    name: str = "korquad",
) -> EvalSet:
    """KorQuAD 1.0 (SQuAD format), Korean questions over Korean Wikipedia paragraphs; only the
    articles in ``keep`` (all when None)."""
    return load_squad(
        path,
        out_dir,
        name=name,
        limit=limit,
        seed=seed,
        titles=articles,
        lang="ko",
        keep_titles=keep,
    )


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise ConfigError(f"dataset file {path} not found")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
    return rows


def load_clapnq(
    folder: str | Path,
    out_dir: str | Path,
    *,
    limit: int | None = None,
    seed: int = 0,
    answerable_file: str = "clapnq_dev_answerable.jsonl",
    unanswerable_file: str = "clapnq_dev_unanswerable.jsonl",
    keep: frozenset[str] | None = None,
    name: str = "clapnq",
) -> EvalSet:
    """CLAP NQ's JSON Lines: answerable and unanswerable questions with their passages.

    ``limit`` questions are sampled with ``seed``, half from each file (the extra one from the
    answerable file). The corpus is every passage of the sampled questions, one file each
    (``clapnq/<hash>.txt``, title on the first line), so an unanswerable question meets its
    plausible-looking passage. Gold answers are the long reference answers and the evidence
    is the annotators' selected sentences.
    """
    folder = Path(folder)
    answerable = _read_jsonl(folder / answerable_file)
    unanswerable = _read_jsonl(folder / unanswerable_file)
    if keep is not None:
        answerable = [r for r in answerable if str(r["id"]) in keep]
        unanswerable = [r for r in unanswerable if str(r["id"]) in keep]
    rng = random.Random(seed)

    def pick(rows: list[dict[str, Any]], n: int | None) -> list[dict[str, Any]]:
        if n is None or n >= len(rows):
            return rows
        return [rows[i] for i in sorted(rng.sample(range(len(rows)), n))]

    if limit is not None and limit < 1:
        raise ConfigError(f"limit must be at least 1, got {limit}")
    n_ans = None if limit is None else (limit + 1) // 2
    n_unans = None if limit is None else limit // 2
    chosen = [(r, True) for r in pick(answerable, n_ans)]
    chosen += [(r, False) for r in pick(unanswerable, n_unans)]
    corpus = _prepare(out_dir)
    written: set[str] = set()
    items = []
    for row, has_answer in chosen:
        sources = []
        for passage in row.get("passages", []):
            title = str(passage.get("title", "")).strip()
            text = str(passage.get("text", "")).strip()
            relative = f"clapnq/{content_id(title, text)[:16]}.txt"
            if relative not in written:
                _write(corpus, relative, f"{title}\n\n{text}\n", {"title": title, "language": "en"})
                written.add(relative)
            sources.append(relative)
        answers: list[str] = []
        evidence: list[str] = []
        for output in row.get("output", []) if has_answer else []:
            answer = str(output.get("answer", "")).strip()
            if answer and answer not in answers:
                answers.append(answer)
                for sentence in output.get("selected_sentences", []):
                    if sentence.strip() and sentence.strip() not in evidence:
                        evidence.append(sentence.strip())
        if has_answer and not answers:
            continue  # annotators skipped it: no reference to score against
        items.append(
            Item(
                id=str(row["id"]),
                type="reading" if has_answer else "unanswerable",
                turns=(
                    Turn(
                        question=str(row["input"]).strip(),
                        answers=tuple(answers),
                        evidence=tuple(evidence),
                        answerable=has_answer,
                    ),
                ),
                source=sources[0] if len(sources) == 1 else None,
            )
        )
    return EvalSet(name=name, corpus=corpus, items=tuple(items), long_answers=True)


DATASET_NAMES = ("policyqa", "clapnq", "korquad")
DATASET_PATHS = {
    "policyqa": "policyqa/dev.json",
    "clapnq": "clapnq",
    "korquad": "korquad1/KorQuAD_v1.0_dev.json",
}


def load_named(
    name: str,
    datasets_dir: str | Path,
    out_dir: str | Path,
    *,
    limit: int | None = None,
    seed: int = 0,
    scope: bool = True,
    groups: int | None = None,
    part: str | None = None,
    splits: Mapping[str, Any] | None = None,
) -> EvalSet:
    """One of the shared datasets by name, read from ``datasets_dir``.

    ``groups`` samples that many policies (PolicyQA) or articles (KorQuAD) before questions.
    ``part`` ("tune" or "heldout") keeps one part of the frozen split ``splits`` (the content
    of eval/splits.json; ``load_splits``); the set is then named ``<name>@<part>``.
    """
    if name not in DATASET_PATHS:
        raise ConfigError(f"unknown dataset {name!r}: use one of {', '.join(DATASET_NAMES)}")
    path = Path(datasets_dir) / DATASET_PATHS[name]
    if not path.exists():
        raise ConfigError(
            f"{name} not found at {path}: point --datasets-dir (or POLICY_QA_DATASETS) at the "
            "folder that holds policyqa/, clapnq/ and korquad1/"
        )
    keep: frozenset[str] | None = None
    label = name
    if part is not None:
        if part not in PARTS:
            raise ConfigError(f"part must be one of {', '.join(PARTS)}, got {part!r}")
        if splits is None or name not in splits:
            raise ConfigError(f"no frozen split for {name} (eval/splits.json)")
        keep = frozenset(str(x) for x in splits[name][part])
        label = f"{name}@{part}"
    if name == "policyqa":
        return load_policyqa(
            path,
            out_dir,
            limit=limit,
            seed=seed,
            scope=scope,
            policies=groups,
            keep=keep,
            name=label,
        )
    if name == "korquad":
        return load_korquad(
            path, out_dir, limit=limit, seed=seed, articles=groups, keep=keep, name=label
        )
    return load_clapnq(path, out_dir, limit=limit, seed=seed, keep=keep, name=label)


PARTS = ("tune", "heldout")


def load_splits(path: str | Path) -> dict[str, Any]:
    """The frozen tune / held-out split (eval/splits.json, written by research/make_splits.py).

    Every labelled set is split before any tuning: PolicyQA by policy, KorQuAD by article, CLAP
    NQ by question, and the bundled Daedeok set (tune) against eval/daedeok-heldout.jsonl.
    """
    path = Path(path)
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read the frozen split {path}: {exc}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path} must hold a JSON object")
    return loaded


def describe(sets: Iterable[EvalSet]) -> list[dict[str, Any]]:
    """A summary of each set for results.json."""
    out = []
    for s in sets:
        turns = [t for item in s.items for t in item.turns]
        out.append(
            {
                "name": s.name,
                "corpus": str(s.corpus),
                "items": len(s.items),
                "questions": len(turns),
                "answerable": sum(t.answerable for t in turns),
                "unanswerable": sum(not t.answerable for t in turns),
                "dialogues": sum(item.is_dialogue for item in s.items),
                "types": _count(item.type for item in s.items),
                "long_answers": s.long_answers,
            }
        )
    return out


def _count(values: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return counts


def questions(items: Sequence[Item]) -> list[tuple[Item, int, Turn]]:
    """Every (item, turn index, turn), in order."""
    return [(item, i, turn) for item in items for i, turn in enumerate(item.turns)]
