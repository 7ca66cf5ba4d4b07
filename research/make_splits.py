"""Freeze the tune / held-out split of every labelled set (eval/splits.json).

Run once, before any tuning; the file is committed and never regenerated for a set that
already has a split. PolicyQA is split by policy and KorQuAD by article (their questions share
documents), CLAP NQ by question (each question carries its own passage), stratified by
answerability. The bundled Daedeok set is the tune part; eval/daedeok-heldout.jsonl, written
from the article alone, is its held-out part.

    python research/make_splits.py --datasets-dir ../shared/datasets --out eval/splits.json
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

SEED = 20261205  # the day the split was frozen


def _halves(items: list[str], rng: random.Random) -> tuple[list[str], list[str]]:
    shuffled = sorted(items)
    rng.shuffle(shuffled)
    half = len(shuffled) // 2
    return sorted(shuffled[:half]), sorted(shuffled[half:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets-dir", type=Path, default=Path("../shared/datasets"))
    parser.add_argument("--out", type=Path, default=Path("eval/splits.json"))
    args = parser.parse_args()
    root = args.datasets_dir
    rng = random.Random(SEED)

    policies = [d["title"] for d in json.loads((root / "policyqa/dev.json").read_text())["data"]]
    articles = [
        d["title"]
        for d in json.loads((root / "korquad1/KorQuAD_v1.0_dev.json").read_text())["data"]
    ]
    clap: dict[str, list[str]] = {}
    for kind in ("answerable", "unanswerable"):
        path = root / f"clapnq/clapnq_dev_{kind}.jsonl"
        clap[kind] = [json.loads(line)["id"] for line in path.read_text().splitlines() if line]

    p_tune, p_held = _halves(policies, rng)
    k_tune, k_held = _halves(articles, rng)
    c_parts = {kind: _halves(ids, rng) for kind, ids in clap.items()}
    splits = {
        "seed": SEED,
        "note": "Frozen before any tuning. Tune on 'tune' only; report 'heldout' beside it.",
        "daedeok": {"tune": "eval/daedeok.jsonl", "heldout": "eval/daedeok-heldout.jsonl"},
        "policyqa": {"by": "policy (data[].title)", "tune": p_tune, "heldout": p_held},
        "korquad": {"by": "article (data[].title)", "tune": k_tune, "heldout": k_held},
        "clapnq": {
            "by": "question id, stratified by answerability",
            "tune": sorted(c_parts["answerable"][0] + c_parts["unanswerable"][0]),
            "heldout": sorted(c_parts["answerable"][1] + c_parts["unanswerable"][1]),
        },
    }
    args.out.write_text(json.dumps(splits, ensure_ascii=False, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
