"""The local model, measured: a table on stdout and a JSON file for each of two questions.

``speed``: how fast each llama-cpp-python build reads a prompt (tokens/s), in the model worker
exactly as policy-qa runs it (docs/decisions/050-portable-llama-build.md)::

    python benchmarks/bench_llm.py speed --build installed
    python benchmarks/bench_llm.py speed --build portable=WHEEL --build native=WHEEL \
        --tokens 100,400,1000 --rounds 3

Each ``--build NAME=WHEEL`` is installed (without dependencies) into its own folder under
``--workdir`` and put first on the worker's ``PYTHONPATH``; ``installed`` is the venv's own.
``NAME=WHEEL;VAR=VALUE`` also sets environment variables for that build's worker, e.g.
``portable-passive=WHEEL;OMP_WAIT_POLICY=PASSIVE``. The machine's load average is recorded
with every round: on a shared machine it moves the figures more than anything else.
A build that crashes is reported as such (the worker dies; this process does not).

``answers``: extractive vs LLM answers on a bundled question set::

    python benchmarks/bench_llm.py answers                       # extractive vs local Qwen
    python benchmarks/bench_llm.py answers --backends none,smollm2 --limit 20
    python benchmarks/bench_llm.py answers --backends openai --base-url http://127.0.0.1:8080/v1

Each backend is scored by the eval runner through ``Assistant(settings=Settings(llm=...))``, so
the figures are the ones ``policy-qa eval`` prints: answer correctness, citation precision and
recall, refusals on unanswerable questions, false refusals, seconds per answer. It also counts
what verification did (sentences re-cited or removed, extractive fallbacks) and how many
questions the calibrated refusal turned away before the LLM was asked.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from policy_qa.assistant import GATED_NOTE
from policy_qa.config import Settings, quiet_third_parties
from policy_qa.evaluation.runner import RunOptions, SetSpec, resolve_set, run_set
from policy_qa.evaluation.systems import PolicyQASystem

COLUMNS = (
    ("answer_correct", "correct"),
    ("citation_precision", "cite P"),
    ("citation_recall", "cite R"),
    ("refusal_rate", "refusals"),
    ("false_refusal_rate", "false ref."),
    ("latency_p50", "s/answer p50"),
    ("latency_p95", "s/answer p95"),
)


def settings_for(backend: str, args: argparse.Namespace, data_dir: Path) -> Settings:
    if backend == "none":
        return Settings(data_dir=data_dir)
    if backend in ("qwen", "llamacpp"):
        return Settings(data_dir=data_dir, llm="llamacpp", llm_model_path=args.model_path)
    if backend == "smollm2":
        return Settings(data_dir=data_dir, llm="llamacpp", llm_model_path="smollm2")
    if backend == "openai":
        return Settings(
            data_dir=data_dir, llm="openai", llm_base_url=args.base_url, llm_model=args.model
        )
    raise SystemExit(f"unknown backend {backend!r}: use none, qwen, smollm2, openai")


def verification_counts(rows: list[dict[str, Any]], system: str) -> dict[str, int]:
    counts = {"re-cited": 0, "removed": 0, "fallback": 0, "flagged": 0, "refused first": 0}
    for row in rows:
        notes = " | ".join(row["systems"].get(system, {}).get("notes", []) or [])
        counts["re-cited"] += notes.count("re-cited")
        counts["removed"] += notes.count("removed sentence")
        counts["flagged"] += notes.count("check the arithmetic")
        counts["fallback"] += int("LLM failed" in notes or "had no claim" in notes)
        # Refused by the calibrated refusal before the LLM was asked (Assistant.stream).
        counts["refused first"] += int(GATED_NOTE in notes)
    return counts


def answers(args: argparse.Namespace) -> int:
    results: dict[str, Any] = {}
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        settings = settings_for(backend, args, args.data_dir)
        workdir = args.workdir / backend
        eval_set = resolve_set(SetSpec(args.set, limit=args.limit), RunOptions(), workdir)
        began = time.perf_counter()
        out = run_set(eval_set, [PolicyQASystem(workdir / "index", settings)], progress=True)
        figures = out["figures"]["policy-qa"]
        figures["verification"] = verification_counts(out["rows"], "policy-qa")
        figures["wall_seconds"] = time.perf_counter() - began
        results[backend] = {"figures": figures, "rows": out["rows"]}
        print(f"{backend}: done in {figures['wall_seconds']:.0f} s", file=sys.stderr)
        _write(args.workdir / "bench_llm.json", results)  # a long run keeps what it measured

    header = f"{'backend':<10}" + "".join(f"{label:>14}" for _, label in COLUMNS)
    print(header)
    for backend, result in results.items():
        figures = result["figures"]
        cells = []
        for key, _ in COLUMNS:
            value = figures.get(key)
            cells.append(f"{'-' if value is None else f'{value:.3f}':>14}")
        print(f"{backend:<10}" + "".join(cells))
    for backend, result in results.items():
        print(f"{backend}: verification {result['figures']['verification']}")
    path = _write(args.workdir / "bench_llm.json", results)
    print(f"wrote {path}")
    return 0


# --------------------------------------------------------------------------- speed

# Words of plain English prose run ~1.3 tokens each in Qwen's tokenizer; the worker reports the
# exact count it read, which is what the table shows.
_TOKENS_PER_WORD = 1.3
_PROSE = (
    "The Daedeok research complex was set up in 1973 to support the growth of the heavy "
    "chemicals industry, and in 2005 it became a special zone for research and development. "
)


def _prompt(tokens: int) -> list[dict[str, str]]:
    words = (_PROSE * (1 + int(tokens / len(_PROSE.split())))).split()
    text = " ".join(words[: max(1, int((tokens - 40) / _TOKENS_PER_WORD))])
    return [
        {"role": "system", "content": "Reply with one word: yes or no."},
        {"role": "user", "content": f"Text:\n{text}\n\nDoes the text name a year? Yes or no."},
    ]


def _install(name: str, wheel: Path, workdir: Path) -> Path:
    """``wheel`` unpacked into its own folder (no dependencies: the venv has them)."""
    target = workdir / "builds" / name
    if not (target / "llama_cpp").is_dir():
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-cache-dir",
             "--target", str(target), str(wheel)],
            check=True,
        )  # fmt: skip
    return target


def _measure(
    name: str,
    build: tuple[Path | None, dict[str, str]],
    model: Path,
    sizes: list[int],
    threads: int,
) -> dict[str, Any]:
    """One round for one build: load, then each prompt size once (a fresh read each time)."""
    from policy_qa.errors import LLMError
    from policy_qa.supervisor import ModelWorker

    folder, env = build
    changes = dict(env)
    if folder is not None:
        changes["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(folder), os.environ.get("PYTHONPATH")) if p
        )
    saved = {key: os.environ.get(key) for key in changes}
    os.environ.update(changes)  # the worker inherits this process's environment
    worker = ModelWorker(model, n_ctx=2048, n_threads=threads)
    out: dict[str, Any] = {"runs": {}, "load_average_before": os.getloadavg()[0]}
    try:
        info = worker.start()
        out.update(
            features=info.get("features"),
            amx=info.get("amx"),
            extra_buffers=info.get("extra_buffers"),
            load_seconds=info.get("load_seconds"),
        )
        for size in sizes:
            result = worker.request("p_yes", {"messages": _prompt(size)}, timeout=600)
            out["runs"][str(size)] = {
                "tokens": result["tokens"],
                "seconds": result["seconds"],
                "tokens_per_second": result["tokens"] / result["seconds"],
            }
    except LLMError as exc:
        out["error"] = str(exc)
        print(f"{name}: {exc}", file=sys.stderr)
    finally:
        worker.close()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    out["load_average_after"] = os.getloadavg()[0]
    return out


def speed(args: argparse.Namespace) -> int:
    from policy_qa.llm import ensure_qwen_model, smollm2_model_path

    if args.model == "qwen":
        model = ensure_qwen_model(Settings.from_env().model_cache)
    elif args.model == "smollm2":
        model = smollm2_model_path()
    else:
        model = Path(args.model)
    sizes = [int(n) for n in args.tokens.split(",") if n.strip()]
    builds: dict[str, tuple[Path | None, dict[str, str]]] = {}
    for spec in args.build or ["installed"]:
        name, _, rest = spec.partition("=")
        wheel, *assignments = rest.split(";")
        env = dict(a.split("=", 1) for a in assignments if "=" in a)
        builds[name] = (_install(name, Path(wheel), args.workdir) if wheel else None, env)

    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in builds}
    for r in range(args.rounds):
        # Builds take turns within each round, so a change in the machine's load between
        # rounds touches every build alike.
        for name, build in builds.items():
            print(f"round {r + 1}/{args.rounds}: {name}", file=sys.stderr)
            rounds[name].append(_measure(name, build, model, sizes, args.threads))

    summary: dict[str, Any] = {}
    for name, runs in rounds.items():
        ok = [run for run in runs if "error" not in run]
        row: dict[str, Any] = {
            "features": (ok or runs)[0].get("features"),
            "amx": (ok or runs)[0].get("amx"),
            "extra_buffers": (ok or runs)[0].get("extra_buffers"),
            "crashed": len(runs) - len(ok),
            "errors": sorted({run["error"] for run in runs if "error" in run}),
            "env": builds[name][1],
            "load_average": [run["load_average_before"] for run in runs],
        }
        for size in sizes:
            rates = [run["runs"][str(size)]["tokens_per_second"] for run in ok]
            tokens = [run["runs"][str(size)]["tokens"] for run in ok]
            row[str(size)] = {
                "tokens": tokens[0] if tokens else None,
                "tokens_per_second_median": statistics.median(rates) if rates else None,
                "tokens_per_second": rates,
            }
        summary[name] = row

    print(f"model {model.name}, {args.threads} threads, median of {args.rounds} rounds")
    print(f"{'build':<16}" + "".join(f"{f'~{n} tok':>12}" for n in sizes) + "  crashed  AMX")
    for name, row in summary.items():
        cells = []
        for size in sizes:
            value = row[str(size)]["tokens_per_second_median"]
            cells.append(f"{'-' if value is None else f'{value:.1f}':>12}")
        amx = ",".join(row["amx"] or []) or "no"
        if row["amx"] and not row["extra_buffers"]:
            amx += " (kept out)"
        print(f"{name:<16}" + "".join(cells) + f"  {row['crashed']:>3}/{args.rounds}  {amx}")
    exact = {name: [row[str(n)]["tokens"] for n in sizes] for name, row in summary.items()}
    print(f"tokens read per size: {exact}")
    loads = [load for row in summary.values() for load in row["load_average"]]
    print(f"1-minute load average during the rounds: {min(loads):.1f}-{max(loads):.1f}")
    payload = {
        "model": model.name,
        "threads": args.threads,
        "rounds": args.rounds,
        "sizes": sizes,
        "builds": summary,
        "raw": rounds,
    }
    path = _write(args.workdir / "bench_llm_speed.json", payload)
    print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("answers", help="extractive vs LLM answers on a question set")
    p.add_argument("--set", default="daedeok", help="bundled set name or .jsonl path")
    p.add_argument("--backends", default="none,qwen", help="comma list: none,qwen,smollm2,openai")
    p.add_argument("--limit", type=int, default=None, help="sample this many items")
    p.add_argument("--data-dir", type=Path, default=Path(".policy-qa"), help="data folder")
    p.add_argument("--workdir", type=Path, default=Path("bench-llm"), help="indexes, JSON")
    p.add_argument("--model-path", default=None, help="GGUF for qwen (default: packaged)")
    p.add_argument("--base-url", default=None, help="OpenAI-compatible /v1 URL")
    p.add_argument("--model", default="local", help="model name for --backends openai")
    p.set_defaults(func=answers)

    p = sub.add_parser("speed", help="prompt reading tokens/s per llama-cpp-python build")
    p.add_argument(
        "--build",
        action="append",
        metavar="NAME[=WHEEL]",
        help="a build to measure (repeatable); without =WHEEL, the venv's own",
    )
    p.add_argument("--model", default="qwen", help="qwen, smollm2 or a GGUF path")
    p.add_argument("--tokens", default="100,400,1000", help="prompt sizes, comma-separated")
    p.add_argument("--rounds", type=int, default=3, help="measure each build this many times")
    p.add_argument("--threads", type=int, default=2, help="llama.cpp threads")
    p.add_argument("--workdir", type=Path, default=Path("bench-llm"), help="builds, JSON")
    p.set_defaults(func=speed)

    args = parser.parse_args(argv)
    quiet_third_parties()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return int(args.func(args))


def _write(path: Path, results: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str))
    return path


if __name__ == "__main__":
    raise SystemExit(main())
