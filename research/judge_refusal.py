"""Choose the answerability check's band and cut: collect, judge, then grid-search.

    python research/judge_refusal.py collect --workdir /tmp/judge --set clapnq --limit 120 --seed 1
    python research/judge_refusal.py choose --dev A.jsonl [B.jsonl ...] --test C.jsonl [...]

``collect`` indexes a dev sample, answers every question with the extractive answerer at
threshold 0 (so nothing is refused), and records the confidence, answerability and the names
no indexed text mentions, then asks ``policy_qa.judge.AnswerabilityJudge`` (the production
prompt and model) about the passage the shipped check reads (``Evidence.checked_rank``).
``collect`` also records, for a question with a precise ask, the quote the model gives after a
yes and whether it holds the asked kind of answer (the quote check). ``choose`` searches (low,
high, weight, target) -- refuse below ``low``, answer from ``high``, and in between answer when
confidence + weight * P(yes) >= target, unless the question names something no indexed text
mentions and the confidence is under the plain threshold -- for the most unanswerables
refused while no dev file refuses more than 10% of its answerable ones, then reports the top
choices on the test files' questions that no dev file holds
(docs/decisions/014-answerability-check.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from policy_qa.config import quiet_third_parties
from policy_qa.judge import BAND, TARGET, WEIGHT

REPO = Path(__file__).resolve().parents[1]


def collect(args: argparse.Namespace) -> None:
    from calibrate_refusal import open_unrefusing, walk  # research/ is on sys.path as a script

    from policy_qa import Settings
    from policy_qa.answer import ExtractiveAnswerer
    from policy_qa.evaluation.datasets import load_named, load_set
    from policy_qa.judge import make_judge

    work = args.workdir / f"{args.set}-{args.seed}-{args.limit}"
    if args.set == "daedeok":
        evalset = load_set(REPO / "eval" / "daedeok.jsonl")
    else:
        evalset = load_named(
            args.set,
            args.datasets,
            work / "corpus",
            limit=args.limit,
            seed=args.seed,
            groups=None if args.set == "clapnq" else 10,
        )
    qa = open_unrefusing(work / "data")
    qa.index([evalset.corpus])
    judge = make_judge(Settings(judge="on", data_dir=REPO / ".policy-qa"))
    assert judge is not None
    retriever = qa.retriever()
    answerer = ExtractiveAnswerer(retriever.scorer, retriever.lexical)
    out = args.workdir / f"{args.set}-{args.seed}-{args.limit}.jsonl"
    with out.open("w", encoding="utf-8") as fh:
        for item, i, turn, query, passages, evidence in walk(qa, evalset):
            # The passage the shipped check reads (ExtractiveAnswerer.answer).
            text = passages[evidence.checked_rank].focus_text if passages else ""
            p_yes = judge(turn.question, text, 0.0).p_yes if passages else 0.0
            row = {
                "id": f"{item.id}#{i + 1}",
                "question": turn.question,
                "answerable": turn.answerable,
                "confidence": evidence.confidence,
                "p_yes": p_yes,
                "unknown_names": list(evidence.unknown_names),
            }
            # The quote check (ExtractiveAnswerer._check_quote) asks for a quote only for these.
            if passages and answerer.wants_quote(turn.question, evidence):
                quote = judge.quote(turn.question, text)
                row["quote"] = quote
                flaw = answerer.quote_verdict(
                    turn.question, evidence, quote, passages[evidence.checked_rank], query
                )
                row["quote_holds"] = flaw is None
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {out}")


THRESHOLD = 0.48  # the refusal threshold without the check (Settings.refusal_threshold)


def _rates(
    rows: list[dict[str, Any]],
    low: float,
    high: float,
    weight: float,
    target: float,
    quote_check: bool = False,
) -> tuple[float, float]:
    """(unanswerables refused, answerables refused) under one policy (policy_qa.judge), with or
    without the quote check that may overturn a yes."""

    def refused(r: dict[str, Any]) -> bool:
        c = r["confidence"]
        if c < low or c >= high:
            return bool(c < THRESHOLD if low == high else c < low)
        if c < THRESHOLD and r.get("unknown_names"):
            return True  # a name no document mentions: the check may refuse, never answer
        if c + weight * r["p_yes"] < target:
            return True
        return quote_check and r.get("quote_holds") is False

    answerable = [refused(r) for r in rows if r["answerable"]]
    unanswerable = [refused(r) for r in rows if not r["answerable"]]
    return float(np.mean(unanswerable)), float(np.mean(answerable))


def choose(args: argparse.Namespace) -> None:
    def read(path: Path) -> list[dict[str, Any]]:
        return [json.loads(line) for line in path.read_text().splitlines() if line]

    devs = {p.stem: read(p) for p in args.dev}
    tests = {p.stem: read(p) for p in args.test}
    seen = {r["question"] for rows in devs.values() for r in rows}
    # Samples drawn with different seeds share questions: score only the unseen ones.
    tests = {
        f"{n} (unseen {sum(r['question'] not in seen for r in rows)})": [
            r for r in rows if r["question"] not in seen
        ]
        for n, rows in tests.items()
    }
    grid = []
    for low in np.arange(0.20, 0.41, 0.05):
        for high in np.arange(0.55, 0.86, 0.05):
            for weight in (0.5, 1.0, 1.5, 2.0, 3.0):
                for target in np.arange(0.6, 0.6 + 2 * weight + 0.01, 0.02):
                    cells = [_rates(rows, low, high, weight, target) for rows in devs.values()]
                    # Every dev set must keep its false refusals within the limit.
                    worst = max(f for _, f in cells)
                    refused = float(np.mean([r for r, _ in cells]))
                    grid.append(
                        (worst <= args.max_false, refused, -worst, low, high, weight, target)
                    )
    grid.sort(reverse=True)
    names = [*devs, *tests]
    heads = " | ".join(f"{n} refused / false" for n in names)
    print(f"| low | high | weight | target | {heads} |")
    print("|---|---|---|---|" + "---|" * len(names))
    for _, _, _, low, high, weight, target in grid[: args.show]:
        cells = [
            _rates(rows, low, high, weight, target) for rows in [*devs.values(), *tests.values()]
        ]
        print(
            f"| {low:.2f} | {high:.2f} | {weight:.1f} | {target:.2f} | "
            + " | ".join(f"{r:.3f} / {f:.3f}" for r, f in cells)
            + " |"
        )
    print("\nthe shipped check, then with the quote check after a yes:")
    shipped = (*BAND, WEIGHT, TARGET)
    for quote_check in (False, True):
        cells = [
            _rates(rows, *shipped, quote_check=quote_check)
            for rows in [*devs.values(), *tests.values()]
        ]
        shown = "; ".join(f"{n} {r:.3f} / {f:.3f}" for n, (r, f) in zip(names, cells, strict=True))
        print(f"  {'with' if quote_check else 'without'} the quote check: {shown}")
    print(f"\nwithout the check (threshold {THRESHOLD}):")
    cells = [_rates(rows, THRESHOLD, THRESHOLD, 0, 0) for rows in [*devs.values(), *tests.values()]]
    shown = "; ".join(f"{n} {r:.3f} / {f:.3f}" for n, (r, f) in zip(names, cells, strict=True))
    print(f"  {shown}")


def main() -> int:
    quiet_third_parties()  # offline and quiet, before any model loads
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--workdir", type=Path, required=True)
    c.add_argument("--set", default="clapnq")
    c.add_argument("--limit", type=int, default=120)
    c.add_argument("--seed", type=int, default=1)
    c.add_argument("--datasets", type=Path, default=REPO.parent / "shared" / "datasets")
    s = sub.add_parser("choose")
    s.add_argument("--dev", type=Path, nargs="+", required=True)
    s.add_argument("--test", type=Path, nargs="+", required=True)
    s.add_argument("--max-false", type=float, default=0.10)
    s.add_argument("--show", type=int, default=10)
    args = parser.parse_args()
    collect(args) if args.cmd == "collect" else choose(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
