"""Probe: a learned head over multilingual USE vectors as a reader across languages.

USE places a Korean question and an English sentence in one space, but its cosine picks the
answer sentence poorly (top-1 0.14 on the bundled Korean tune questions). This fits a logistic
regression on [u_q * u_s, |u_q - u_s|, cos] from English and Korean tune candidates and scores
held-aside tune questions, the bundled Korean ones among them.

    python research/reader/use_head.py /work/data/reader/candidates
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

import numpy as np

from policy_qa.config import quiet_third_parties


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("candidates", type=Path)
    parser.add_argument("--cache", type=Path, default=Path("/work/data/reader/use-cache.npz"))
    parser.add_argument("--negatives", type=int, default=8)
    args = parser.parse_args()
    quiet_third_parties()
    from sklearn.linear_model import LogisticRegression

    questions: list[dict[str, Any]] = []
    for path in sorted(args.candidates.glob("*.jsonl")):
        questions += [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    questions = [
        q for q in questions if not q["answerable"] or any(c["label"] for c in q["candidates"])
    ]
    texts = list(
        dict.fromkeys(
            [q["question"] for q in questions]
            + [c["text"] for q in questions for c in q["candidates"]]
        )
    )
    if args.cache.exists():
        cached = np.load(args.cache, allow_pickle=True)
        known = dict(zip(cached["texts"].tolist(), cached["vectors"], strict=True))
    else:
        known = {}
    missing = [t for t in texts if t not in known]
    if missing:
        from policy_qa.embeddings import encode, load_embeddings

        vectors = encode(load_embeddings("use"), missing)
        known.update(zip(missing, vectors, strict=True))
        np.savez(args.cache, texts=np.array(list(known)), vectors=np.stack(list(known.values())))

    def features(q: dict[str, Any]) -> np.ndarray:
        u = known[q["question"]]
        s = np.stack([known[c["text"]] for c in q["candidates"]])
        cos = s @ u
        rank = np.array([c["rank"] for c in q["candidates"]], dtype=np.float32)
        return np.hstack([s * u, np.abs(s - u), cos[:, None], rank[:, None] / 6.0])

    rng = random.Random(7)
    bundled_ko = [q for q in questions if q["set"] == "daedeok" and q["lang"] == "ko"]
    rest = [q for q in questions if q not in bundled_ko]
    rng.shuffle(rest)
    dev = rest[:600] + bundled_ko
    train = rest[600:]
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    for q in train:
        f = features(q)
        labels = np.array([c["label"] for c in q["candidates"]])
        keep = np.flatnonzero(labels == 1).tolist()
        negs = np.flatnonzero(labels == 0).tolist()
        rng.shuffle(negs)
        keep += negs[: args.negatives]
        xs.append(f[keep])
        ys.append(labels[keep])
    model = LogisticRegression(max_iter=2000, C=1.0)
    model.fit(np.vstack(xs), np.concatenate(ys))

    groups: dict[str, list[tuple[float, int]]] = {}
    for q in dev:
        if not q["candidates"]:
            continue
        p = model.predict_proba(features(q))[:, 1]
        cos = features(q)[:, -2]
        got_labels = [c["label"] for c in q["candidates"]]
        key = f"{q['set']}:{q['lang']}"
        if q["answerable"] and any(got_labels):
            pick = (got_labels[int(p.argmax())], got_labels[int(cos.argmax())])
            groups.setdefault(key, []).append(pick)
    for key, got in sorted(groups.items()):
        head = np.mean([a for a, _ in got])
        base = np.mean([b for _, b in got])
        print(f"{key:22s} n={len(got):4d} head top1={head:.3f}  cosine top1={base:.3f}")


if __name__ == "__main__":
    main()
