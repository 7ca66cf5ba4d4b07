"""Time per warm question: the extractive answer path over the bundled corpus, models loaded.

    python benchmarks/bench_question.py [--quick] [--rounds 5] [--out bench-out/question.json]

Indexes corpus/ into a temporary folder, loads the models with one question, then asks every
question of eval/daedeok.jsonl and eval/daedeok-heldout.jsonl (a dialogue's turns with the turns
before them as history) with the answerability check off, so that only policy-qa's own path is
timed, not an LLM. "first" is each question's first ask (its words are new to the caches);
"again" asks the same questions once more per round (every vector cached: what is left is the
work of reading the question, retrieving and scoring). The full run times 5 rounds of "again";
``--quick`` takes the bundled set only and 1 round (about a minute). Prints a table with the
load average next to the numbers and writes JSON. It times whatever ``policy_qa`` is on the
path: to compare two trees, run it once with each first on PYTHONPATH
(docs/decisions/030-query-read-once.md did so).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import policy_qa
from policy_qa import Assistant, Settings
from policy_qa.config import quiet_third_parties

REPO = Path(__file__).resolve().parents[1]
SETS = ("daedeok.jsonl", "daedeok-heldout.jsonl")

Turn = tuple[str, list[tuple[str, str]]]  # a question and the history it is asked after


def turns(path: Path) -> list[Turn]:
    """Every question of a set, each with the questions before it in its dialogue."""
    out: list[Turn] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        if "set" in item:
            continue  # the set's header line
        history: list[tuple[str, str]] = []
        for turn in item.get("turns") or [item]:
            out.append((turn["question"], list(history)))
            history.append((turn["question"], ""))
    return out


def ask_all(qa: Assistant, questions: list[Turn]) -> list[tuple[float, float]]:
    """(wall, CPU) seconds of each ask. On a shared machine the wall time also holds the wait
    for a core; the process's CPU time does not."""
    times = []
    for question, history in questions:
        began, cpu = time.perf_counter(), time.process_time()
        qa.ask(question, history or None)
        times.append((time.perf_counter() - began, time.process_time() - cpu))
    return times


def summary(times: list[tuple[float, float]]) -> dict[str, float]:
    wall = sorted(w for w, _ in times)
    return {
        "questions": len(times),
        "mean_ms": 1000 * statistics.fmean(wall),
        "median_ms": 1000 * statistics.median(wall),
        "p90_ms": 1000 * wall[int(0.9 * (len(wall) - 1))],
        "cpu_mean_ms": 1000 * statistics.fmean(c for _, c in times),
        "total_s": sum(wall),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the bundled set, one round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=REPO / "bench-out" / "question.json")
    parser.add_argument("--label", default="", help="a name for this tree in the JSON")
    args = parser.parse_args()
    quiet_third_parties()
    sets = SETS[:1] if args.quick else SETS
    rounds = 1 if args.quick else args.rounds
    questions = [t for name in sets for t in turns(REPO / "eval" / name)]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", judge="off")
        qa = Assistant(index_dir=Path(tmp) / "index", settings=settings)
        qa.index([REPO / "corpus"])
        qa.ask("How far is Daejeon from Seoul?")  # loads the models and opens the index
        load_before = os.getloadavg()
        first = ask_all(qa, questions)
        again = [t for _ in range(rounds) for t in ask_all(qa, questions)]
        load_after = os.getloadavg()
        qa.close()
    rows = {"first": summary(first), "again": summary(again)}
    result = {
        "label": args.label,
        "policy_qa": str(Path(policy_qa.__file__).parent),
        "sets": list(sets),
        "rounds": rounds,
        "load_average_1m": [load_before[0], load_after[0]],
        "rows": rows,
    }
    print(f"policy_qa from {result['policy_qa']}; {len(questions)} questions, {rounds} round(s)")
    print(f"load average (1 min) before / after: {load_before[0]:.2f} / {load_after[0]:.2f}")
    print(f"{'ask':<8}{'questions':>10}{'mean ms':>10}{'median ms':>11}{'p90 ms':>9}{'CPU ms':>9}")
    for name, row in rows.items():
        print(
            f"{name:<8}{row['questions']:>10.0f}{row['mean_ms']:>10.1f}"
            f"{row['median_ms']:>11.1f}{row['p90_ms']:>9.1f}{row['cpu_mean_ms']:>9.1f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
