"""BM25 alone at 100,000 chunks: build, save, load (start-up) and query times; prints a table.

    python benchmarks/bench_lexical.py [--chunks 100000] [--queries 300] [--korean kiwi bigram]

The lexical index is the part of retrieval whose cost grows with the corpus on every question
(Chroma's HNSW search grows with log n), and the part a restart must not rebuild. This builds
``policy_qa.lexical.LexicalIndex`` over ``--chunks`` chunk texts: every real passage of the
shared PolicyQA, KorQuAD and CLAP NQ sets, then perturbed copies of them (a tenth of the words
dropped, a distinct tag added) so that the vocabulary and the term matrix grow as a real corpus
would. Then it saves the index, loads it back as a restart does, rebuilds it after one
document (20 chunks) changed, reusing the saved index's chunk terms, and times English and
Korean questions from the same sets, with and without a source filter (``within``). No model
is loaded: this is the tokenizer, ``bm25s`` and numpy. Speed targets live here, not in tests.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from bench_retrieval import contexts, percentile  # benchmarks/ is on sys.path when run as a script

from policy_qa.lexical import LexicalIndex, Tokenizer

REPO = Path(__file__).resolve().parents[1]
T = TypeVar("T")


def corpus(datasets: Path, n: int, seed: int) -> tuple[list[tuple[str, str, str]], list, list]:
    """``n`` (chunk id, source, text) rows: the real passages first, then perturbed copies."""
    texts, english, korean = contexts(datasets)
    rng = random.Random(seed)
    rows = [(f"c{i}", source, text) for i, (source, text) in enumerate(texts[:n])]
    while len(rows) < n:
        source, text = texts[rng.randrange(len(texts))]
        words = [w for w in text.split() if rng.random() > 0.1]
        i = len(rows)
        rows.append((f"c{i}", f"copy{i // 20}/{source}", " ".join(words) + f" tag{i}"))
    return rows, english, korean


def timed(fn: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[float, T]:
    """Seconds one call of ``fn`` took, and what it returned."""
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - start, out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--korean", nargs="+", default=["kiwi", "bigram"])
    parser.add_argument("--datasets", type=Path, default=REPO.parent / "shared" / "datasets")
    parser.add_argument("--out", type=Path, default=REPO / "bench-out" / "lexical.json")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()

    rows, english, korean = corpus(args.datasets, args.chunks, args.seed)
    rng = random.Random(args.seed)
    english = rng.sample(english, min(args.queries, len(english)))
    korean = rng.sample(korean, min(args.queries, len(korean)))
    sources = sorted({source for _, source, _ in rows})
    within = rng.sample(sources, 50)  # a "within" prefix that matches 50 documents
    ko_share = sum(any("\uac00" <= ch <= "\ud7a3" for ch in t[:50]) for _, _, t in rows) / len(rows)
    print(f"{len(rows):,} chunks from {len(sources):,} sources, {ko_share:.0%} Korean text")

    results = []
    for korean_tok in args.korean:
        tokenizer = Tokenizer(korean=korean_tok)
        build_s, index = timed(LexicalIndex.build, rows, tokenizer, "bench")
        assert isinstance(index, LexicalIndex)
        with tempfile.TemporaryDirectory() as tmp:
            save_s, _ = timed(index.save, Path(tmp))
            size = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file())
            load_s, loaded = timed(
                LexicalIndex.load, Path(tmp), Tokenizer(korean=korean_tok), "bench"
            )
            assert isinstance(loaded, LexicalIndex) and len(loaded) == len(rows)
            # One document of 20 chunks replaced; the saved index lends the others' terms.
            changed = rows[:-20] + [
                (f"new{i}", "changed/doc.txt", f"{text} revised")
                for i, (_, _, text) in enumerate(rows[-20:])
            ]
            rebuild_s, _ = timed(LexicalIndex.build, changed, tokenizer, "bench2", loaded)
        row = {
            "korean_tokenizer": korean_tok,
            "chunks": len(rows),
            "vocabulary": len(loaded.doc_freq),
            "build_s": build_s,
            "save_s": save_s,
            "load_s": load_s,
            "rebuild_one_changed_s": rebuild_s,
            "disk_mb": size / 1e6,
        }
        for label, questions, filt in (
            ("english", english, None),
            ("korean", korean, None),
            ("english_within", english, within),
        ):
            times = []
            for q in questions:
                start = time.perf_counter()
                loaded.search(q, 30, filt)
                times.append((time.perf_counter() - start) * 1000)
            row[f"{label}_p50_ms"] = percentile(times, 50)
            row[f"{label}_p95_ms"] = percentile(times, 95)
        results.append(row)
        print(json.dumps(row), flush=True)

    print(
        f"\nBM25 (bm25s) over {len(rows):,} chunks, {len(english)} English / {len(korean)} Korean"
    )
    print("questions, top 30; times in ms unless marked\n")
    print(
        "| Korean tokenizer | build | save | load (start-up) | rebuild, 1 doc changed "
        "| on disk | English p50 / p95 "
        "| Korean p50 / p95 | English within 50 docs p50 / p95 |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['korean_tokenizer']} | {r['build_s']:.0f} s | {r['save_s']:.1f} s "
            f"| {r['load_s']:.1f} s | {r['rebuild_one_changed_s']:.0f} s | {r['disk_mb']:.0f} MB "
            f"| {r['english_p50_ms']:.1f} / {r['english_p95_ms']:.1f} "
            f"| {r['korean_p50_ms']:.1f} / {r['korean_p95_ms']:.1f} "
            f"| {r['english_within_p50_ms']:.1f} / {r['english_within_p95_ms']:.1f} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
