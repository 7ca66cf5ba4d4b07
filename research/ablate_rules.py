"""Held-out ablation of answer.py's hand rules (issue 20: a rule stays only if it earns its place
on held-out data). Each arm switches one group of rules off and runs the same question sets
through the real pipeline with the answerability check on.

    python research/ablate_rules.py --workdir DIR [--arms base,no-quote-check,...]
        [--sets daedeok:all daedeok-heldout:all clapnq@heldout:100 ...]

The check's model calls are memoised on disk (DIR/model-calls.json), keyed by the exact
messages: the worker's greedy replies and P(yes) are deterministic, so an arm asks the model only
what an earlier arm did not. The first arm's indexes are copied for the others (no journal), so
every arm asks every question. Results: DIR/<arm>/results.json and a table on stdout
(docs/decisions/111-hand-rules-ablated-on-held-out-data.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from policy_qa import answer, query
from policy_qa.answer import ExtractiveAnswerer
from policy_qa.config import Settings, quiet_third_parties
from policy_qa.evaluation.runner import RunOptions, SetSpec, run
from policy_qa.llm import YesNoModel

REPO = Path(__file__).resolve().parents[1]
SETS = (
    "daedeok:all",
    "daedeok-heldout:all",
    "clapnq@heldout:100",
    "policyqa@heldout:100",
    "korquad@heldout:50",
)
FIGURES = ("answer_correct", "citation_precision", "refusal_rate", "false_refusal_rate")


def _never(*_: object) -> bool:
    return False


def _always(*_: object) -> bool:
    return True


# Each arm: (what it switches off, [(object, attribute, replacement)]).
ARMS: dict[str, tuple[str, list[tuple[Any, str, Any]]]] = {
    "base": ("nothing", []),
    "no-quote-check": (
        "the quote check after the check's yes (018, 019)",
        [(ExtractiveAnswerer, "wants_quote", staticmethod(_never))],
    ),
    "no-count-focus": (
        "'how many X' needs a number that counts X (confidence and quote check)",
        [(ExtractiveAnswerer, "_counts", _always)],
    ),
    "no-answer-type": (
        "the answer-type regexes in sentence scoring and the type-miss penalties",
        [(query, "answer_type", lambda _text: "other")],
    ),
    "no-type-penalty": (
        "the confidence penalties for a best sentence without the asked type",
        [(answer, "TYPE_MISMATCH_PENALTY", 1.0), (answer, "STRICT_TYPE_PENALTY", 1.0)],
    ),
    "no-unknown-names": (
        "names no indexed text contains lower the confidence and block the check (021)",
        [(answer, "_unknown_names", lambda _q, _lex: [])],
    ),
    "no-two-part": (
        "a runner-up sentence joins a two-part question's answer for a new item",
        [(answer, "_TWO_PART", re.compile(r"(?!)"))],
    ),
}


@contextlib.contextmanager
def patched(changes: list[tuple[Any, str, Any]]) -> Iterator[None]:
    saved = [(obj, name, obj.__dict__[name]) for obj, name, _ in changes]
    try:
        for obj, name, value in changes:
            setattr(obj, name, value)
        yield
    finally:
        for obj, name, value in saved:
            setattr(obj, name, value)


@contextlib.contextmanager
def memoised_model(path: Path) -> Iterator[dict[str, Any]]:
    """YesNoModel's p_yes and reply answered from ``path`` when asked before."""
    memo: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    p_yes, reply = YesNoModel.p_yes, YesNoModel.reply

    def remembered(kind: str, call: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(self: YesNoModel, messages: list[dict[str, str]], **kw: Any) -> Any:
            key = json.dumps([kind, messages, kw], ensure_ascii=False, sort_keys=True)
            if key not in memo:
                memo[key] = call(self, messages, **kw)
            return memo[key]

        return wrapper

    YesNoModel.p_yes = remembered("p_yes", p_yes)  # type: ignore[method-assign]
    YesNoModel.reply = remembered("reply", reply)  # type: ignore[method-assign]
    try:
        yield memo
    finally:
        YesNoModel.p_yes, YesNoModel.reply = p_yes, reply  # type: ignore[method-assign]
        path.write_text(json.dumps(memo, ensure_ascii=False))


def parse_set(text: str) -> SetSpec:
    name, _, limit = text.partition(":")
    base, _, part = name.partition("@")
    whole = limit == "all"
    if name.startswith("daedeok"):
        return SetSpec(name, whole=whole)
    return SetSpec(base, limit=None if whole else int(limit), whole=whole, part=part or None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--sets", nargs="+", default=list(SETS))
    parser.add_argument("--datasets-dir", type=Path, default=REPO.parent / "shared" / "datasets")
    args = parser.parse_args()
    quiet_third_parties()
    work: Path = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    specs = [parse_set(s) for s in args.sets]
    options = RunOptions(
        systems=("policy-qa",), datasets_dir=args.datasets_dir, progress=False, seed=0
    )
    settings = Settings.from_env(data_dir=work / "data", judge="on")
    arms = args.arms.split(",")
    first = work / arms[0]
    for arm in arms:
        out = work / arm / "results.json"
        if out.exists():
            continue
        arm_dir = work / arm / "sets"
        if arm != arms[0] and (first / "sets").exists() and not arm_dir.exists():
            # The first arm's indexes, without its journals: every question is asked again.
            shutil.copytree(
                first / "sets", arm_dir, ignore=shutil.ignore_patterns("journal-*", "corpus")
            )
        with memoised_model(work / "model-calls.json"), patched(ARMS[arm][1]):
            results = run(specs, options, settings, arm_dir, resume=True)
        out.write_text(json.dumps(results, indent=1, default=str))
        print(f"arm {arm} done in {results['config']['seconds']} s", flush=True)
    report(work, arms)


def report(work: Path, arms: list[str]) -> None:
    table: dict[str, dict[str, Any]] = {}
    for arm in arms:
        path = work / arm / "results.json"
        if path.exists():
            sets = json.loads(path.read_text())["sets"]
            table[arm] = {name: data["figures"]["policy-qa"] for name, data in sets.items()}
    names = list(next(iter(table.values())))
    print("| arm | switches off | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    legend = "correct / cit. prec. / unans. refused / false ref."
    print("| | | " + " | ".join(legend for _ in names))
    for arm, sets in table.items():
        cells: list[str] = []
        for name in names:
            f = sets[name]
            cells.append(" / ".join(_fmt(f.get(k)) for k in FIGURES))
        print(f"| {arm} | {ARMS[arm][0]} | " + " | ".join(cells) + " |")


def _fmt(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


if __name__ == "__main__":
    main()
