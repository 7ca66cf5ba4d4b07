"""Extractive vs LLM answers on a bundled question set: a table on stdout and a JSON file.

    PYTHONPATH=src python scripts/bench_llm.py                       # extractive vs local Qwen
    PYTHONPATH=src python scripts/bench_llm.py --backends none,smollm2 --limit 20
    PYTHONPATH=src python scripts/bench_llm.py --backends openai --base-url http://127.0.0.1:8080/v1

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", default="daedeok", help="bundled set name or .jsonl path")
    parser.add_argument(
        "--backends", default="none,qwen", help="comma list: none,qwen,smollm2,openai"
    )
    parser.add_argument("--limit", type=int, default=None, help="sample this many items")
    parser.add_argument("--data-dir", type=Path, default=Path(".policy-qa"), help="models cache")
    parser.add_argument("--workdir", type=Path, default=Path("bench-llm"), help="indexes, JSON")
    parser.add_argument("--model-path", default=None, help="GGUF for qwen (default: packaged)")
    parser.add_argument("--base-url", default=None, help="OpenAI-compatible /v1 URL")
    parser.add_argument("--model", default="local", help="model name for --backends openai")
    args = parser.parse_args(argv)
    quiet_third_parties()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

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


def _write(path: Path, results: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str))
    return path


if __name__ == "__main__":
    raise SystemExit(main())
