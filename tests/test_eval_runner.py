"""The eval runner end to end: real models, real Chroma, a few questions."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from policy_qa.config import Settings
from policy_qa.errors import ConfigError
from policy_qa.evaluation import cli as eval_cli
from policy_qa.evaluation import metrics as M
from policy_qa.evaluation.metrics import wilson
from policy_qa.evaluation.report import markdown, refusal_counts
from policy_qa.evaluation.runner import RunOptions, SetSpec, resolve_set, run

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="policy-qa")
    eval_cli.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(list(argv))


def test_cli_runs_bundled_set_and_writes_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    args = _parse(
        "eval", "daedeok", "--limit", "6", "--seed", "3", "--out", str(out), "--no-progress"
    )
    assert args.func(args) == 0
    assert "report:" in capsys.readouterr().out
    for name in ("results.json", "report.md", "metrics.png", "retrieval.png", "latency.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    results = json.loads((out / "results.json").read_text())
    data = results["sets"]["daedeok"]
    assert set(data["figures"]) == {"policy-qa", "baseline", "bm25", "use"}
    assert data["set"]["items"] == 6
    rows = data["rows"]
    assert len(rows) == data["set"]["questions"]
    for row in rows:
        ours, plain = row["systems"]["policy-qa"], row["systems"]["baseline"]
        assert "answer" in ours and "latency" in ours and "confidence" in ours
        assert plain["abstained"] is False and len(plain["citations"]) == 1
        assert "answer" not in row["systems"]["bm25"]
        # the row carries what is needed to re-score it by hand
        if row["answerable"] and not ours["abstained"]:
            assert ours["answer_present"] == M.answer_present(ours["answer"], row["gold_answers"])
        for c in ours["citations"]:
            assert c["quote"] and c["end"] > c["start"]
    figures = data["figures"]["policy-qa"]
    answerable = [r["systems"]["policy-qa"] for r in rows if r["answerable"]]
    assert figures["answer_correct"] == pytest.approx(M.rate([a["correct"] for a in answerable]))
    assert figures["recall@5"] == pytest.approx(M.mean([a["recall@5"] for a in answerable]))
    report = (out / "report.md").read_text()
    assert "## Failures" in report and "policy-qa − baseline" in report
    assert "Recall@5 / MRR@10" in report


def test_runner_on_a_user_set_with_its_own_corpus(tmp_path: Path) -> None:
    corpus = tmp_path / "docs"
    (corpus / "shop").mkdir(parents=True)
    (corpus / "shop" / "privacy.txt").write_text(
        "Privacy Policy\n\nWe keep your order history for five years. "
        "We share your address with the courier that delivers your parcel.\n\n"
        "Cookies\n\nWe use cookies to remember the contents of your basket.\n",
        encoding="utf-8",
    )
    (corpus / "other.txt").write_text(
        "Refunds\n\nRefunds are paid within 14 days of the return arriving.\n", encoding="utf-8"
    )
    rows = [
        {"set": {"name": "mine", "corpus": "docs"}},
        {
            "id": "keep",
            "question": "How long is the order history kept?",
            "answers": ["five years"],
            "evidence": ["We keep your order history for five years."],
            "source": "shop/privacy.txt",
            "within": "shop/",
        },
        {
            "id": "refund",
            "question": "When are refunds paid?",
            "answers": ["within 14 days"],
            "evidence": ["Refunds are paid within 14 days of the return arriving."],
            "source": "other.txt",
        },
        {"id": "none", "type": "unanswerable", "question": "Which payment cards are accepted?"},
        {
            "id": "typo",
            "question": "What are cookies used for?",
            "answers": ["basket"],
            "evidence": ["We use cookies to remember your basket."],
        },  # not verbatim: no source
        {
            "id": "talk",
            "type": "dialogue",
            "source": "shop/privacy.txt",
            "turns": [
                {
                    "question": "What do you use cookies for?",
                    "answers": ["remember the contents of your basket"],
                    "evidence": ["We use cookies to remember the contents of your basket."],
                },
                {"question": "And who gets my address?", "answers": ["courier"]},
            ],
        },
    ]
    path = tmp_path / "mine.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    options = RunOptions(systems=("policy-qa", "baseline", "bm25"), progress=False)
    results = run([SetSpec(str(path))], options, Settings(data_dir=tmp_path / "data", judge="off"))
    data = results["sets"]["mine"]
    assert data["set"]["questions"] == 6 and data["set"]["dialogues"] == 1
    by_id = {r["id"]: r for r in data["rows"]}
    assert set(by_id) == {"keep", "refund", "none", "typo", "talk#1", "talk#2"}
    # evidence that is not verbatim is reported, and relevance falls back to the answer text
    typo = by_id["typo"]["systems"]["baseline"]
    assert typo["evidence_located"] == "0/1" and typo["first_hit"] == 1
    for system in ("policy-qa", "baseline", "bm25"):
        keep = by_id["keep"]["systems"][system]
        assert keep["evidence_located"] == "1/1"
        # scoped to shop/: nothing from other.txt may come back
        assert all(p["source"].startswith("shop/") for p in keep["retrieved"])
    ours = by_id["keep"]["systems"]["policy-qa"]
    assert ours["first_hit"] == 1 and ours["correct"], ours
    assert data["figures"]["baseline"]["refusal_rate"] == 0.0
    assert "refusal_curve" in data
    text = markdown(results)
    assert "`mine`" in text and "Gold evidence not found verbatim" in text and "typo (" in text
    assert "answerability check off" in text
    # Refusals are counted each way, with their 95% intervals.
    ours = [r for r in data["rows"] if "policy-qa" in r["systems"]]
    wrong = sum(r["systems"]["policy-qa"]["abstained"] for r in ours if r["answerable"])
    answerable = sum(r["answerable"] for r in ours)
    lo, hi = wilson(wrong, answerable)
    assert f"{wrong} of {answerable} answerable ({wrong / answerable:.3f}, 95% interval " in text
    assert f"{lo:.3f}–{hi:.3f})" in text


def test_bad_arguments_are_config_errors(tmp_path: Path) -> None:
    args = _parse("eval", "daedeok", "--systems", "policy-qa,gpt", "--out", str(tmp_path))
    with pytest.raises(ConfigError, match="unknown system"):
        args.func(args)
    args = _parse("eval", "no-such-set", "--out", str(tmp_path), "--systems", "bm25")
    with pytest.raises(ConfigError, match="no bundled question set"):
        args.func(args)
    args = _parse(
        "eval",
        "policyqa",
        "--datasets-dir",
        str(tmp_path / "x"),
        "--systems",
        "bm25",
        "--out",
        str(tmp_path),
    )
    with pytest.raises(ConfigError, match="not found"):
        args.func(args)


def test_refusal_counts_name_only_the_kinds_a_set_has() -> None:
    def row(answerable: bool, abstained: bool) -> dict[str, object]:
        return {"answerable": answerable, "systems": {"policy-qa": {"abstained": abstained}}}

    only_answerable = {"rows": [row(True, True), *(row(True, False) for _ in range(9))]}
    lo, hi = wilson(1, 10)
    assert refusal_counts(only_answerable) == (
        f"policy-qa refused 1 of 10 answerable (0.100, 95% interval {lo:.3f}–{hi:.3f})."
    )
    both = {"rows": [row(False, True), row(True, False)]}
    assert refusal_counts(both).startswith("policy-qa refused 1 of 1 unanswerable (1.000, ")
    assert "and 0 of 1 answerable (0.000, " in refusal_counts(both)
    assert refusal_counts({"rows": [row(True, False)]}, system="baseline") == ""


def test_name_all_takes_a_whole_dataset(tmp_path: Path) -> None:
    args = _parse(
        "eval", "clapnq:all", "daedeok:ALL", "policyqa:7", "--limit", "3", "--out", str(tmp_path)
    )
    specs, options = eval_cli.options_from_args(args)
    # A public set's bare name runs both parts of its frozen split (eval/splits.json).
    assert specs == [
        SetSpec("clapnq", whole=True, part="tune"),
        SetSpec("clapnq", whole=True, part="heldout"),
        SetSpec("daedeok", whole=True),
        SetSpec("policyqa", limit=7, part="tune"),
        SetSpec("policyqa", limit=7, part="heldout"),
    ]
    datasets = options.datasets_dir  # $POLICY_QA_DATASETS or ../shared/datasets, as in a run
    assert datasets is not None
    if not (datasets / "clapnq").is_dir():
        pytest.skip(f"shared datasets not found at {datasets}")
    whole = resolve_set(SetSpec("clapnq", whole=True), options, tmp_path / "whole")
    sample = resolve_set(SetSpec("clapnq"), options, tmp_path / "sample")
    lines = sum(
        len((datasets / "clapnq" / f"clapnq_dev_{kind}.jsonl").read_text().splitlines())
        for kind in ("answerable", "unanswerable")
    )
    assert len(whole.items) == lines > len(sample.items) == options.dataset_default_limit
