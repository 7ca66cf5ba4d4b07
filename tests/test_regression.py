"""The regression gate: policy-qa's figures must not fall below the committed baseline.

``eval/baseline.json`` says which sets to run (the bundled set and small deterministic samples
of the shared datasets), which figures are gated and by how much each may fall. After an
intended change, refresh it with the command in its ``note`` and commit it with the change.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from policy_qa.config import Settings
from policy_qa.evaluation.datasets import DATASET_NAMES
from policy_qa.evaluation.runner import RunOptions, SetSpec, regressions, run

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("POLICY_QA_DATASETS") or REPO.parent / "shared" / "datasets")
BASELINE = json.loads((REPO / "eval" / "baseline.json").read_text(encoding="utf-8"))

pytestmark = pytest.mark.slow


def _gate(tmp_path: Path, specs: list[SetSpec]) -> None:
    options = RunOptions(
        systems=tuple(BASELINE["run"]["systems"]),
        seed=BASELINE["run"]["seed"],
        scope=BASELINE["run"]["scope"],
        datasets_dir=DATASETS,
        progress=False,
    )
    # Each set indexes into tmp_path, and Qwen comes from the model cache (the session's, see
    # tests/conftest.py); the answerability check is on, as wherever policy-qa[llm] is installed.
    settings = Settings(data_dir=REPO / ".policy-qa", judge="auto")
    results = run(specs, options, settings)
    names = set(results["sets"])
    expected = dict(BASELINE, figures={k: v for k, v in BASELINE["figures"].items() if k in names})
    assert expected["figures"], "the baseline has no figures for these sets"
    problems = regressions(results, expected)
    assert not problems, "policy-qa got worse than eval/baseline.json:\n" + "\n".join(problems)


def _specs(datasets: bool) -> list[SetSpec]:
    specs = [SetSpec(**s) for s in BASELINE["run"]["sets"]]
    return [s for s in specs if (s.name in DATASET_NAMES) == datasets]


def test_no_regression_on_the_bundled_set(tmp_path: Path) -> None:
    _gate(tmp_path, _specs(datasets=False))


@pytest.mark.skipif(
    not DATASETS.is_dir(),
    reason=f"shared datasets not found at {DATASETS} (set POLICY_QA_DATASETS)",
)
def test_no_regression_on_dataset_samples(tmp_path: Path) -> None:
    _gate(tmp_path, _specs(datasets=True))
