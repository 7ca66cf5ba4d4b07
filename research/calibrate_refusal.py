"""Collect the refusal evidence of dev questions: prints a table per language, writes JSON.

    python research/calibrate_refusal.py --workdir /tmp/dev/work [--sets clapnq korquad ...]

Runs after ``policy-qa eval ... --workdir DIR`` (which writes each set's corpus and index under
DIR) and re-asks every question with the extractive answerer, recording the pieces its
confidence is made of: best sentence similarity, term coverage and the final confidence, per
language pair and answerability. The refusal threshold and the per-language offsets in
``policy_qa.answer`` were chosen from these tables
(docs/decisions/013-evidence-confidence-and-refusal-threshold.md).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from policy_qa import Assistant, Settings
from policy_qa.answer import Evidence, ExtractiveAnswerer
from policy_qa.config import quiet_third_parties
from policy_qa.evaluation.datasets import EvalSet, load_named, load_set
from policy_qa.ingest import detect_language
from policy_qa.types import Passage

REPO = Path(__file__).resolve().parents[1]


def walk(
    qa: Assistant, evalset: EvalSet
) -> Iterator[tuple[Any, int, Any, str, list[Passage], Evidence]]:
    """Every turn of ``evalset`` asked of ``qa`` as the assistant would (follow-ups read after the
    question before them), with its retrieval query, its passages and the extractive answerer's
    evidence. ``qa`` must refuse nothing (threshold 0, check off: ``open_unrefusing``), so that
    its answer carries the passages the evidence is scored on."""
    retriever = qa.retriever()
    answerer = ExtractiveAnswerer(retriever.scorer, retriever.lexical, threshold=0.0)
    for item in evalset.items:
        history: list[tuple[str, str]] = []
        for i, turn in enumerate(item.turns):
            answer = qa.ask(turn.question, history, within=item.within)
            query, passages = answer.retrieval_query or turn.question, list(answer.passages)
            evidence = answerer.evidence(turn.question, passages, query)
            yield item, i, turn, query, passages, evidence
            history.append((turn.question, ""))


def open_unrefusing(data_dir: Path) -> Assistant:
    """An assistant that answers every question (threshold 0, no answerability check): what
    ``walk`` reads the evidence of."""
    return Assistant(settings=Settings(data_dir=data_dir, refusal_threshold=0.0, judge="off"))


def main() -> int:
    quiet_third_parties()  # offline and quiet, before any model loads
    parser = argparse.ArgumentParser()
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--sets", nargs="+", default=["daedeok", "clapnq", "korquad", "policyqa"])
    parser.add_argument("--datasets", type=Path, default=REPO.parent / "shared" / "datasets")
    parser.add_argument("--limit", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--groups", type=int, default=4)
    parser.add_argument("--out", type=Path, default=REPO / "bench-out" / "refusal.json")
    args = parser.parse_args()

    rows = []
    for name in args.sets:
        if name == "daedeok":
            evalset = load_set(REPO / "eval" / "daedeok.jsonl")
        else:
            evalset = load_named(
                name,
                args.datasets,
                args.workdir / "calib-corpus" / name,
                limit=args.limit,
                seed=args.seed,
                groups=args.groups if name != "clapnq" else None,
            )
        qa = open_unrefusing(args.workdir / "calib" / name)
        qa.index([evalset.corpus])
        for item, i, turn, _, passages, ev in walk(qa, evalset):
            doc_lang = detect_language(passages[0].chunk.text) if passages else "en"
            rows.append(
                {
                    "set": name,
                    "id": f"{item.id}#{i + 1}",
                    "pair": f"{detect_language(turn.question)}-{doc_lang}",
                    "follow_up": i > 0,
                    "answerable": turn.answerable,
                    "similarity": ev.best_similarity,
                    "coverage": ev.coverage,
                    "confidence": ev.confidence,
                    "features": dict(ev.features),
                }
            )
        qa.close()

    print("| pair | follow-up | answerable | n | confidence p10 | p50 | p90 |")
    print("|---|---|---|---|---|---|---|")
    groups: dict[tuple[str, bool, bool], list[float]] = {}
    for r in rows:
        groups.setdefault((r["pair"], r["follow_up"], r["answerable"]), []).append(r["confidence"])
    for (pair, follow, answerable), values in sorted(groups.items()):
        deciles = statistics.quantiles(values, n=10) if len(values) > 1 else values * 9
        print(
            f"| {pair} | {follow} | {answerable} | {len(values)} | {deciles[0]:.3f} | "
            f"{statistics.median(values):.3f} | {deciles[-1]:.3f} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
