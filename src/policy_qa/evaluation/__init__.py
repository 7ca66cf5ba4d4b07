"""Evaluation: question sets, public-dataset loaders, metrics, baselines, the runner and reports.

    datasets  question sets (our JSON Lines) and loaders for PolicyQA, KorQuAD, CLAP NQ
    metrics   pure scoring functions
    systems   what a system under test provides; the adapter for policy-qa's Assistant
    baseline  the plain LangChain pipeline and retrieval-only baselines (BM25, dense USE)
    runner    runs sets through systems, scores rows, the regression gate
    report    results.json, report.md, PNG charts
    cli       the ``policy-qa eval`` subcommand

Importing this package loads no model; systems load theirs when they index.
"""

from __future__ import annotations

from .datasets import EvalSet, Item, Turn, load_clapnq, load_korquad, load_policyqa, load_set
from .runner import RunOptions, SetSpec, make_baseline, regressions, run

__all__ = [
    "EvalSet",
    "Item",
    "RunOptions",
    "SetSpec",
    "Turn",
    "load_clapnq",
    "load_korquad",
    "load_policyqa",
    "load_set",
    "make_baseline",
    "regressions",
    "run",
]
