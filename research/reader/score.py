"""Score a trained reader (``train.py``'s output) on exported candidates, beside the product.

Reads files written by ``journal_selector.py --export DIR --export-parts heldout`` and, for
each, reports:

- top-1: the reader's best candidate is an answer sentence, over the answerable questions with
  one among their candidates; on the questions ``ask`` answered, beside the product's first
  citation on the same questions;
- AUC of the reader's best score, answerable against unanswerable questions;
- the unanswerable questions the reader would refuse at the product's own rate of false
  refusals (the threshold set on the same questions: an upper bound on what it could do).

    python research/reader/score.py /work/data/reader/model /work/data/reader/heldout \\
        --limit policyqa-heldout=500
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from train import auc, load_reader, pair_text, score
from transformers import AutoTokenizer


def rate(flags: Sequence[bool]) -> str:
    return f"{sum(flags) / len(flags):.3f}" if flags else "–"


def _with_answer(q: dict[str, Any]) -> bool:
    return bool(q["answerable"]) and any(c["label"] for c in q["candidates"])


def report(
    name: str, questions: Sequence[dict[str, Any]], best: Sequence[tuple[float, int]]
) -> str:
    """One table row; ``best`` is the reader's (score, label) of its top candidate."""
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
    return (
        f"| {name} | {len(questions)} | {len(with_answer)} "
        f"| {rate([bool(best[i][1]) for i in with_answer])} "
        f"| {len(answered)} | {rate([questions[i]['product_correct'] for i in answered])} "
        f"| {rate([bool(best[i][1]) for i in answered])} "
        f"| {auc([best[i][0] for i in answerable], [best[i][0] for i in unanswerable]):.3f} "
        f"| {product_false:.3f} | {rate(product_refused)} | {refused_at_same} |"
    )


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
    for path in sorted(args.candidates.glob("*.jsonl")):
        questions = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        questions = [q for q in questions if q["candidates"]]
        if path.stem in limits and len(questions) > limits[path.stem]:
            questions = random.Random(0).sample(questions, limits[path.stem])
        pairs = [pair_text(q["question"], [], c) for q in questions for c in q["candidates"]]
        logits = score(model, tok, pairs, args.max_len)
        best, i = [], 0
        for q in questions:
            n = len(q["candidates"])
            j = int(np.argmax(logits[i : i + n]))
            best.append((float(logits[i + j]), int(q["candidates"][j]["label"])))
            i += n
        print(report(path.stem, questions, best), flush=True)


if __name__ == "__main__":
    main()
