"""Scale: index time, disk, memory, cold start and warm answers at 1,000 to 100,000 chunks.

    python benchmarks/scale.py [--sizes 1000,10000,100000] [--real 1000] [--queries 100]
    python benchmarks/scale.py --quick      # 1,000 chunks, 300 of them real (for make bench)

``--quick`` is bounded by embedding its 300 real chunks: about 80 s at the 3.7 chunks/s that
bench_retrieval.py measured on two idle cores, many times that on busy ones.

The full run grows one index to each size in ``--sizes`` and measures it there; past the real
chunks' embedding, most of its time is Chroma writing the 100,000-chunk index (chunks and their
sentences, for both models) and BM25 building over it (Kiwi: 424 s at 100,000 chunks in
bench_lexical.py). Run it under ``nice -n 10`` on a shared machine.

``--real`` chunks of real text (PolicyQA and KorQuAD articles, CLAP NQ
passages, from the shared sets, each set in turn; never copied into the repository) are written
to files and indexed for real by ``index_paths``, as ``policy-qa index`` does (both models side
by side, chunks and sentences), which measures indexing throughput; the rest are
copies of them under other sources, their vectors slightly perturbed, as
benchmarks/bench_retrieval.py builds its large indexes: embedding 100,000 chunks for real would
take about eight hours at 3.7 chunks/s. The index-time column therefore says what it is: the
real chunks' indexing, then the copies' writes (Chroma and BM25), and the time indexing that
many real chunks would take at the measured throughput. Copies share their texts, so BM25's
vocabulary does not grow with them (benchmarks/bench_lexical.py measures that at 100,000).

At each size:
- disk: the index folder (Chroma, and the saved BM25 index);
- cold start: ``policy-qa ask QUESTION --judge off`` as a whole process, process start to
  answer, the median of ``--cold-runs``, and its peak RSS;
- warm: a fresh process opens the index, answers an English and a Korean question untimed
  (as ``policy-qa serve`` warms up), then times ``Assistant.ask`` (retrieval and the
  extractive answer, the check off) for English and Korean questions from the shared sets,
  and PolicyQA's questions about the real PolicyQA documents ``within`` those documents (the
  sources are read from the BM25 index, decision 012); its peak RSS is the memory column.
Peak RSS is each child's own: it is spawned from a small launcher, not from this process.
The load average is printed beside every size: other work shares the cores. A size is skipped
when the disk would not keep 2 GB free after it (estimated from the size before). Prints a
table and writes JSON (``--out``). Speed targets (docs/decisions/104-scale.md) live here, not
in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from bench_retrieval import contexts, percentile  # benchmarks/ is on sys.path when run as a script

from policy_qa import Assistant, Settings
from policy_qa.chroma_store import ChromaStore
from policy_qa.config import quiet_third_parties
from policy_qa.embeddings import load_embeddings
from policy_qa.indexing import index_paths
from policy_qa.ingest import chunk_document
from policy_qa.store import DocumentItem, SentenceVectors
from policy_qa.types import Chunk, Document

REPO = Path(__file__).resolve().parents[1]
KEEP_FREE = 2 * 1024**3  # bytes of disk a size must leave free, or it is skipped
WRITE_BATCH = 500  # documents per Chroma write
WITHIN = "policyqa/"  # the real PolicyQA documents; copies live under copyK/
_SET_ORDER = ("policyqa", "korquad", "clapnq")  # real_documents takes one of each in turn
WARM_QUESTIONS = ("What does this policy cover?", "이 정책은 무엇을 다룹니까?")  # untimed


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def jittered(vectors: np.ndarray, noise: np.random.Generator) -> np.ndarray:
    """Unit vectors near ``vectors``: a copy's, close to its original's but not the same."""
    moved = vectors + noise.normal(0, 0.02, vectors.shape).astype(np.float32)
    return moved / np.linalg.norm(moved, axis=1, keepdims=True)


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


# Runs a command and writes its wall time and peak RSS to a file. A child's ``ru_maxrss``
# starts from its parent's RSS at the fork (Linux keeps the high-water mark across ``exec``), so
# measured straight from this process, every child "peaked" at this process's own 1.6-2.2 GB
# (the models, Chroma, the corpus's vectors): the cold-RSS column of decision 104. Spawned from
# this small launcher (~10 MB), a child's peak is its own.
_LAUNCHER = """
import json, os, subprocess, sys, time
began = time.perf_counter()
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
seconds = time.perf_counter() - began
code = os.waitstatus_to_exitcode(status)
with open(sys.argv[1], "w") as f:
    cpu = usage.ru_utime + usage.ru_stime
    json.dump({"seconds": seconds, "cpu": cpu, "maxrss_kb": usage.ru_maxrss, "code": code}, f)
"""


def timed_child(cmd: list[str]) -> tuple[float, float, int, str]:
    """Wall seconds, CPU seconds, peak RSS in bytes and stdout of ``cmd``."""
    env = {**os.environ, "POLICY_QA_JUDGE": "off"}
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.TemporaryDirectory() as tmp,
    ):
        report = Path(tmp) / "usage.json"
        launcher = [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(report)]
        subprocess.run([*launcher, *cmd], stdout=out, stderr=err, env=env, check=True)
        usage = json.loads(report.read_text(encoding="utf-8"))
        out.seek(0)
        err.seek(0)
        if usage["code"]:
            raise RuntimeError(
                f"{' '.join(cmd[:4])} failed ({usage['code']}): {err.read().decode()[-2000:]}"
            )
        return usage["seconds"], usage["cpu"], usage["maxrss_kb"] * 1024, out.read().decode()


def policy_qa_command() -> list[str]:
    script = Path(sys.executable).with_name("policy-qa")
    return [str(script)] if script.exists() else [sys.executable, "-m", "policy_qa"]


def real_documents(
    texts: list[tuple[str, str]], settings: Settings, real: int
) -> list[tuple[Document, list[Chunk]]]:
    """Whole documents, chunked, until they hold at least ``real`` chunks, taken from each set
    in turn (PolicyQA, KorQuAD, CLAP NQ) so that every set is in the index: CLAP NQ's 300
    passages outnumber PolicyQA's 20 articles, and a plain shuffle once left no PolicyQA
    document in a 235-chunk sample, which made the ``within`` row time an empty restriction."""
    by_set: dict[str, list[tuple[str, str]]] = {}
    for source, text in texts:
        by_set.setdefault(source.split("/")[0], []).append((source, text))
    turns = [iter(by_set[name]) for name in sorted(by_set, key=_SET_ORDER.index)]
    docs: list[tuple[Document, list[Chunk]]] = []
    count = 0
    while turns and count < real:
        for turn in list(turns):
            picked = next(turn, None)
            if picked is None:
                turns.remove(turn)
                continue
            source, text = picked
            title = source.split("/")[1].removesuffix(".txt")
            doc = Document(source=source, title=title, text=text.strip())
            chunks = chunk_document(doc, settings.chunk_size, settings.chunk_min)
            docs.append((doc, chunks))
            count += len(chunks)
            if count >= real:
                break
    return docs


def within_questions(datasets: Path, docs: list[tuple[Document, list[Chunk]]]) -> list[str]:
    """The PolicyQA questions about the PolicyQA documents in the index (what a user
    restricting a question to those documents would ask), one per paragraph."""
    sources = {doc.source for doc, _ in docs}
    policy = json.loads((datasets / "policyqa" / "dev.json").read_text(encoding="utf-8"))
    return [
        para["qas"][0]["question"]
        for article in policy["data"]
        if f"{WITHIN}{article['title']}.txt" in sources
        for para in article["paragraphs"]
        if para["qas"]
    ]


class Recording(ChromaStore):
    """A ``ChromaStore`` that keeps what is written while ``recording``: the real documents'
    chunks and vectors as indexing made them, for the copies."""

    recording = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.writes: list[tuple[list[DocumentItem], SentenceVectors]] = []

    def write_documents(
        self, items: Sequence[DocumentItem], sentences: SentenceVectors | None = None
    ) -> None:
        if self.recording and sentences is not None:
            self.writes.append((list(items), sentences))
        super().write_documents(items, sentences)


class Corpus:
    """The real documents, indexed for real, then copies of them (``copyK/`` sources,
    perturbed vectors) until the store holds a given size.

    The real documents are written to files and indexed by ``index_paths``, as
    ``policy-qa index`` does (the models side by side, MiniLM's sentence vectors for English
    chunks only: docs/decisions/100-indexing-profile-and-speed.md); the store records what it
    wrote, and the copies reuse those vectors.
    """

    def __init__(
        self,
        docs: list[tuple[Document, list[Chunk]]],
        store: Recording,
        models: dict[str, Any],
        settings: Settings,
        folder: Path,
    ) -> None:
        for doc, _ in docs:
            path = folder / doc.source
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(doc.text, encoding="utf-8")
        began = time.perf_counter()
        index_paths(
            store,
            models,
            [folder],
            chunk_size=settings.chunk_size,
            chunk_min=settings.chunk_min,
        )
        self.embed_seconds = time.perf_counter() - began
        store.recording = False
        self.docs = [(doc, chunks) for items, _ in store.writes for doc, chunks, _, _ in items]
        self.vectors = {
            m: np.vstack([v[m] for items, _ in store.writes for _, _, v, _ in items])
            for m in models
        }
        self.spans = [span for _, s in store.writes for span in s.spans]
        # Each model's sentence rows, chunk by chunk: none for a chunk whose sentences that
        # model does not embed at index time (``SentenceVectors.skipped``).
        self.sentence_vectors: dict[str, np.ndarray] = {}
        self.sentence_rows: dict[str, list[np.ndarray]] = {}
        for m in models:
            self.sentence_vectors[m] = np.vstack([s.vectors[m] for _, s in store.writes])
            rows: list[np.ndarray] = []
            first = 0
            for _, s in store.writes:
                skipped = s.skipped.get(m, frozenset())
                for i, span in enumerate(s.spans):
                    n = 0 if i in skipped else len(span)
                    rows.append(np.arange(first, first + n))
                    first += n
            self.sentence_rows[m] = rows
        self.chunks = len(self.spans)
        self.written = self.chunks  # the originals, written by indexing
        self._items = self._copies()

    def _copies(self) -> Iterator[tuple[Any, int]]:
        """(store item, index of its first chunk among the real ones), copy after copy."""
        noise = np.random.default_rng(13)
        k = 1
        while True:
            offset = 0
            for doc, chunks in self.docs:
                n = len(chunks)
                copy = Document(source=f"copy{k}/{doc.source}", title=doc.title, text=doc.text)
                copied = [replace(c, source=copy.source) for c in chunks]
                vecs = {m: jittered(v[offset : offset + n], noise) for m, v in self.vectors.items()}
                yield (copy, copied, vecs, "bench"), offset
                offset += n
            k += 1

    def grow(self, store: ChromaStore, size: int) -> float:
        """Write copies until ``size`` chunks are written; the seconds it took."""
        began = time.perf_counter()
        while self.written < size:
            items: list[Any] = []
            real: list[int] = []  # each written chunk's index among the real ones
            while self.written < size and len(items) < WRITE_BATCH:
                item, offset = next(self._items)
                items.append(item)
                real.extend(range(offset, offset + len(item[1])))
                self.written += len(item[1])
            vectors = {}
            skipped = {}
            for m, rows in self.sentence_rows.items():
                picked = [rows[i] for i in real]
                vectors[m] = self.sentence_vectors[m][np.concatenate(picked).astype(np.intp)]
                skipped[m] = frozenset(n for n, r in enumerate(picked) if not len(r))
            spans = tuple(self.spans[i] for i in real)
            store.write_documents(items, SentenceVectors(spans, vectors, skipped))
        return time.perf_counter() - began


def warm_run(index_dir: Path, questions_file: Path) -> int:
    """The warm-query child: two untimed questions, then every question timed (ms, JSON)."""
    quiet_third_parties()
    questions = json.loads(questions_file.read_text(encoding="utf-8"))
    qa = Assistant(settings=Settings.from_env(index_dir=index_dir, judge="off"))
    # Warm both languages' paths, as `policy-qa serve` does before users come (cli._warm): the
    # models, and the Korean tokenizer, whose first load (2-10 s) would land on whichever timed
    # question first tokenizes Korean text.
    for warm in WARM_QUESTIONS:
        qa.ask(warm)
    # Wall and CPU time: on a shared machine the wall time is mostly the other jobs' doing.
    result: dict[str, dict[str, list[float]]] = {"wall": {}, "cpu": {}}
    for label, key, within in (
        ("English", "English", None),
        ("Korean", "Korean", None),
        ("English within", "Within", WITHIN),
    ):
        times, cpu = [], []
        for q in questions[key]:
            began, began_cpu = time.perf_counter(), time.process_time()
            answer = qa.ask(q, within=within)
            times.append((time.perf_counter() - began) * 1000)
            cpu.append((time.process_time() - began_cpu) * 1000)
            if within and not answer.passages:
                # An empty restriction is answered without a search: timing it says nothing.
                raise RuntimeError(f"no passage under {within!r} for {q!r}")
        result["wall"][label] = times
        result["cpu"][label] = cpu
    print(json.dumps(result))
    return 0


def measure(
    settings: Settings, questions_file: Path, question: str, cold_runs: int
) -> dict[str, Any]:
    """Disk, cold start and warm answers of the index as it is now."""
    index_dir = settings.resolved_index_dir
    cold = []
    cold_cpu = []
    cold_rss = 0
    for _ in range(cold_runs):
        cmd = [*policy_qa_command(), "ask", question, "--index-dir", str(index_dir)]
        seconds, cpu, rss, _ = timed_child([*cmd, "--judge", "off"])
        cold.append(seconds)
        cold_cpu.append(cpu)
        cold_rss = max(cold_rss, rss)
    warm_cmd = [sys.executable, __file__, "--warm-run", str(index_dir), str(questions_file)]
    _, _, warm_rss, out = timed_child(warm_cmd)
    warm = json.loads(out.strip().splitlines()[-1])
    return {
        "disk_bytes": folder_bytes(index_dir),
        "lexical_bytes": folder_bytes(index_dir / "lexical"),
        "cold_start_s": statistics.median(cold),
        "cold_start_runs_s": cold,
        "cold_start_cpu_s": statistics.median(cold_cpu),
        "cold_start_rss_bytes": cold_rss,
        "warm_rss_bytes": warm_rss,
        "warm_ms": summary(warm["wall"]),
        "warm_cpu_ms": summary(warm["cpu"]),
    }


def summary(times: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    """p50 / p95 by question set, and over the English and Korean sets together ("all")."""
    sets = times | {"all": times["English"] + times["Korean"]}
    return {
        label: {"n": len(t), "p50": percentile(t, 50), "p95": percentile(t, 95)}
        for label, t in sets.items()
    }


def main() -> int:
    quiet_third_parties()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--real", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--cold-runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1,000 chunks, 300 real")
    parser.add_argument("--datasets", type=Path, default=REPO.parent / "shared" / "datasets")
    parser.add_argument("--workdir", type=Path, help="where the index goes (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the index afterwards")
    parser.add_argument("--out", type=Path, default=REPO / "bench-out" / "scale.json")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--warm-run", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.warm_run:
        return warm_run(*args.warm_run)
    if args.quick:
        args.sizes, args.real, args.queries = "1000", 300, 30
    sizes = sorted(int(s) for s in args.sizes.split(","))
    rng = random.Random(args.seed)

    texts, english, korean = contexts(args.datasets)
    rng.shuffle(texts)
    rng.shuffle(english)
    rng.shuffle(korean)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-scale-"))
    workdir.mkdir(parents=True, exist_ok=True)
    questions_file = workdir / "questions.json"
    settings = Settings(data_dir=workdir / "data", judge="off")
    print(f"load average {load_average()}; index in {settings.resolved_index_dir}", flush=True)
    docs = real_documents(texts, settings, min(args.real, sizes[-1]))
    within = within_questions(args.datasets, docs)
    rng.shuffle(within)
    questions = {
        "English": english[: args.queries],
        "Korean": korean[: args.queries // 2],
        "Within": within[: args.queries],
    }
    questions_file.write_text(json.dumps(questions, ensure_ascii=False), encoding="utf-8")
    print(
        f"{sum(d.source.startswith(WITHIN) for d, _ in docs)} real documents under {WITHIN!r}, "
        f"{len(within)} questions about them",
        flush=True,
    )

    models = {m: load_embeddings(m, settings.model_cache) for m in settings.dense_models}
    store = Recording(settings.resolved_index_dir, None, settings.collection, models, create=True)
    corpus = Corpus(docs, store, models, settings, workdir / "real")
    rate = corpus.chunks / corpus.embed_seconds
    print(
        f"{corpus.chunks:,} real chunks indexed by index_paths (read, chunked, both models' "
        f"chunk and sentence vectors, written) in "
        f"{corpus.embed_seconds:.0f} s: {rate:.2f} chunks/s; load average {load_average()}",
        flush=True,
    )
    rows: list[dict[str, Any]] = []
    write_seconds = 0.0
    try:
        for size in sizes:
            if rows:
                last = rows[-1]
                need = last["disk_bytes"] / last["chunks"] * (size - last["chunks"]) * 1.2
                free = shutil.disk_usage(workdir).free
                if free - need < KEEP_FREE:
                    print(
                        f"skipping {size:,} chunks: it needs ~{need / 1e9:.1f} GB more disk, "
                        f"{free / 1e9:.1f} GB is free",
                        flush=True,
                    )
                    rows.append({"chunks": size, "skipped": "disk"})
                    break
            write_seconds += corpus.grow(store, size)
            began = time.perf_counter()
            with Assistant(settings=settings, embeddings=models) as qa:
                qa.retriever()  # builds (or brings up to date) and saves the BM25 index
            lexical_seconds = time.perf_counter() - began
            row: dict[str, Any] = {
                "chunks": store.count(),
                "real_chunks": corpus.chunks,
                "embed_s": corpus.embed_seconds,
                "write_s": write_seconds,
                "lexical_s": lexical_seconds,
                "extrapolated_real_index_s": store.count() / rate + write_seconds + lexical_seconds,
            }
            row |= measure(settings, questions_file, questions["English"][0], args.cold_runs)
            row["load_average"] = load_average()
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        if not (args.keep or args.workdir):
            shutil.rmtree(workdir, ignore_errors=True)

    print_table(rows, rate)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"real_chunks_per_s": rate, "sizes": rows}, indent=2), encoding="utf-8"
    )
    print(f"\nwrote {args.out}")
    return 0


def print_table(rows: list[dict[str, Any]], rate: float) -> None:
    print(f"\nReal indexing throughput: {rate:.2f} chunks/s (index_paths, both models)\n")
    head = (
        "| chunks | index time: real indexed + copies written + BM25 (real-equivalent) | disk "
        "| cold start (median): wall, CPU | cold RSS | warm p50 / p95: wall, CPU | warm RSS "
        "| load average |"
    )
    print(head)
    print("|---" * 8 + "|")
    for r in rows:
        if r.get("skipped"):
            print(f"| {r['chunks']:,} | skipped: {r['skipped']} | | | | | | |")
            continue
        w, c = r["warm_ms"]["all"], r["warm_cpu_ms"]["all"]
        print(
            f"| {r['chunks']:,} ({r['real_chunks']:,} real) | {r['embed_s']:.0f} s + "
            f"{r['write_s']:.0f} s + {r['lexical_s']:.0f} s "
            f"({r['extrapolated_real_index_s'] / 3600:.1f} h) | {r['disk_bytes'] / 1e6:,.0f} MB "
            f"| {r['cold_start_s']:.2f} s, {r['cold_start_cpu_s']:.2f} s "
            f"| {r['cold_start_rss_bytes'] / 1e6:,.0f} MB "
            f"| {w['p50']:.0f} / {w['p95']:.0f} ms, {c['p50']:.0f} / {c['p95']:.0f} ms "
            f"| {r['warm_rss_bytes'] / 1e6:,.0f} MB "
            f"| {r['load_average']} |"
        )
    print("\nWarm answers by question set (ms, p50 / p95: wall, then CPU):")
    for r in rows:
        if r.get("skipped"):
            continue
        parts = ", ".join(
            f"{label} {v['p50']:.0f} / {v['p95']:.0f}, "
            f"{r['warm_cpu_ms'][label]['p50']:.0f} / {r['warm_cpu_ms'][label]['p95']:.0f} "
            f"(n={v['n']})"
            for label, v in r["warm_ms"].items()
        )
        print(f"  {r['chunks']:,}: {parts}")


if __name__ == "__main__":
    sys.exit(main())
