"""Candidate answer sentences, labelled, for training and choosing the reader.

For every question of a set's *tune* part (never its held-out part), the product retrieves its
passages through the public API (``Assistant.retrieve``, the same windows ``ask`` reads), and
each sentence of the top passages becomes one candidate, labelled 1 when it holds the answer:

- it overlaps a gold evidence quote (located in the cleaned text of the gold source), or
- it lies in the gold source and contains a gold answer (SQuAD-normalised, whole words).

Unanswerable questions label every candidate 0. One JSON line per question goes to ``--out``.

    python research/reader/candidates.py daedeok policyqa@tune clapnq@tune korquad@tune \\
        --out /work/data/reader/candidates
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from policy_qa import Assistant, Settings
from policy_qa.config import quiet_third_parties
from policy_qa.evaluation.datasets import EvalSet, Turn, load_named, load_set, load_splits
from policy_qa.evaluation.metrics import Span, answer_present, locate, overlaps
from policy_qa.ingest import split_sentences

REPO = Path(__file__).resolve().parents[2]
PASSAGES = 6  # the top_k passages an answer is drawn from (Settings.top_k)
log = logging.getLogger("candidates")


def load(name: str, datasets: Path, work: Path) -> EvalSet:
    base, _, part = name.partition("@")
    if part == "heldout" or name == "daedeok-heldout":
        raise SystemExit("candidates are for tuning: never from a held-out part")
    if base in ("policyqa", "clapnq", "korquad"):
        splits = load_splits(REPO / "eval" / "splits.json")
        return load_named(base, datasets, work / "corpus", part=part or "tune", splits=splits)
    return load_set(REPO / "eval" / f"{base}.jsonl")


def gold_spans(qa: Assistant, source: str | None, turn: Turn) -> list[tuple[str, Span]]:
    if not source:
        return []
    try:
        text = qa.document_text(source)
    except Exception:
        return []
    out = []
    for quote in turn.evidence:
        where = locate(quote, text)
        if where is not None:
            out.append((source, Span(source, *where)))
    return out


def candidates_for(
    qa: Assistant,
    question: str,
    history: list[tuple[str, str]],
    within: str | None,
    turn: Turn,
    source: str | None,
) -> list[dict[str, Any]]:
    passages = qa.retrieve(question, history or None, within=within, k=PASSAGES)
    spans = gold_spans(qa, source, turn)
    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, int]] = set()
    for rank, p in enumerate(passages):
        c = p.chunk
        focus = p.focus_span
        pieces = list(split_sentences(c.text))
        for i, (s, e) in enumerate(pieces):
            start, end = c.start + s, c.start + e
            if (c.source, start) in seen:
                continue
            seen.add((c.source, start))
            text = c.text[s:e]
            before = c.text[pieces[i - 1][0] : pieces[i - 1][1]] if i else ""
            label = 0
            if turn.answerable:
                span = Span(c.source, start, end)
                if any(overlaps(span, g) for _, g in spans) or (
                    c.source == source and turn.answers and answer_present(text, turn.answers)
                ):
                    label = 1
            rows.append(
                {
                    "rank": rank,
                    "outside": int(end <= focus[0] or start >= focus[1]),
                    "source": c.source,
                    "start": start,
                    "end": end,
                    "text": text,
                    "before": before,
                    "section": c.section,
                    "title": c.title,
                    "label": label,
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="+")
    parser.add_argument("--datasets-dir", type=Path, default=REPO.parent / "shared" / "datasets")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--work", type=Path, default=Path("/tmp/reader-work"))
    args = parser.parse_args()
    quiet_third_parties()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.sets:
        work = args.work / name.replace("@", "-")
        eval_set = load(name, args.datasets_dir, work)
        settings = Settings.from_env(judge="off", index_dir=work / "index")
        qa = Assistant(settings=settings)
        began = time.perf_counter()
        qa.index([eval_set.corpus])
        log.info("%s: indexed in %.0f s", name, time.perf_counter() - began)
        out_path = args.out / f"{name.replace('@', '-')}.jsonl"
        n = 0
        with out_path.open("w", encoding="utf-8") as out:
            for item in eval_set.items:
                history: list[tuple[str, str]] = []
                for i, turn in enumerate(item.turns):
                    rows = candidates_for(
                        qa, turn.question, history, item.within, turn, item.source
                    )
                    record = {
                        "set": name,
                        "id": item.row_id(i),
                        "lang": item.lang,
                        "question": turn.question,
                        "history": history[-1:],
                        "answerable": turn.answerable,
                        "answers": [a if isinstance(a, str) else list(a) for a in turn.answers],
                        "source": item.source,
                        "candidates": rows,
                    }
                    out.write(json.dumps(record, ensure_ascii=False) + "\n")
                    n += 1
                    gold = turn.answers[0] if turn.answers else ""
                    history.append(
                        (turn.question, gold if isinstance(gold, str) else " ".join(gold))
                    )
        qa.close()
        log.info("%s: %d questions in %.0f s -> %s", name, n, time.perf_counter() - began, out_path)
    sys.exit(0)


if __name__ == "__main__":
    main()
