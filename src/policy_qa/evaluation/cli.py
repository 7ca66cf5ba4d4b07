"""The ``policy-qa eval`` subcommand: argument parsing and a thin handler over ``runner``.

The main ``policy_qa.cli`` calls ``add_parser(subparsers)``, sets up logging and turns
``PolicyQAError`` into a clean exit; this module only parses, runs and says where the report is.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..config import JUDGE_MODES, Settings, quiet_third_parties
from ..errors import ConfigError
from .datasets import DATASET_NAMES, PARTS
from .runner import REPO_ROOT, SYSTEM_NAMES, RunOptions, SetSpec, make_baseline, regressions, run

DATASETS_ENV = "POLICY_QA_DATASETS"


def default_datasets_dir() -> Path:
    """``$POLICY_QA_DATASETS``, else ``../shared/datasets`` beside the project folder."""
    # Read here rather than in Settings: it is where evaluation data lives, not a knob of the
    # assistant, and only this entry point needs it.
    configured = os.environ.get(DATASETS_ENV)
    return Path(configured) if configured else REPO_ROOT.parent / "shared" / "datasets"


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``eval`` on the main CLI's subparsers."""
    parser = subparsers.add_parser(
        "eval",
        help="score policy-qa and its baselines on question sets",
        description=(
            "Run question sets through policy-qa and the baselines; write results.json, "
            "report.md and PNG charts. SET is a .jsonl question set (see eval/README.md) or "
            "one of: daedeok (eval/daedeok.jsonl), policyqa, clapnq, korquad (read from "
            "--datasets-dir)."
        ),
    )
    parser.add_argument(
        "sets",
        nargs="+",
        metavar="SET",
        help="question set path or name; NAME:N limits that set to N, NAME:all takes all of it",
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help="questions per set, sampled with --seed (default: all of a .jsonl set, 50 of a "
        "dataset)",
    )
    parser.add_argument("--out", type=Path, default=Path("eval-results"), help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    parser.add_argument(
        "--datasets-dir",
        type=Path,
        default=None,
        help=f"folder with policyqa/, clapnq/, korquad1/ "
        f"(default ${DATASETS_ENV} or ../shared/datasets)",
    )
    parser.add_argument(
        "--systems",
        default=",".join(SYSTEM_NAMES),
        help=f"comma-separated, from {','.join(SYSTEM_NAMES)} (default: all)",
    )
    parser.add_argument(
        "--groups",
        type=int,
        default=None,
        help="sample this many policies (policyqa) or articles (korquad) before questions",
    )
    parser.add_argument(
        "--no-scope",
        action="store_true",
        help="ask PolicyQA questions of all policies instead of their own one",
    )
    parser.add_argument("--corpus", type=Path, default=None, help="corpus folder for .jsonl sets")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="keep indexes and generated corpora here (default: a temporary folder)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="go on with an earlier run of the same command in --workdir: questions it "
        "answered are read from its journal, not asked again",
    )
    parser.add_argument(
        "--check",
        type=Path,
        default=None,
        metavar="BASELINE_JSON",
        help="exit 1 when a gated figure is worse than this baseline by more than its tolerance",
    )
    parser.add_argument(
        "--save-baseline",
        type=Path,
        default=None,
        metavar="BASELINE_JSON",
        help="write this run's policy-qa figures as the regression baseline",
    )
    parser.add_argument(
        "--tolerance",
        type=_tolerance,
        default=0.05,
        help="for --save-baseline: a number, or per set like 'daedeok=0.03,default=0.09'",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--llm",
        choices=("none", "openai", "llamacpp"),
        help="the answer backend policy-qa is scored with (default: POLICY_QA_LLM or none)",
    )
    parser.add_argument("--llm-base-url", help="OpenAI-compatible server for --llm openai")
    parser.add_argument("--llm-model", help="model name for --llm openai")
    parser.add_argument("--llm-model-path", help="a GGUF file for --llm llamacpp")
    parser.add_argument(
        "--judge",
        choices=JUDGE_MODES,
        help="policy-qa's answerability check on borderline refusals (default: POLICY_QA_JUDGE "
        "or auto, on when policy-qa[llm] is installed)",
    )
    parser.set_defaults(func=handle)


def _tolerance(text: str) -> float | dict[str, float]:
    try:
        if "=" not in text:
            return float(text)
        pairs = (part.split("=", 1) for part in text.split(",") if part.strip())
        return {name.strip(): float(value) for name, value in pairs}
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"tolerance must be a number or 'set=number,...', got {text!r}"
        ) from None


def _spec(text: str, limit: int | None, groups: int | None) -> list[SetSpec]:
    """``NAME[@PART]``, with ``:LIMIT`` (a per-set limit beats --limit) or ``:all``.

    A public dataset named bare runs both parts of its frozen split (eval/splits.json), so
    the report can set the held-out figures beside the tune ones; ``@tune`` or ``@heldout``
    runs one part and ``@all`` the whole set, split or not.
    """
    name, _, own = text.rpartition(":")
    whole = False
    if name and own.lower() == "all":
        whole, limit, text = True, None, name
    elif name and own.isdigit():
        if int(own) < 1:
            raise ConfigError(f"the limit in {text!r} must be at least 1")
        limit, text = int(own), name
    base, _, part = text.partition("@")
    if part and part not in (*PARTS, "all"):
        raise ConfigError(f"{text!r}: the part after @ must be one of {', '.join(PARTS)}, all")
    if base not in DATASET_NAMES:
        if part:
            raise ConfigError(f"{text!r}: only {', '.join(DATASET_NAMES)} have parts")
        return [SetSpec(text, limit=limit, groups=groups, whole=whole)]
    parts: list[str | None] = [None] if part == "all" else [part] if part else list(PARTS)
    return [SetSpec(base, limit=limit, groups=groups, whole=whole, part=p) for p in parts]


def options_from_args(args: argparse.Namespace) -> tuple[list[SetSpec], RunOptions]:
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit must be at least 1, got {args.limit}")
    systems = tuple(s.strip() for s in str(args.systems).split(",") if s.strip())
    specs = [spec for name in args.sets for spec in _spec(name, args.limit, args.groups)]
    options = RunOptions(
        systems=systems,
        seed=args.seed,
        scope=not args.no_scope,
        datasets_dir=args.datasets_dir or default_datasets_dir(),
        corpus=args.corpus,
        progress=not args.no_progress,
    )
    return specs, options


def handle(args: argparse.Namespace) -> int:
    quiet_third_parties()
    from .report import write_all

    specs, options = options_from_args(args)
    settings = Settings.from_env(
        llm=args.llm,
        llm_base_url=args.llm_base_url,
        llm_model=args.llm_model,
        llm_model_path=args.llm_model_path,
        judge=args.judge,
    )
    results = run(specs, options, settings, workdir=args.workdir, resume=args.resume)
    paths = write_all(results, args.out)
    print(f"report: {paths['report']}")
    print(f"results: {paths['results']}")
    status = 0
    if args.save_baseline:
        baseline = make_baseline(results, tolerance=args.tolerance)
        args.save_baseline.write_text(json.dumps(baseline, indent=1) + "\n", encoding="utf-8")
        print(f"baseline written: {args.save_baseline}")
    if args.check:
        try:
            expected = json.loads(args.check.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read baseline {args.check}: {exc}") from None
        problems = regressions(results, expected)
        for problem in problems:
            print(f"regression: {problem}", file=sys.stderr)
        if problems:
            status = 1
        else:
            print("no regression against", args.check)
    return status
