"""English questions over Korean documents: retrieval Recall@1/@5 and MRR@10, for comparing
indexes built by two versions of policy-qa (docs/decisions/100-indexing-profile-and-speed.md,
"Korean, sixth session").

    python research/en_over_ko_retrieval.py translate --workdir W [--questions 150 --seed 0]
    python research/en_over_ko_retrieval.py score --workdir W --label before   # one checkout
    python research/en_over_ko_retrieval.py score --workdir W --label after    # the other
    python research/en_over_ko_retrieval.py compare --workdir W before after

No labelled set has English questions whose answers are in Korean documents, so this makes one:
the corpus is the Korean indexing benchmark's (KorQuAD 1.0 dev articles in file order up to
~219,000 characters, as ``benchmarks/bench_indexing.py`` builds it, read in place from the
shared datasets and written to ``W/corpus``); ``--questions`` of the dev questions about those
articles are drawn with ``--seed`` and translated to English by the packaged Qwen through the
product's own translator (``translate.to_english``, in the check's worker; no names offered, as
an English reader would ask). The translations are cached in ``W/translations.json``, never in
the repository. ``score`` indexes the corpus with whichever policy-qa is on ``PYTHONPATH``
(chunk-level ranking: passage windows off) and ranks every translated question and its Korean
original; the gold is the chunk holding the answer span. It writes ``W/<label>.json``, which
``compare`` reads.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

from policy_qa import Assistant, Settings
from policy_qa.config import quiet_third_parties
from policy_qa.embeddings import encode
from policy_qa.evaluation import metrics as M

REPO = Path(__file__).resolve().parents[1]
DATASETS = REPO.parent / "shared" / "datasets"
CHARS = 219_000  # what benchmarks/bench_indexing.py takes for its Korean corpus
DEPTH = 10


def korean_articles(datasets: Path) -> list[dict[str, Any]]:
    """KorQuAD 1.0 dev articles in file order up to ~``CHARS`` characters, as the indexing
    benchmark takes them (its ``korean_articles``; a file per title)."""
    path = datasets / "korquad1" / "KorQuAD_v1.0_dev.json"
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    out: list[dict[str, Any]] = []
    total = 0
    for article in data:
        text = "\n\n".join(p["context"] for p in article["paragraphs"])
        if total >= CHARS:
            break
        out.append(article)
        total += len(text)
    return out


def source_name(title: str) -> str:
    """The file name the indexing benchmark gives an article (its ``_take``)."""
    return "".join(ch if ch.isalnum() else "_" for ch in title)[:60] + ".txt"


def write_corpus(articles: list[dict[str, Any]], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for a in articles:
        text = "\n\n".join(p["context"] for p in a["paragraphs"])
        (folder / source_name(a["title"])).write_text(text, encoding="utf-8")
    return folder


def questions(articles: list[dict[str, Any]], n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` dev questions about ``articles``, drawn with ``seed``: id, source, question, the
    answer and the paragraph it is in."""
    every = [
        {
            "id": qa["id"],
            "source": source_name(a["title"]),
            "question": qa["question"],
            "answer": qa["answers"][0]["text"],
            "answer_start": qa["answers"][0]["answer_start"],
            "context": p["context"],
        }
        for a in articles
        for p in a["paragraphs"]
        for qa in p["qas"]
    ]
    return random.Random(seed).sample(every, min(n, len(every)))


def translate(workdir: Path, datasets: Path, n: int, seed: int) -> None:
    from policy_qa.judge import AnswerabilityJudge
    from policy_qa.llm import resolve_gguf_path
    from policy_qa.translate import to_english

    workdir.mkdir(parents=True, exist_ok=True)
    cache_path = workdir / "translations.json"
    cache = json.loads(cache_path.read_text(encoding="utf-8")) if cache_path.exists() else {}
    picked = questions(korean_articles(datasets), n, seed)
    judge = AnswerabilityJudge(resolve_gguf_path(Settings()), timeout=180.0)
    began = time.perf_counter()
    try:
        for i, q in enumerate(picked):
            if q["id"] in cache:
                continue
            cache[q["id"]] = to_english(q["question"], [], judge.reply)
            cache_path.write_text(json.dumps(cache, ensure_ascii=False, indent=1), "utf-8")
            print(f"{i + 1}/{len(picked)} {q['question']} -> {cache[q['id']]}", flush=True)
    finally:
        judge.pool.close()
    done = sum(1 for q in picked if cache.get(q["id"]))
    print(f"{done}/{len(picked)} translated in {time.perf_counter() - began:.0f} s")


def _gold(text: str, q: dict[str, Any]) -> M.Span | None:
    """Where the answer stands in the stored text of its document."""
    para = text.find(q["context"])
    if para >= 0:
        start = para + q["answer_start"]
        return M.Span(q["source"], start, start + len(q["answer"]))
    # Cleaning changed the paragraph: find the answer with the words around it.
    a = q["answer_start"]
    around = q["context"][max(0, a - 30) : a + len(q["answer"]) + 30]
    where = M.locate(around, text)
    if where is None:
        return None
    offset = where[0] + (a - max(0, a - 30))
    return M.Span(q["source"], offset, offset + len(q["answer"]))


def score(workdir: Path, datasets: Path, label: str, n: int, seed: int) -> None:
    quiet_third_parties()
    articles = korean_articles(datasets)
    corpus = write_corpus(articles, workdir / "corpus")
    translations = json.loads((workdir / "translations.json").read_text(encoding="utf-8"))
    picked = [q for q in questions(articles, n, seed) if translations.get(q["id"])]
    settings = Settings(data_dir=workdir / f"index-{label}", window_chars=0, judge="off")
    qa = Assistant(settings=settings)
    began = time.perf_counter()
    report = qa.index([corpus])
    print(f"{label}: indexed {report.chunks} chunks in {time.perf_counter() - began:.1f} s")
    retriever = qa.retriever()
    minilm = retriever.embeddings["minilm"]
    rows = []
    for q in picked:
        text = qa.document_text(q["source"])
        gold = _gold(text, q)
        if gold is None:
            continue
        row: dict[str, Any] = {"id": q["id"]}
        for lang, asked in (("en", translations[q["id"]]), ("ko", q["question"])):
            passages = retriever.search(asked, DEPTH)
            row[f"{lang}_ranked"] = [_holds(p.chunk, gold) for p in passages]
            row[f"{lang}_top"] = [f"{p.chunk.source}@{p.chunk.start}" for p in passages]
        vector = encode(minilm, [translations[q["id"]]])[0]
        hits = retriever.store.search("minilm", vector.tolist(), DEPTH)
        row["minilm_ranked"] = [_holds(c, gold) for _, c, _ in hits]
        rows.append(row)
    qa.close()
    (workdir / f"{label}.json").write_text(json.dumps(rows, ensure_ascii=False), "utf-8")
    print(f"{label}: {len(rows)} questions scored")
    _print({label: rows})


def _holds(chunk: Any, gold: M.Span) -> bool:
    return bool(chunk.source == gold.source and chunk.start <= gold.start < chunk.end)


def _metrics(flags: list[list[bool]]) -> tuple[float, float, float]:
    n = max(len(flags), 1)
    covered = [[{0} if f else set() for f in ranked] for ranked in flags]
    r1 = sum(M.recall_at_k(c, 1, 1) for c in covered) / n
    r5 = sum(M.recall_at_k(c, 1, 5) for c in covered) / n
    mrr = sum(M.mrr_at_k(c, DEPTH) for c in covered) / n
    return r1, r5, mrr


def _print(runs: dict[str, list[dict[str, Any]]]) -> None:
    print("| index | questions | ranking | Recall@1 | Recall@5 | MRR@10 |")
    print("|---|---|---|---|---|---|")
    for label, rows in runs.items():
        for key, what in (
            ("en_ranked", "English (translated): policy-qa's hybrid + reranker"),
            ("minilm_ranked", "English (translated): MiniLM's chunk vectors alone"),
            ("ko_ranked", "Korean (original): policy-qa's hybrid + reranker"),
        ):
            r1, r5, mrr = _metrics([r[key] for r in rows])
            print(f"| {label} | {len(rows)} | {what} | {r1:.3f} | {r5:.3f} | {mrr:.3f} |")


def compare(workdir: Path, labels: list[str]) -> None:
    runs = {
        lab: json.loads((workdir / f"{lab}.json").read_text(encoding="utf-8")) for lab in labels
    }
    _print(runs)
    first, *rest = labels
    base = {r["id"]: r for r in runs[first]}
    for lab in rest:
        for key in ("en_top", "ko_top"):
            changed = sum(1 for r in runs[lab] if base[r["id"]][key] != r[key])
            print(f"{lab} against {first}: {key[:2]} rankings (top {DEPTH}) changed: {changed}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("translate", "score", "compare"))
    parser.add_argument("labels", nargs="*", help="compare: the runs, the first as the base")
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--datasets", type=Path, default=DATASETS)
    parser.add_argument("--questions", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--label", default="run")
    args = parser.parse_intermixed_args()
    if args.step == "translate":
        translate(args.workdir, args.datasets, args.questions, args.seed)
    elif args.step == "score":
        score(args.workdir, args.datasets, args.label, args.questions, args.seed)
    else:
        compare(args.workdir, args.labels)
    return 0


if __name__ == "__main__":
    sys.exit(main())
