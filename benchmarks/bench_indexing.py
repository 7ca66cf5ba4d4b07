"""Indexing throughput against the plain LangChain pipeline: prints a table and writes JSON.

    python benchmarks/bench_indexing.py [--quick] [--rounds 2] [--profile] [--incremental 10000]

The full run builds two corpora from the shared datasets (read in place, never copied into the
repository): English Wikipedia articles (CLAP NQ passages grouped by title, the longest first,
up to ~190,000 characters, like XQuAD-en's 48 articles) and Korean ones (KorQuAD 1.0 dev
articles in file order up to ~219,000 characters). For each, ``--rounds`` times, alternating,
it runs as whole processes (process start and model loading included):

- ``policy-qa index <folder>`` into a fresh data directory;
- the plain pipeline, ``evaluation.baseline.LangChainBaseline`` (RecursiveCharacterTextSplitter
  at 1,000 characters, the packaged MiniLM, ``langchain_chroma`` persisted), in its own process.

It also times the raw encoders on policy-qa's own chunks in this process (MiniLM and USE,
chunk texts only, models already loaded): what an indexer that did nothing else would reach.
``--profile`` runs the indexer once in-process under timers per stage (reading, Kiwi, the
encoders, Chroma writes, BM25) and cProfile. ``--incremental N`` builds an index of N chunks
(real chunks, then copies with slightly perturbed vectors as benchmarks/bench_retrieval.py does:
embedding 10,000 chunks for real takes half an hour on two cores) and times re-indexing one
changed file, BM25 included. ``--quick`` uses a quarter of each corpus, one round, and a
2,000-chunk incremental row: a few minutes, for ``make bench``. ``--server 5000,20000,50000``
adds the one-server table of docs/decisions/102-when-to-move-beyond-one-chroma-server.md.

Speed targets live here, not in tests (docs/decisions/100-indexing-profile-and-speed.md).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import logging
import os
import pstats
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DATASETS = REPO.parent / "shared" / "datasets"


# --- corpora ----------------------------------------------------------------------------------


def english_articles(datasets: Path, articles: int, chars: int) -> dict[str, str]:
    """CLAP NQ's Wikipedia passages grouped by article title: about ``chars`` characters."""
    by_title: dict[str, list[str]] = {}
    for name in ("clapnq_dev_answerable.jsonl", "clapnq_dev_unanswerable.jsonl"):
        with (datasets / "clapnq" / name).open(encoding="utf-8") as fh:
            for line in fh:
                for passage in json.loads(line)["passages"]:
                    texts = by_title.setdefault(passage["title"], [])
                    if passage["text"] not in texts:
                        texts.append(passage["text"].strip())
    # The titles with the most text first: articles of several chunks, as in XQuAD.
    ranked = sorted(by_title.items(), key=lambda kv: -sum(len(t) for t in kv[1]))
    return _take(((t, "\n\n".join(p)) for t, p in ranked), articles, chars)


def korean_articles(datasets: Path, articles: int, chars: int) -> dict[str, str]:
    """KorQuAD 1.0 dev articles, their paragraphs joined: about ``chars`` characters."""
    data = json.loads(
        (datasets / "korquad1" / "KorQuAD_v1.0_dev.json").read_text(encoding="utf-8")
    )["data"]
    texts = [(a["title"], "\n\n".join(p["context"] for p in a["paragraphs"])) for a in data]
    return _take(texts, articles, chars)


def _take(items: Any, articles: int, chars: int) -> dict[str, str]:
    out: dict[str, str] = {}
    total = 0
    for title, text in items:
        if len(out) >= articles or total >= chars:
            break
        out["".join(ch if ch.isalnum() else "_" for ch in title)[:60] + ".txt"] = text
        total += len(text)
    return out


def write_corpus(texts: dict[str, str], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


# --- whole processes --------------------------------------------------------------------------

_PLAIN = """
import sys, time
from pathlib import Path
from policy_qa.evaluation.baseline import LangChainBaseline
began = time.perf_counter()
system = LangChainBaseline(workdir=Path(sys.argv[2]))
stats = system.index(Path(sys.argv[1]))
print(stats.chunks)
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        ANONYMIZED_TELEMETRY="False",
        TOKENIZERS_PARALLELISM="false",
        GRADIO_ANALYTICS_ENABLED="False",
    )
    return env


def _children_cpu() -> float:
    """CPU seconds (user + system) of every finished child process so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_policy_qa(corpus: Path, work: Path) -> tuple[float, int, float, float]:
    """``policy-qa index`` as a process: (seconds, chunks, the seconds it reports itself, CPU
    seconds: on a shared machine the CPU a process spends tells what the wall time cannot)."""
    data = work / "pqa"
    shutil.rmtree(data, ignore_errors=True)
    exe = Path(sys.executable).with_name("policy-qa")
    cpu = _children_cpu()
    began = time.perf_counter()
    out = subprocess.run(
        [str(exe), "index", "--data-dir", str(data), "--quiet", "--json", str(corpus)],
        env=_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = time.perf_counter() - began
    report = json.loads(out.stdout)
    return seconds, int(report["chunks"]), float(report["seconds"]), _children_cpu() - cpu


def run_plain(corpus: Path, work: Path) -> tuple[float, int, float]:
    """The plain LangChain pipeline as a process: (seconds, chunks, CPU seconds)."""
    folder = work / "plain"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    cpu = _children_cpu()
    began = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", _PLAIN, str(corpus), str(folder)],
        env=_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = time.perf_counter() - began
    return seconds, int(out.stdout.strip().splitlines()[-1]), _children_cpu() - cpu


# --- in this process --------------------------------------------------------------------------


def raw_encoders(corpus: Path) -> dict[str, Any]:
    """The encoders alone on policy-qa's chunks of ``corpus``: chunk texts, no sentences."""
    from policy_qa import Settings
    from policy_qa.embeddings import encode, load_embeddings
    from policy_qa.indexing import embedding_text
    from policy_qa.ingest import chunk_document, load_paths

    settings = Settings()
    docs, _ = load_paths([corpus])
    chunks = [c for d in docs for c in chunk_document(d, settings.chunk_size, settings.chunk_min)]
    out: dict[str, Any] = {"chunks": len(chunks)}
    for name in settings.dense_models:
        # What policy-qa gives this model of each chunk: MiniLM gets a Korean chunk's Latin
        # runs only (docs/decisions/100-indexing-profile-and-speed.md, "Korean, sixth session").
        texts = [embedding_text(c, name) for c in chunks]
        model = load_embeddings(name, settings.model_cache)
        encode(model, ["warm up"])
        began = time.perf_counter()
        encode(model, texts)
        out[name] = time.perf_counter() - began
    out["both"] = sum(out[m] for m in settings.dense_models)
    return out


def profile(corpus: Path, work: Path, top: int) -> dict[str, float]:
    """Index ``corpus`` once in this process under cProfile; cumulative seconds per stage."""
    from policy_qa import Assistant, Settings
    from policy_qa.embeddings import load_embeddings

    # A folder per corpus: Chroma caches its client per path within a process.
    settings = Settings(data_dir=work / f"profile-{corpus.name}")
    models = {m: load_embeddings(m, settings.model_cache) for m in settings.dense_models}
    qa = Assistant(settings=settings, embeddings=models)
    prof = cProfile.Profile()
    # The encoders run on their own threads, which cProfile does not see: their CPU seconds
    # come from indexing's debug log.
    cpu = _ModelCPU()
    logging.getLogger("policy_qa.indexing").addHandler(cpu)
    logging.getLogger("policy_qa.indexing").setLevel(logging.DEBUG)
    began = time.perf_counter()
    process_cpu = time.process_time()
    prof.enable()
    report = qa.index([corpus])
    prof.disable()
    total = time.perf_counter() - began
    process_cpu = time.process_time() - process_cpu
    logging.getLogger("policy_qa.indexing").removeHandler(cpu)
    qa.close()
    stats = pstats.Stats(prof)
    stages = {
        "reading + cleaning": ("load.py", "load_paths"),
        "chunking": ("chunk.py", "chunk_document"),
        "MiniLM (all calls)": ("embeddings.py", "_encode", "MiniLM"),
        "USE (all calls)": ("embeddings.py", "_encode", "USE"),
        "sentence vectors (both models)": ("indexing.py", "embed_sentences"),
        "Chroma writes": ("chroma_store.py", "write_documents"),
        "BM25 (read back, Kiwi, matrix, save)": ("lexical_cache.py", "rebuild"),
        "Kiwi / tokenizer": ("lexical.py", "__call__"),
    }
    out = {"total": total, "chunks": float(report.chunks), "process CPU": process_cpu}
    out.update({f"{k} CPU (own thread)": seconds for k, seconds in cpu.seconds.items()})
    raw: dict[tuple[str, int, str], Any] = stats.stats  # type: ignore[attr-defined]
    for label, (filename, function, *owner) in stages.items():
        seconds = 0.0
        for (path, line, name), (_, _, _, cumulative, _) in raw.items():
            if path.endswith(filename) and name == function:
                if owner and not _defined_in(path, line, owner[0]):
                    continue
                seconds += cumulative
        out[label] = seconds
    buffer = io.StringIO()
    pstats.Stats(prof, stream=buffer).sort_stats("tottime").print_stats(top)
    print(buffer.getvalue())
    return out


class _ModelCPU(logging.Handler):
    """Adds up the encoders' CPU seconds that indexing logs at DEBUG."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seconds: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        # indexing._embed logs each pass: model, "chunks" or "sentences", rows, CPU seconds.
        if record.msg == "%s %s: %d rows in %.2f s of CPU":
            model, what, _, seconds = tuple(record.args or ())
            key = f"{model} {what}"
            self.seconds[key] = self.seconds.get(key, 0.0) + float(str(seconds))


def _defined_in(path: str, line: int, owner: str) -> bool:
    """Whether the function at ``path:line`` is a method of class ``owner``."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()[:line]
    for text in reversed(lines):
        if text.startswith("class "):
            return text.startswith(f"class {owner}")
    return False


def incremental(work: Path, total: int, corpus: Path) -> dict[str, float]:
    """Re-index one changed file in an index of ``total`` chunks, BM25 included.

    The first copy of ``corpus`` is indexed for real; copies (a tag in each source, vectors
    slightly perturbed, no sentence vectors) fill the store up to ``total`` chunks, as
    benchmarks/bench_retrieval.py does. Then one real file changes and is indexed again.
    Also timed: what a full BM25 rebuild costs at that size (the path before decision 101:
    read every chunk back, reuse terms by digest, index with bm25s).
    """
    import numpy as np

    from policy_qa import Assistant, Settings
    from policy_qa.chroma_store import ChromaStore
    from policy_qa.embeddings import encode, load_embeddings
    from policy_qa.indexing import embedding_text, index_paths
    from policy_qa.lexical import LexicalIndex, Tokenizer
    from policy_qa.lexical_cache import LexicalCache, lexical_text
    from policy_qa.types import Chunk, Document

    settings = Settings(data_dir=work / "incremental")
    shutil.rmtree(settings.data_dir, ignore_errors=True)
    folder = work / "incremental-corpus"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(corpus, folder)
    models = {m: load_embeddings(m, settings.model_cache) for m in settings.dense_models}
    qa = Assistant(settings=settings, embeddings=models)
    qa.index([folder])
    qa.close()  # one handle on the folder from here on
    store = ChromaStore(settings.resolved_index_dir, None, settings.collection, models)
    real = list(store.iter_chunks())
    first = next(iter(models))
    # The real chunks' vectors, made again as indexing made them (the store's own are not read
    # through a private handle): only the copies' timing is measured below.
    texts = [embedding_text(chunk) for _, chunk in real]
    vectors = {m: np.asarray(encode(model, texts)) for m, model in models.items()}
    noise = np.random.default_rng(0)
    by_source: dict[str, list[int]] = {}
    for i, (_, chunk) in enumerate(real):
        by_source.setdefault(chunk.source, []).append(i)
    copy = 0
    began = time.perf_counter()
    while store.count() < total:
        copy += 1
        items = []
        for source, rows in by_source.items():
            chunks = [real[i][1] for i in rows]
            tagged = f"copy{copy}/{source}"
            doc = Document(source=tagged, title=chunks[0].title, text=f"copy {copy}")
            moved = [
                Chunk(tagged, c.title, c.section, c.start, c.end, c.text, c.language)
                for c in chunks
            ]
            vecs = {}
            for m, v in vectors.items():
                part = v[rows] + noise.normal(0, 0.02, (len(rows), v.shape[1])).astype(np.float32)
                vecs[m] = part / np.linalg.norm(part, axis=1, keepdims=True)
            items.append((doc, moved, vecs, "bench"))
        store.write_documents(items)
    fill = time.perf_counter() - began
    del first
    # What ``Assistant.index`` does, in its two parts, so each is timed: embed + write the
    # changed file, then bring the saved BM25 index up to date.
    cache = LexicalCache(settings.korean_tokenizer, work / "incremental-bm25", stale_after=3600)
    began = time.perf_counter()
    cache.get(store)
    first_build = time.perf_counter() - began
    changed = sorted(folder.glob("*.txt"))[0]
    changed.write_text(changed.read_text(encoding="utf-8") + "\n\nA sentence added.", "utf-8")
    began = time.perf_counter()
    report = index_paths(
        store,
        models,
        [changed],
        chunk_size=settings.chunk_size,
        chunk_min=settings.chunk_min,
    )
    embed_write = time.perf_counter() - began
    began = time.perf_counter()
    previous = cache.get(store)
    cache.rebuild(store)
    bm25_update = time.perf_counter() - began
    reindex = embed_write + bm25_update
    chunks_of_file = report.chunks
    # The path before: every chunk read back, terms reused by digest, bm25s indexing.
    began = time.perf_counter()
    everything = list(store.iter_chunks())
    read_back = time.perf_counter() - began
    began = time.perf_counter()
    LexicalIndex.build(
        ((cid, c.source, lexical_text(c)) for cid, c in everything),
        Tokenizer(settings.korean_tokenizer),
        "x",
        previous,
        spans=[(c.start, c.end) for _, c in everything],
    )
    full_build = time.perf_counter() - began
    n = store.count()
    return {
        "embed_write": embed_write,
        "bm25_update": bm25_update,
        "chunks": float(n),
        "fill_seconds": fill,
        "first_bm25_build": first_build,
        "changed_file_chunks": float(chunks_of_file),
        "reindex_one_file": reindex,
        "old_path_read_back": read_back,
        "old_path_build": full_build,
    }


def server_scaling(work: Path, sizes: list[int], queries: int) -> list[dict[str, float]]:
    """One ``chroma run`` server on 127.0.0.1: write throughput and query latency by size.

    Chunks are synthetic (random unit vectors for both models, short texts, 20 chunks a
    document, no sentence vectors): the server's cost depends on how many vectors it holds,
    not on what they say. Each step writes up to the next size through ``ChromaStore`` (the
    crash-consistent write of decision 080, 25 documents a call), then times ``queries``
    nearest-neighbour searches per model as ``Retriever`` asks them (k 30) and a revision
    check. The server's data folder is measured on disk at each size.
    """
    import socket
    import statistics as stats

    import numpy as np

    from policy_qa import StoreUnavailableError
    from policy_qa.chroma_store import ChromaStore
    from policy_qa.types import Chunk, Document

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data = work / "server-db"
    chroma = Path(sys.executable).with_name("chroma")
    log = (work / "server.log").open("wb")
    proc = subprocess.Popen(
        [str(chroma), "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(port)],
        env=_env(),
        stdout=log,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    rows: list[dict[str, float]] = []
    try:
        dims = {"minilm": 384, "use": 512}
        deadline = time.monotonic() + 60
        while True:  # until the server answers
            try:
                store = ChromaStore(work / "unused", url, "scaling", list(dims), create=True)
                break
            except StoreUnavailableError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        rng = np.random.default_rng(0)
        written = 0
        for size in sizes:
            began = time.perf_counter()
            added = 0
            while written < size:
                items = []
                for _ in range(25):
                    d = written // 20
                    source = f"doc{d:06}.txt"
                    doc = Document(source=source, title=source, text=f"document {d}")
                    chunks = [
                        Chunk(source, source, "", i * 100, i * 100 + 90, f"chunk {d} {i} text")
                        for i in range(20)
                    ]
                    vecs = {}
                    for m, dim in dims.items():
                        v = rng.normal(size=(20, dim)).astype(np.float32)
                        vecs[m] = v / np.linalg.norm(v, axis=1, keepdims=True)
                    items.append((doc, chunks, vecs, "bench"))
                    written += 20
                    added += 20
                store.write_documents(items)
            write = time.perf_counter() - began
            latencies: dict[str, list[float]] = {m: [] for m in dims}
            for _ in range(queries):
                for m, dim in dims.items():
                    q = rng.normal(size=dim)
                    q /= np.linalg.norm(q)
                    t = time.perf_counter()
                    store.search(m, q.tolist(), 30)
                    latencies[m].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            store.fingerprint()
            check = (time.perf_counter() - t) * 1000
            disk = sum(f.stat().st_size for f in data.rglob("*") if f.is_file()) / 1e6
            both = [a + b for a, b in zip(latencies["minilm"], latencies["use"], strict=True)]
            row = {
                "chunks": float(store.count()),
                "write_chunks_per_s": added / write if added else 0.0,
                "query_p50_ms": stats.median(both),
                "query_p95_ms": float(np.percentile(both, 95)),
                "check_ms": check,
                "disk_mb": disk,
                "load": os.getloadavg()[0],
            }
            rows.append(row)
            print(
                f"  server {row['chunks']:,.0f} chunks: write {row['write_chunks_per_s']:.0f}/s, "
                f"two searches p50 {row['query_p50_ms']:.0f} ms p95 {row['query_p95_ms']:.0f} ms",
                flush=True,
            )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    return rows


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few minutes, for make bench")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--datasets", type=Path, default=DATASETS)
    parser.add_argument("--profile", action="store_true", help="cProfile one in-process run")
    parser.add_argument("--incremental", type=int, default=10_000, help="chunks (0: skip)")
    parser.add_argument("--languages", default="en,ko", help="corpora to compare ('' none)")
    parser.add_argument(
        "--server",
        default="",
        help="chunk counts for the one-server table, e.g. 5000,20000,50000 ('' skips it)",
    )
    parser.add_argument("--server-queries", type=int, default=50)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "bench_indexing.json")
    args = parser.parse_args()
    scale = 0.25 if args.quick else 1.0
    rounds = 1 if args.quick else args.rounds
    if args.quick and args.incremental == 10_000:
        args.incremental = 2_000
    work = Path(tempfile.mkdtemp(prefix="bench-indexing-"))
    corpora = {
        "en": english_articles(args.datasets, 10_000, int(190_000 * scale)),
        "ko": korean_articles(args.datasets, 10_000, int(219_000 * scale)),
    }
    results: dict[str, Any] = {"load_average_start": load_average(), "rows": {}}
    print(f"load average at start: {results['load_average_start']} (2 cores, shared)")
    try:
        for lang in filter(None, args.languages.split(",")):
            texts = corpora[lang]
            corpus = write_corpus(texts, work / f"corpus-{lang}")
            chars = sum(len(t) for t in texts.values())
            if args.profile:
                results["rows"][f"profile-{lang}"] = profile(corpus, work, 25)
            row: dict[str, Any] = {"articles": len(texts), "chars": chars, "pqa": [], "plain": []}
            for r in range(rounds):
                order = ("plain", "pqa") if r % 2 == 0 else ("pqa", "plain")
                for system in order:
                    if system == "pqa":
                        seconds, chunks, inner, cpu = run_policy_qa(corpus, work)
                        row["pqa"].append(seconds)
                        row["pqa_chunks"], row["pqa_inner"] = chunks, inner
                    else:
                        seconds, chunks, cpu = run_plain(corpus, work)
                        row["plain"].append(seconds)
                        row["plain_chunks"] = chunks
                    row.setdefault(f"{system}_cpu", []).append(cpu)
                    load = load_average()
                    row.setdefault("loads", []).append(f"{system} {seconds:.1f} s: {load}")
                    print(
                        f"  {lang} round {r + 1} {system}: {seconds:.1f} s, CPU {cpu:.1f} s "
                        f"(load {load})",
                        flush=True,
                    )
            row["raw"] = raw_encoders(corpus)
            row["load_average_end"] = load_average()
            results["rows"][lang] = row
        if args.incremental:
            # A quarter of the English corpus is embedded for real; copies fill the rest.
            quarter = english_articles(args.datasets, 10_000, 190_000 // 4)
            en = write_corpus(quarter, work / "corpus-en-quarter")
            results["rows"]["incremental"] = incremental(work, args.incremental, en)
        if args.server:
            sizes = [int(x) for x in args.server.split(",")]
            results["rows"]["server"] = server_scaling(work, sizes, args.server_queries)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(results)
    args.out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"wrote {args.out}")


def report(results: dict[str, Any]) -> None:
    rows = results["rows"]
    print(
        "\n| corpus | policy-qa index (s) | plain LangChain (s) | ratio | policy-qa chunks/s "
        "(in-process) | raw encoders chunks/s (MiniLM+USE, same chunks) | share | "
        "CPU s policy-qa / plain | load avg |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for lang in ("en", "ko"):
        row = rows.get(lang)
        if not row:
            continue
        pqa = statistics.median(row["pqa"])
        plain = statistics.median(row["plain"])
        rate = row["pqa_chunks"] / row["pqa_inner"]
        raw = row["raw"]["chunks"] / row["raw"]["both"]
        print(
            f"| {lang}: {row['articles']} articles, {row['chars']:,} chars, "
            f"{row['pqa_chunks']} / {row['plain_chunks']} chunks | {pqa:.1f} | {plain:.1f} | "
            f"{pqa / plain:.2f}x | {rate:.1f} | {raw:.1f} | {rate / raw:.0%} | "
            f"{statistics.median(row['pqa_cpu']):.1f} / {statistics.median(row['plain_cpu']):.1f}"
            f" | {row['load_average_end']} |"
        )
    inc = rows.get("incremental")
    if inc:
        print(
            f"\nIncremental: one changed file ({inc['changed_file_chunks']:.0f} chunks) re-indexed "
            f"in an index of {inc['chunks']:,.0f} chunks (real chunks + perturbed copies): "
            f"{inc['reindex_one_file']:.2f} s = embed + write {inc['embed_write']:.2f} s + BM25 "
            f"update {inc['bm25_update']:.2f} s. The path before decision 101 at "
            f"that size: read every chunk back {inc['old_path_read_back']:.2f} s + rebuild "
            f"{inc['old_path_build']:.2f} s (terms reused). First BM25 build "
            f"{inc['first_bm25_build']:.2f} s."
        )
    if rows.get("server"):
        print(
            "\n| chunks on one chroma run | write chunks/s | query p50 / p95 ms "
            "(MiniLM + USE, k 30) | revision check ms | disk MB | load |"
        )
        print("|---|---|---|---|---|---|")
        for r in rows["server"]:
            print(
                f"| {r['chunks']:,.0f} | {r['write_chunks_per_s']:.0f} | {r['query_p50_ms']:.0f} / "
                f"{r['query_p95_ms']:.0f} | {r['check_ms']:.1f} | {r['disk_mb']:.0f} | "
                f"{r['load']:.1f} |"
            )
    for key, prof in rows.items():
        if key.startswith("profile-"):
            print(f"\nProfile {key[8:]} ({prof['chunks']:.0f} chunks, {prof['total']:.1f} s):")
            for label, seconds in prof.items():
                if label not in ("total", "chunks"):
                    print(f"  {label:40} {seconds:7.2f} s")


if __name__ == "__main__":
    main()
