"""Score labelled candidates with one reader and print what it would decide.

For each question: the top-scoring candidate (is it an answer sentence?) and the best score
(answerable against unanswerable: AUC, and the refusal rates at a few thresholds). Reads the
tune parts' candidates only (``candidates.py``); ``--ids`` restricts to a list of question ids
(e.g. a training run's dev questions).

    python research/reader/analyze.py /work/data/reader/candidates --reader /work/data/reader/ce
    python research/reader/analyze.py /work/data/reader/candidates --reader use
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from policy_qa.config import quiet_third_parties


def bi_encoder_scores(name: str, questions: Sequence[dict[str, Any]]) -> list[np.ndarray]:
    from policy_qa.embeddings import encode, load_embeddings

    model = load_embeddings(name)
    texts = list(
        dict.fromkeys(
            [q["question"] for q in questions]
            + [c["text"] for q in questions for c in q["candidates"]]
        )
    )
    vectors = encode(model, texts)
    row = {t: i for i, t in enumerate(texts)}
    out = []
    for q in questions:
        qv = vectors[row[q["question"]]]
        out.append(np.array([vectors[row[c["text"]]] @ qv for c in q["candidates"]]))
    return out


def cross_encoder_scores(folder: Path, questions: Sequence[dict[str, Any]]) -> list[np.ndarray]:
    import torch
    from train import pair_text
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForSequenceClassification.from_pretrained(str(folder)).eval()
    out = []
    with torch.inference_mode():
        for q in questions:
            pairs = [pair_text(q["question"], q.get("history", []), c) for c in q["candidates"]]
            if not pairs:
                out.append(np.zeros(0))
                continue
            enc = tok(
                [a for a, _ in pairs],
                [b for _, b in pairs],
                truncation="longest_first",
                max_length=160,
                padding=True,
                return_tensors="pt",
            )
            out.append(torch.sigmoid(model(**enc).logits.squeeze(-1)).numpy().reshape(-1))
    return out


def auc(pos: Sequence[float], neg: Sequence[float]) -> float:
    if not pos or not neg:
        return float("nan")
    p = np.asarray(pos)[:, None]
    n = np.asarray(neg)[None, :]
    return float(((p > n).sum() + 0.5 * (p == n).sum()) / (p.size * n.size))


def report(questions: Sequence[dict[str, Any]], scores: Sequence[np.ndarray]) -> None:
    by_set: dict[str, list[int]] = {}
    for i, q in enumerate(questions):
        by_set.setdefault(q["set"], []).append(i)
    for name, idx in sorted(by_set.items()):
        top1, best_ans, best_un = [], [], []
        for i in idx:
            q, s = questions[i], scores[i]
            if not len(s):
                continue
            labels = [c["label"] for c in q["candidates"]]
            if q["answerable"]:
                best_ans.append(float(s.max()))
                if any(labels):
                    top1.append(labels[int(s.argmax())])
            else:
                best_un.append(float(s.max()))
        line = f"{name:16s} n={len(idx):5d} top1={np.mean(top1) if top1 else float('nan'):.3f}"
        line += f" (of {len(top1)})"
        if best_un:
            line += f" auc={auc(best_ans, best_un):.3f}"
            for t in np.quantile(best_un, [0.5, 0.7, 0.8, 0.9]):
                refused = np.mean(np.asarray(best_un) < t)
                false = np.mean(np.asarray(best_ans) < t)
                line += f" | t={t:.3f}: {refused:.2f}/{false:.2f}"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("candidates", type=Path)
    parser.add_argument("--reader", required=True, help="minilm, use, or a cross-encoder folder")
    parser.add_argument("--sets", nargs="*", default=None)
    parser.add_argument("--ids", type=Path, default=None, help="a training.json: its dev groups")
    parser.add_argument("--lang", default=None)
    args = parser.parse_args()
    quiet_third_parties()
    from train import read  # the candidates' format is train.py's

    questions = read(args.candidates, args.sets)
    if args.ids:
        groups = set(json.loads(args.ids.read_text())["dev_groups"])

        def group(q: dict[str, Any]) -> str:
            src = q.get("source") or ""
            return f"{q['set']}:{src.split('/')[0] if '/' in src else q['id'].split('#')[0]}"

        questions = [q for q in questions if group(q) in groups]
    if args.lang:
        questions = [q for q in questions if q["lang"] == args.lang]
    if args.reader in ("minilm", "use"):
        scores = bi_encoder_scores(args.reader, questions)
    else:
        scores = cross_encoder_scores(Path(args.reader), questions)
    report(questions, scores)


if __name__ == "__main__":
    main()
