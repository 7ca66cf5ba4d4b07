"""Refresh eval/baseline.json after an intended change: the same sets, seed and systems as the
regression gate (tests/test_regression.py) runs, with the tolerances kept.

    python research/refresh_baseline.py [--datasets-dir ../shared/datasets]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from policy_qa.config import Settings, quiet_third_parties
from policy_qa.evaluation.runner import RunOptions, SetSpec, make_baseline, run

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets-dir", type=Path, default=REPO.parent / "shared" / "datasets")
    parser.add_argument("--out", type=Path, default=REPO / "eval" / "baseline.json")
    args = parser.parse_args()
    quiet_third_parties()
    path = REPO / "eval" / "baseline.json"
    old = json.loads(path.read_text(encoding="utf-8"))
    options = RunOptions(
        systems=tuple(old["run"]["systems"]),
        seed=old["run"]["seed"],
        scope=old["run"]["scope"],
        datasets_dir=args.datasets_dir,
        progress=True,
    )
    specs = [SetSpec(**s) for s in old["run"]["sets"]]
    results = run(specs, options, Settings(data_dir=REPO / ".policy-qa", judge="auto"))
    baseline = make_baseline(results, tolerance=old["tolerance"])
    args.out.write_text(json.dumps(baseline, indent=1) + "\n", encoding="utf-8")
    for name, figures in baseline["figures"].items():
        before = old["figures"].get(name, {})
        print(name, {k: (before.get(k), v) for k, v in figures.items()})


if __name__ == "__main__":
    main()
