"""A learned answer-sentence selector over frozen MiniLM signals, from eval journals.

An eval run with ``--workdir`` journals, for every question, the passages retrieved and what
``Assistant.ask`` answered. Each sentence of a question's top 6 passages becomes a candidate,
labelled as the runner labels a citation (``metrics.citation_correct``: it holds a gold answer
or overlaps gold evidence). A logistic regression over signals computed from the frozen
packaged MiniLM (cosine, its margin and rank, passage rank, position, IDF-weighted and plain
word overlap, length; optionally the 384 element-wise products) is trained on the *tune* parts'
candidates only, and each part is scored by top-1: is the chosen sentence an answer sentence,
over the answerable questions that have one among their candidates; beside it, cosine alone,
and the product's own first citation on the questions it answered. Decision 070 records a run.

    W=/work/data/soak/work  # an eval run's --workdir
    python research/reader/journal_selector.py daedeok=$W/00-daedeok \\
        daedeok-heldout=$W/01-daedeok-heldout clapnq=$W/02-clapnq policyqa=$W/03-policyqa \\
        --datasets-dir /work/shared/datasets
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from policy_qa.config import quiet_third_parties
from policy_qa.evaluation import metrics as M
from policy_qa.evaluation.datasets import Item, Turn, load_named, load_set, load_splits
from policy_qa.ingest import load_file, split_sentences

REPO = Path(__file__).resolve().parents[2]
PASSAGES = 6  # Settings.top_k: the passages an answer is drawn from
PUBLIC = ("policyqa", "clapnq")
STOP = frozenset(
    "a an the of to in on for and or is are was were be by with as at from that this it its what "
    "which who whom whose when where why how do does did can will would should may your you we "
    "our us they their i my me".split()
)
WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class Candidate:
    text: str
    rank: int  # the passage's rank
    position: int  # the sentence's place in its passage
    before: str  # the sentence before it in its passage ("" for the first)
    label: bool


@dataclass(frozen=True)
class Question:
    set: str
    id: str
    part: str
    text: str
    answerable: bool
    answered: bool
    product_correct: bool  # the product's first citation holds the answer
    product_quote: str  # the product's first citation ("" when it refused)
    candidates: tuple[Candidate, ...]


def _words(text: str) -> set[str]:
    return {w for w in WORD.findall(text.lower()) if w not in STOP}


def _turns(name: str, datasets: Path, scratch: Path) -> dict[str, tuple[str, Item, Turn]]:
    """Row id -> (part, item, turn), as the runner names rows."""
    out: dict[str, tuple[str, Item, Turn]] = {}
    if name in PUBLIC:
        splits = load_splits(REPO / "eval" / "splits.json")
        parts = [
            (part, load_named(name, datasets, scratch / f"{name}-{part}", part=part, splits=splits))
            for part in ("tune", "heldout")
        ]
    else:
        part = "heldout" if name == "daedeok-heldout" else "tune"
        parts = [(part, load_set(REPO / "eval" / f"{name}.jsonl"))]
    for part, found in parts:
        for item in found.items:
            for i, turn in enumerate(item.turns):
                out[item.row_id(i)] = (part, item, turn)
    return out


def _corpus(name: str, workdir: Path) -> Path:
    if name.startswith("daedeok"):
        return REPO / "corpus"
    nested = workdir / "corpus" / name  # the runner writes a public set's corpus one level down
    return nested if nested.is_dir() else workdir / "corpus"


def load_questions(name: str, workdir: Path, datasets: Path, scratch: Path) -> list[Question]:
    turns = _turns(name, datasets, scratch)
    corpus = _corpus(name, workdir)
    texts: dict[str, str] = {}

    def text(source: str) -> str:
        if source not in texts:
            texts[source] = load_file(corpus / source, root=corpus).text
        return texts[source]

    out = []
    for line in (workdir / "journal-policy-qa.jsonl").read_text().splitlines():
        entry = json.loads(line)
        if "row" not in entry:
            continue
        row = entry["row"]
        part, item, turn = turns[entry["id"]]
        sources = [item.source] if item.source else sorted({r["source"] for r in row["retrieved"]})
        evidence = []
        for quote in turn.evidence:
            for source in sources:
                where = M.locate(quote, text(source))
                if where:
                    evidence.append(M.Span(source, *where))
                    break
        out.append(
            Question(
                set=name,
                id=entry["id"],
                part=part,
                text=entry["question"],
                answerable=turn.answerable,
                answered=not row["abstained"],
                product_correct=bool(row["citations"] and row["citations"][0]["correct"]),
                product_quote=row["citations"][0]["quote"] if row["citations"] else "",
                candidates=tuple(_candidates(row["retrieved"], text, turn, evidence)),
            )
        )
    return out


def _candidates(
    retrieved: Sequence[dict[str, Any]],
    text: Callable[[str], str],
    turn: Turn,
    evidence: Sequence[M.Span],
) -> Iterable[Candidate]:
    seen: set[tuple[str, int]] = set()
    for passage in retrieved[:PASSAGES]:
        full = text(passage["source"])
        start = passage["start"]
        pieces = list(split_sentences(full[start : passage["end"]]))
        for position, (s, e) in enumerate(pieces):
            a, b = start + s, start + e
            before = full[start + pieces[position - 1][0] : start + pieces[position - 1][1]]
            if (passage["source"], a) in seen:
                continue
            seen.add((passage["source"], a))
            label = turn.answerable and M.citation_correct(
                full[a:b], M.Span(passage["source"], a, b), turn.answers, evidence
            )
            yield Candidate(full[a:b], passage["rank"], position, before if position else "", label)


class Signals:
    """The selector's inputs for one question's candidates, from frozen MiniLM vectors."""

    def __init__(self, questions: Sequence[Question], products: bool) -> None:
        from policy_qa.embeddings import encode, load_embeddings

        texts = list(
            dict.fromkeys(
                [q.text for q in questions] + [c.text for q in questions for c in q.candidates]
            )
        )
        self.row = {t: i for i, t in enumerate(texts)}
        self.vectors = encode(load_embeddings("minilm"), texts)
        self.products = products
        tune = [c.text for q in questions if q.part == "tune" for c in q.candidates]
        self.df = collections.Counter(w for t in tune for w in _words(t))
        self.n = len(tune)

    def idf(self, word: str) -> float:
        return math.log((self.n + 1) / (self.df.get(word, 0) + 1))

    def __call__(self, q: Question) -> np.ndarray:
        qv = self.vectors[self.row[q.text]]
        cand = self.vectors[[self.row[c.text] for c in q.candidates]]
        cos = cand @ qv
        order = (-cos).argsort().argsort()
        asked = _words(q.text)
        weight = sum(self.idf(w) for w in asked) or 1.0
        rows = []
        for j, c in enumerate(q.candidates):
            shared = asked & _words(c.text)
            f = [
                cos[j],
                cos[j] - cos.max(),
                1.0 / (1 + order[j]),
                1.0 / c.rank,
                1.0 / (1 + c.position),
                sum(self.idf(w) for w in shared) / weight,
                len(shared) / max(1, len(asked)),
                math.log(1 + len(c.text)),
            ]
            if self.products:
                f += list(qv * cand[j])
            rows.append(f)
        return np.array(rows)


def _with_answer(q: Question) -> bool:
    return q.answerable and any(c.label for c in q.candidates)


def export(questions: Sequence[Question], folder: Path, parts: Sequence[str] = ("tune",)) -> None:
    """The questions of ``parts`` as ``train.py`` reads them (``candidates.py``'s format; no
    history: the journal keeps none, and a follow-up's turn is read alone), one file per set
    and part. ``answered``, ``product_correct`` and ``product_quote`` (its first citation) say
    what ``ask`` did, for ``score.py``."""
    folder.mkdir(parents=True, exist_ok=True)
    by_set: dict[str, list[str]] = collections.defaultdict(list)
    for q in questions:
        if q.part not in parts:
            continue
        record = {
            "set": q.set,
            "id": q.id,
            "question": q.text,
            "history": [],
            "answerable": q.answerable,
            "answered": q.answered,
            "product_correct": q.product_correct,
            "product_quote": q.product_quote,
            "candidates": [
                {
                    "rank": c.rank - 1,
                    "text": c.text,
                    "before": c.before,
                    "section": "",
                    "label": int(c.label),
                }
                for c in q.candidates
            ],
        }
        by_set[f"{q.set}-{q.part}"].append(json.dumps(record, ensure_ascii=False))
    for name, lines in by_set.items():
        (folder / f"{name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("journals", nargs="+", help="NAME=WORKDIR of an eval run's set")
    parser.add_argument("--datasets-dir", type=Path, default=Path("../shared/datasets"))
    parser.add_argument("--products", action="store_true", help="add the 384 element-wise products")
    parser.add_argument("-C", type=float, default=1.0, help="inverse regularisation strength")
    parser.add_argument("--export", type=Path, help="also write the candidates for train.py")
    parser.add_argument(
        "--export-parts", nargs="+", default=["tune"], help="which parts --export writes"
    )
    args = parser.parse_args(argv)
    quiet_third_parties()
    from sklearn.linear_model import LogisticRegression

    questions: list[Question] = []
    with tempfile.TemporaryDirectory() as scratch:
        for spec in args.journals:
            name, _, workdir = spec.partition("=")
            questions += load_questions(name, Path(workdir), args.datasets_dir, Path(scratch))
    if args.export:
        export(questions, args.export, args.export_parts)
    signals = Signals(questions, args.products)
    train = [q for q in questions if q.part == "tune" and _with_answer(q)]
    x = np.vstack([signals(q) for q in train])
    y = np.array([c.label for q in train for c in q.candidates])
    model = LogisticRegression(C=args.C, max_iter=2000, class_weight="balanced").fit(x, y)
    print(f"trained on {len(train)} tune questions, {len(y)} candidates ({int(y.sum())} answers)")
    print("| set | part | questions | cosine | learned | answered | product | learned |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for key in sorted({(q.set, q.part) for q in questions}):
        group = [q for q in questions if (q.set, q.part) == key and _with_answer(q)]
        if not group:
            continue
        picks = {}
        for q in group:
            f = signals(q)  # column 0 is the cosine
            picks[id(q)] = (
                q.candidates[int(np.argmax(f[:, 0]))].label,
                q.candidates[int(np.argmax(model.decision_function(f)))].label,
            )
        answered = [q for q in group if q.answered]
        print(
            f"| {key[0]} | {key[1]} | {len(group)} | {rate([picks[id(q)][0] for q in group])} "
            f"| {rate([picks[id(q)][1] for q in group])} | {len(answered)} "
            f"| {rate([q.product_correct for q in answered])} "
            f"| {rate([picks[id(q)][1] for q in answered])} |"
        )


def rate(flags: Sequence[bool]) -> str:
    return f"{sum(flags) / len(flags):.3f}" if flags else "–"


if __name__ == "__main__":
    main()
