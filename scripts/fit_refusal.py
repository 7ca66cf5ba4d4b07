"""Fit the refusal model on dev questions and check it on held-out ones.

    python scripts/calibrate_refusal.py --seed 1 --out bench-out/refusal-dev.json ...
    python scripts/calibrate_refusal.py --seed 0 --out bench-out/refusal-test.json ...
    python scripts/fit_refusal.py bench-out/refusal-dev.json bench-out/refusal-test.json

A logistic regression over the answerer's evidence features (``Evidence.features``) predicts
whether a question is answerable from what was retrieved. It is fitted on the dev rows
(seed 1), its threshold is the one that refuses the most dev unanswerables while refusing at
most ``--max-false`` of the dev answerables, and it is then scored on the test rows (seed 0)
next to the hand-built confidence it replaces. It prints the coefficients to paste into
``policy_qa.answer`` (scikit-learn is needed here only, never at run time).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def load(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))


def matrix(rows: list[dict], names: list[str]) -> np.ndarray:
    return np.array([[float(r["features"].get(n, 0.0)) for n in names] for r in rows])


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    if not len(pos) or not len(neg):
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).mean()
    ties = (pos[:, None] == neg[None, :]).mean()
    return float(greater + 0.5 * ties)


def table(rows: list[dict], scores: np.ndarray, threshold: float, label: str) -> None:
    print(f"\n{label} (threshold {threshold:.3f})")
    print("| set | n answerable | false refusals | n unanswerable | refused | AUC |")
    print("|---|---|---|---|---|---|")
    for name in sorted({r["set"] for r in rows}):
        idx = [i for i, r in enumerate(rows) if r["set"] == name]
        ans = np.array([scores[i] for i in idx if rows[i]["answerable"]])
        una = np.array([scores[i] for i in idx if not rows[i]["answerable"]])
        fr = (ans < threshold).mean() if len(ans) else float("nan")
        rr = (una < threshold).mean() if len(una) else float("nan")
        print(f"| {name} | {len(ans)} | {fr:.3f} | {len(una)} | {rr:.3f} | {auc(ans, una):.3f} |")


def choose(rows: list[dict], scores: np.ndarray, max_false: float) -> float:
    """The highest threshold whose false-refusal rate stays within ``max_false`` on every set
    that has unanswerable questions (so that a set with many easy answerables cannot buy
    slack for one with hard ones)."""
    sets = sorted({r["set"] for r in rows if not r["answerable"]})
    best = float(scores.min())
    for t in np.unique(scores):
        ok = True
        for name in sets:
            ans = np.array(
                [
                    s
                    for s, r in zip(scores, rows, strict=True)
                    if r["set"] == name and r["answerable"]
                ]
            )
            if len(ans) and (ans < t).mean() > max_false:
                ok = False
                break
        if ok:
            best = float(t)
    return best


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("dev", type=Path)
    parser.add_argument("test", type=Path)
    parser.add_argument("--max-false", type=float, default=0.10)
    parser.add_argument("--C", type=float, default=1.0)
    args = parser.parse_args()
    from sklearn.linear_model import LogisticRegression

    dev, test = load(args.dev), load(args.test)
    # Seeds sample the same dev files, so the two samples can share questions: a question
    # the model was fitted on says nothing about how it generalises.
    seen = {(r["set"], r["id"]) for r in dev if r["set"] != "daedeok"}
    test = [r for r in test if (r["set"], r["id"]) not in seen]
    names = sorted(dev[0]["features"])
    x_dev, x_test = matrix(dev, names), matrix(test, names)
    y_dev = np.array([r["answerable"] for r in dev], dtype=int)
    # Each set counts the same, whatever its size: PolicyQA's many answerables must not
    # teach the model that every question is answerable.
    weights = np.ones(len(dev))
    for name in {r["set"] for r in dev}:
        for label in (0, 1):
            idx = [i for i, r in enumerate(dev) if r["set"] == name and y_dev[i] == label]
            if idx:
                weights[idx] = 1.0 / len(idx)
    weights *= len(dev) / weights.sum()
    model = LogisticRegression(C=args.C, max_iter=5000)
    model.fit(x_dev, y_dev, sample_weight=weights)
    p_dev = model.predict_proba(x_dev)[:, 1]
    p_test = model.predict_proba(x_test)[:, 1]
    threshold = choose(dev, p_dev, args.max_false)
    old_dev = np.array([r["confidence"] for r in dev])
    old_test = np.array([r["confidence"] for r in test])
    old_threshold = 0.48
    table(dev, old_dev, old_threshold, "dev, current confidence")
    table(dev, p_dev, threshold, "dev, fitted model")
    table(test, old_test, old_threshold, "test, current confidence")
    table(test, p_test, threshold, "test, fitted model")
    print("\nREFUSAL_MODEL = {")
    for n, c in zip(names, model.coef_[0], strict=True):
        print(f'    "{n}": {c:.4f},')
    print("}")
    print(f"REFUSAL_BIAS = {model.intercept_[0]:.4f}")
    print(f"threshold = {threshold:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
