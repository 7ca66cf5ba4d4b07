"""The packaged Qwen as the reader for every question: it reads the numbered sentences of the
top passages and names the one that answers, or 0 for none.

Reads files written by ``journal_selector.py --export DIR --export-parts tune heldout`` (the
candidates of the passages ``ask`` retrieved, and what ``ask`` answered), so retrieval is the
product's and only the reading changes. The prompt was written once and not changed after
any result (decision 070, eighth-session addendum). Reports, beside the product on the same
questions: the chosen sentence is an answer sentence (answerable questions with one among the
candidates), answerable questions refused, unanswerable questions refused, and the seconds
per question on this machine. A reply naming no listed sentence counts as a refusal.

    python research/reader/llm_reader.py /work/data/reader/jc3/daedeok-tune.jsonl
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PASSAGES = 4  # ExtractiveAnswerer.passages_considered: the sentences the answerer reads
SYSTEM = (
    "You read numbered sentences from documents and find the one sentence that answers the "
    "question. Reply with that sentence's number only. If no sentence states the answer, "
    "reply 0. Do not guess: a sentence on the same topic that does not state the answer is 0."
)


def prompt(question: str, sentences: Sequence[str]) -> list[dict[str, str]]:
    numbered = "\n".join(f"[{i}] {s}" for i, s in enumerate(sentences, 1))
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"Sentences:\n{numbered}\n\nQuestion: {question}\nNumber:"},
    ]


def rate(flags: Sequence[bool]) -> str:
    return f"{sum(flags) / len(flags):.3f} ({len(flags)})" if flags else "–"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--model", type=Path, default=None, help="GGUF (default: the Qwen)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="write each reply as JSON Lines")
    args = parser.parse_args(argv)
    from llama_cpp import Llama

    from policy_qa.config import Settings
    from policy_qa.llm import ensure_qwen_model

    path = args.model or ensure_qwen_model(Settings().model_cache)
    llm = Llama(str(path), n_ctx=4096, n_threads=args.threads, verbose=False)
    number = re.compile(r"\d+")
    if args.out:
        args.out.write_text("")  # one run's replies, every file's appended below
    for file in args.files:
        rows: list[dict[str, Any]] = []
        for line in file.read_text(encoding="utf-8").splitlines():
            q = json.loads(line)
            cands = [c for c in q["candidates"] if c["rank"] < PASSAGES]
            began = time.perf_counter()
            out: Any = llm.create_chat_completion(
                prompt(q["question"], [c["text"] for c in cands]),  # type: ignore[arg-type]
                max_tokens=6,
                temperature=0.0,
            )
            seconds = time.perf_counter() - began
            reply = out["choices"][0]["message"]["content"] or ""
            found = number.search(reply)
            pick = int(found.group()) if found else 0
            chosen = cands[pick - 1] if 0 < pick <= len(cands) else None
            rows.append(
                {
                    "id": q["id"],
                    "answerable": q["answerable"],
                    "with_answer": q["answerable"] and any(c["label"] for c in cands),
                    "refused": chosen is None,
                    "right": bool(chosen and chosen["label"]),
                    "product_answered": q["answered"],
                    "product_right": q["product_correct"],
                    "reply": reply,
                    "seconds": round(seconds, 2),
                    "prompt_tokens": out["usage"]["prompt_tokens"],
                }
            )
        if args.out:
            with args.out.open("a", encoding="utf-8") as sink:
                sink.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        answerable = [r for r in rows if r["answerable"]]
        unanswerable = [r for r in rows if not r["answerable"]]
        with_answer = [r for r in rows if r["with_answer"]]
        secs = sorted(r["seconds"] for r in rows)
        print(f"\n{file.stem}: {len(rows)} questions")
        print(
            "| reader | right (answer among candidates) | answerable refused "
            "| unanswerable refused |"
        )
        print("|---|---|---|---|")
        print(
            f"| Qwen reads every question | {rate([r['right'] for r in with_answer])} "
            f"| {rate([r['refused'] for r in answerable])} "
            f"| {rate([r['refused'] for r in unanswerable])} |"
        )
        print(
            f"| product (its first citation) | {rate([r['product_right'] for r in with_answer])} "
            f"| {rate([not r['product_answered'] for r in answerable])} "
            f"| {rate([not r['product_answered'] for r in unanswerable])} |"
        )
        print(
            f"Qwen seconds per question: p50 {secs[len(secs) // 2]:.2f}, "
            f"p95 {secs[int(len(secs) * 0.95)]:.2f}; prompt tokens mean "
            f"{sum(r['prompt_tokens'] for r in rows) / len(rows):.0f}"
        )


if __name__ == "__main__":
    main()
