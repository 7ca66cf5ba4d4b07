"""Score a trained reader (``train.py``'s output) on exported candidates, beside the product.

Reads files written by ``journal_selector.py --export DIR --export-parts tune heldout`` and,
for each, reports:

- top-1: the reader's best candidate is an answer sentence, over the answerable questions with
  one among their candidates; on the questions ``ask`` answered, beside the product's first
  citation on the same questions;
- AUC of the reader's best score, answerable against unanswerable questions;
- the unanswerable questions the reader would refuse at the product's own rate of false
  refusals (the threshold set on the same questions: an upper bound on what it could do).

Then two combinations with the product: the *switch* (the reader's sentence replaces the
product's when it scores more than δ higher; δ chosen on the ``-tune`` files, which are the
reader's own training questions, so the choice leans toward trusting it) and the *gate*
(refuse an answer whose best candidate scores under τ), printed as a curve with no τ chosen.

    python research/reader/score.py /work/data/reader/model /work/data/reader/candidates \\
        --limit policyqa-tune=300 policyqa-heldout=500
"""

from __future__ import annotations

import argparse
import json
import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from journal_selector import rate
from train import auc, load_reader, question_logits
from transformers import AutoTokenizer

Scored = list[tuple[dict[str, Any], np.ndarray]]  # each question with its candidates' logits
# Logit margins, from "the reader whenever it prefers another sentence" (0) to "never" (inf).
DELTAS = (0.0, 1.0, 2.0, 3.0, 4.0, 6.0, math.inf)


def _with_answer(q: dict[str, Any]) -> bool:
    return bool(q["answerable"]) and any(c["label"] for c in q["candidates"])


def report(name: str, items: Scored) -> str:
    """One table row."""
    questions = [q for q, _ in items]
    # The reader's (score, label) of its top candidate, per question.
    best = [(float(lg.max()), int(q["candidates"][int(np.argmax(lg))]["label"])) for q, lg in items]
    with_answer = [i for i, q in enumerate(questions) if _with_answer(q)]
    answered = [i for i in with_answer if questions[i]["answered"]]
    answerable = [i for i, q in enumerate(questions) if q["answerable"]]
    unanswerable = [i for i, q in enumerate(questions) if not q["answerable"]]
    product_false = sum(not questions[i]["answered"] for i in answerable) / max(1, len(answerable))
    product_refused = [not questions[i]["answered"] for i in unanswerable]
    refused_at_same = "–"
    if unanswerable and answerable:
        # The threshold that refuses the product's share of answerable questions.
        cut = float(np.quantile([best[i][0] for i in answerable], product_false))
        refused_at_same = rate([best[i][0] < cut for i in unanswerable])
    separation = auc([best[i][0] for i in answerable], [best[i][0] for i in unanswerable])
    separation_text = "–" if math.isnan(separation) else f"{separation:.3f}"
    return (
        f"| {name} | {len(questions)} | {len(with_answer)} "
        f"| {rate([bool(best[i][1]) for i in with_answer])} "
        f"| {len(answered)} | {rate([questions[i]['product_correct'] for i in answered])} "
        f"| {rate([bool(best[i][1]) for i in answered])} "
        f"| {separation_text} "
        f"| {product_false:.3f} | {rate(product_refused)} | {refused_at_same} |"
    )


def _product_pick(q: dict[str, Any]) -> int | None:
    quote = q.get("product_quote") or ""
    return next((j for j, c in enumerate(q["candidates"]) if c["text"] == quote), None)


def switched(items: Scored, delta: float) -> list[bool]:
    """Answered questions with an answer sentence: is the first citation right when the
    reader's best candidate replaces the product's whenever it scores ``delta`` higher?"""
    out = []
    for q, logits in items:
        pick = _product_pick(q)
        if not q["answered"] or pick is None or not _with_answer(q):
            continue
        top = int(np.argmax(logits))
        if logits[top] - logits[pick] > delta:
            pick = top
        out.append(bool(q["candidates"][pick]["label"]))
    return out


def gated(items: Scored, tau: float) -> tuple[float, float]:
    """(unanswerable refused, answerable refused) when the product's answers whose best
    candidate the reader scores under ``tau`` are refused too."""
    refused: dict[bool, list[bool]] = {True: [], False: []}
    for q, logits in items:
        refused[bool(q["answerable"])].append(not q["answered"] or float(logits.max()) < tau)
    return (
        sum(refused[False]) / max(1, len(refused[False])),
        sum(refused[True]) / max(1, len(refused[True])),
    )


def combined(scored: dict[str, Scored]) -> None:
    """The reader beside the product's rules: a switch margin chosen on the tune files (each
    set weighing the same), then every file at that margin; refusal gates as curves."""
    tune = [k for k in scored if k.endswith("-tune")]

    def pooled(delta: float) -> float:
        rates = [np.mean(switched(scored[k], delta) or [False]) for k in tune]
        return float(np.mean(rates))

    chosen = max(DELTAS, key=pooled) if tune else math.inf
    print(
        f"\nswitch to the reader's sentence when it scores > delta higher (delta chosen on "
        f"{', '.join(tune) or 'nothing'}: {chosen})"
    )
    print("| file | answered | product | " + " | ".join(f"δ={d}" for d in DELTAS) + " |")
    print("|---|---:|---:|" + "---:|" * len(DELTAS))
    for name, items in scored.items():
        runs = [switched(items, d) for d in DELTAS]  # the last, δ = inf, is the product's own
        cells = " | ".join(rate(run) for run in runs)
        print(f"| {name} | {len(runs[-1])} | {rate(runs[-1])} | {cells} |")
    print(
        "\nrefuse an answer whose best candidate the reader scores under tau "
        "(unanswerable refused / answerable refused)"
    )
    taus = (-math.inf, -4.0, -3.0, -2.0, -1.0, 0.0)
    print("| file | " + " | ".join(f"τ={t}" for t in taus) + " |")
    print("|---|" + "---|" * len(taus))
    for name, items in scored.items():
        if all(q["answerable"] for q, _ in items):
            continue
        pairs = [gated(items, t) for t in taus]
        print(f"| {name} | " + " | ".join(f"{u:.3f} / {a:.3f}" for u, a in pairs) + " |")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("candidates", type=Path)
    parser.add_argument("--limit", nargs="*", default=[], help="FILE_STEM=N questions, sampled")
    parser.add_argument("--max-len", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    limits = {k: int(v) for k, _, v in (x.partition("=") for x in args.limit)}
    tok = AutoTokenizer.from_pretrained(str(args.model))
    model = load_reader(args.model)
    print(
        "| file | questions | with an answer sentence | reader top-1 | answered | product "
        "| reader | AUC | product false refusals | product unanswerable refused "
        "| reader unanswerable refused at that rate |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    scored: dict[str, Scored] = {}
    for path in sorted(args.candidates.glob("*.jsonl")):
        questions = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        questions = [q for q in questions if q["candidates"]]
        if path.stem in limits and len(questions) > limits[path.stem]:
            questions = random.Random(0).sample(questions, limits[path.stem])
        logits = question_logits(model, tok, questions, args.max_len)
        scored[path.stem] = list(zip(questions, logits, strict=True))
        print(report(path.stem, scored[path.stem]), flush=True)
    combined(scored)


if __name__ == "__main__":
    main()
