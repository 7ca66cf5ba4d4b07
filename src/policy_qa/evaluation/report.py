# Over 500 lines: every table and chart of a run, all read from one results dict.
"""Rendering results: ``results.json``, a Markdown report and PNG charts.

Owns the only matplotlib import (with the non-interactive Agg backend). It reads the dict that
``runner.run`` returns and must not compute new verdicts: every number shown is in the results.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .metrics import HEADLINE_METRICS, LOWER_IS_BETTER, wilson

log = logging.getLogger(__name__)

LABELS = {
    "recall@1": "Recall@1",
    "recall@5": "Recall@5",
    "recall@10": "Recall@10",
    "mrr@10": "MRR@10",
    "ndcg@10": "nDCG@10",
    "answer_present": "Gold answer present",
    "answer_correct": "Answer correct",
    "token_f1": "Token F1",
    "answer_recall": "Gold token recall",
    "citation_precision": "Citation precision",
    "citation_recall": "Citation recall",
    "refusal_rate": "Refusal rate (unanswerable) ↑",
    "false_refusal_rate": "False-refusal rate (answerable) ↓",
    "overall_correct": "Overall correct",
    "latency_p50": "Latency p50 (s) ↓",
    "latency_p95": "Latency p95 (s) ↓",
    "index_chunks": "Chunks indexed",
    "index_seconds": "Indexing time (s) ↓",
    "index_chunks_per_s": "Indexing chunks/s",
    "evidence_located": "Gold evidence located",
    "eval_seconds": "Time for the whole set (s)",
}
TABLE_METRICS = (
    "recall@1",
    "recall@5",
    "recall@10",
    "mrr@10",
    "ndcg@10",
    "answer_present",
    "answer_correct",
    "token_f1",
    "answer_recall",
    "citation_precision",
    "citation_recall",
    "refusal_rate",
    "false_refusal_rate",
    "overall_correct",
    "latency_p50",
    "latency_p95",
    "index_chunks",
    "index_seconds",
    "index_chunks_per_s",
    "eval_seconds",
    "evidence_located",
)
CHART_METRICS = HEADLINE_METRICS
SYSTEM_LABELS = {
    "policy-qa": "policy-qa",
    "baseline": "LangChain baseline (MiniLM)",
    "bm25": "BM25 (bm25s)",
    "use": "dense USE",
}
COLORS = {"policy-qa": "#1f77b4", "baseline": "#ff7f0e", "bm25": "#2ca02c", "use": "#9467bd"}


def write_all(results: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """Write results.json, report.md and the charts into ``out_dir``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"results": out / "results.json"}
    paths["results"].write_text(
        json.dumps(results, ensure_ascii=False, indent=1, default=_json_default), encoding="utf-8"
    )
    paths.update(charts(results, out))
    paths["report"] = out / "report.md"
    paths["report"].write_text(markdown(results, {k: v.name for k, v in paths.items()}), "utf-8")
    return paths


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | tuple):
        return list(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


# --- Markdown -------------------------------------------------------------------------------


def fmt(value: Any, metric: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if metric in ("index_chunks", "questions") or isinstance(value, bool | int):
        return str(value)
    if metric.startswith("latency"):
        return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"
    if metric in ("index_seconds", "index_chunks_per_s", "eval_seconds"):
        return f"{value:.1f}"
    return f"{value:.3f}"


def _delta(metric: str, ours: Any, theirs: Any) -> str:
    if not isinstance(ours, int | float) or not isinstance(theirs, int | float):
        return ""
    if metric.startswith(("index_", "latency", "eval_")):
        return ""
    diff = ours - theirs
    better = diff < 0 if metric in LOWER_IS_BETTER else diff > 0
    mark = "" if abs(diff) < 1e-9 else (" ✓" if better else " ✗")
    return f"{diff:+.3f}{mark}"


def summary_table(
    figures: dict[str, dict[str, Any]], metrics: Sequence[str] = TABLE_METRICS
) -> str:
    systems = list(figures)
    head = ["metric", *[SYSTEM_LABELS.get(s, s) for s in systems]]
    compare = "policy-qa" in figures and "baseline" in figures
    if compare:
        head.append("policy-qa − baseline")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for metric in metrics:
        values = [figures[s].get(metric) for s in systems]
        if all(v is None for v in values):
            continue
        cells = [LABELS.get(metric, metric), *[fmt(v, metric) for v in values]]
        if compare:
            cells.append(
                _delta(metric, figures["policy-qa"].get(metric), figures["baseline"].get(metric))
            )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def retrieval_table(results: dict[str, Any]) -> str:
    """Recall@5 / MRR@10 per set for every system (the retrieval-only baselines' figures)."""
    systems = [
        s for s in ("policy-qa", "baseline", "bm25", "use") if s in results["config"]["systems"]
    ]
    head = ["set", *[SYSTEM_LABELS.get(s, s) for s in systems]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, data in results["sets"].items():
        cells = [name]
        for s in systems:
            f = data["figures"].get(s, {})
            cells.append(f"{fmt(f.get('recall@5'))} / {fmt(f.get('mrr@10'))}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def compact_table(results: dict[str, Any], system: str = "policy-qa") -> str:
    """The headline figures of one system per set (the table README.md shows)."""
    keys = (
        "recall@5",
        "mrr@10",
        "answer_correct",
        "citation_precision",
        "citation_recall",
        "refusal_rate",
        "false_refusal_rate",
        "latency_p50",
    )
    head = ["set", "system", *[LABELS[k].replace(" ↑", "").replace(" ↓", "") for k in keys]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, data in results["sets"].items():
        for s in (system, "baseline"):
            f = data["figures"].get(s)
            if f is not None:
                lines.append("| " + " | ".join([name, s, *[fmt(f.get(k), k) for k in keys]]) + " |")
    return "\n".join(lines)


SPLIT_METRICS = (
    "recall@5",
    "answer_correct",
    "citation_precision",
    "refusal_rate",
    "false_refusal_rate",
    "latency_p50",
    "latency_p95",
)


def _split_key(name: str) -> tuple[str, str] | None:
    # Mirrors runner.split_partner (the report must not import the runner's heavy imports).
    base, _, part = name.partition("@")
    if part in ("tune", "heldout"):
        return base, part
    if name in ("daedeok", "daedeok-heldout"):
        return "daedeok", "tune" if name == "daedeok" else "heldout"
    return None


def split_table(results: dict[str, Any], system: str = "policy-qa") -> str:
    """Tune against held-out figures of ``system`` for every set run in parts, with the gap.

    Empty when no set of the run is one part of a frozen split. A figure on the tune part is
    what tuning bought; the held-out one is what a user with new questions gets.
    """
    pairs: dict[str, dict[str, dict[str, Any]]] = {}
    for name, data in results["sets"].items():
        key = _split_key(name)
        figures = data["figures"].get(system)
        if key is not None and figures is not None:
            pairs.setdefault(key[0], {})[key[1]] = figures
    if not pairs:
        return ""
    head = ["set", "metric", "tune", "held-out", "gap (held-out − tune)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for base, parts in pairs.items():
        for metric in SPLIT_METRICS:
            tune = parts.get("tune", {}).get(metric)
            held = parts.get("heldout", {}).get(metric)
            if tune is None and held is None:
                continue
            gap = (
                f"{held - tune:+.3f}"
                if isinstance(tune, int | float) and isinstance(held, int | float)
                else "–"
            )
            label = LABELS[metric].replace(" ↑", "").replace(" ↓", "")
            lines.append(
                f"| {base} | {label} | {fmt(tune, metric)} | {fmt(held, metric)} | {gap} |"
            )
    return "\n".join(lines)


def _type_table(data: dict[str, Any]) -> str:
    systems = [s for s in ("policy-qa", "baseline") if s in data["figures"]]
    if not systems:
        return ""
    types = sorted({t for s in systems for t in data["figures"][s].get("by_type", {})})
    head = ["type", "n", *[f"{s} correct" for s in systems], *[f"{s} R@5" for s in systems]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for t in types:
        per = [data["figures"][s]["by_type"].get(t, {}) for s in systems]
        n = per[0].get("n", "")
        lines.append(
            "| "
            + " | ".join(
                [
                    t,
                    str(n),
                    *[fmt(p.get("correct")) for p in per],
                    *[fmt(p.get("recall@5")) for p in per],
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def _quote(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("|", "\\|")


def _gold(row: dict[str, Any]) -> str:
    golds = [" + ".join(g) if isinstance(g, list) else g for g in row["gold_answers"]]
    return " | ".join(f"“{_quote(g, 160)}”" for g in golds) or "(unanswerable)"


def failures(data: dict[str, Any], system: str) -> list[str]:
    """Every question the system got wrong, refused wrongly or failed to refuse, in detail."""
    lines: list[str] = []
    for row in data["rows"]:
        own = row["systems"].get(system)
        if own is None or own.get("correct", True):
            continue
        verdict = own.get("verdict", "wrong")
        lines.append(f"- **{row['id']}** ({row['type']}, {row['lang']}) — *{verdict}*")
        lines.append(f"  - Q: {_quote(row['question'])}")
        lines.append(f"  - Gold: {_gold(row)}")
        answer = own.get("answer") or ""
        lines.append(
            f"  - Answer{' (refused)' if own.get('abstained') else ''}: {_quote(answer, 400)}"
        )
        if own.get("retrieval_query") and own["retrieval_query"] != row["question"]:
            lines.append(f"  - Searched for: {_quote(own['retrieval_query'], 200)}")
        for n, c in enumerate(own.get("citations", []), start=1):
            ok = "✓" if c["correct"] else "✗"
            lines.append(
                f"  - [{n}] {ok} {c['source']} {c['start']}–{c['end']}: “{_quote(c['quote'], 200)}”"
            )
        if row["answerable"]:
            hit = own.get("first_hit")
            lines.append(
                f"  - First relevant passage at rank {hit}"
                if hit
                else "  - No relevant passage in the top 10"
            )
        extra = []
        if own.get("confidence") is not None:
            extra.append(f"confidence {own['confidence']:.3f}")
        if own.get("notes"):
            extra.append("notes: " + ", ".join(own["notes"]))
        if own.get("error"):
            extra.append("error: " + own["error"])
        if row["gold_evidence"] and own.get("evidence_located", "").startswith("0/"):
            extra.append("gold evidence not found in this system's text")
        if extra:
            lines.append("  - " + "; ".join(extra))
    return lines


def _missing_evidence(data: dict[str, Any]) -> list[str]:
    found = []
    for row in data["rows"]:
        systems = [
            name
            for name, own in row["systems"].items()
            if own.get("evidence_located", "0/0").split("/")[0]
            != own.get("evidence_located", "0/0").split("/")[1]
        ]
        if systems:
            found.append(f"{row['id']} ({', '.join(systems)})")
    return found


def _failure_table(data: dict[str, Any], system: str) -> list[str]:
    lines = ["| id | verdict | question | answer (start) |", "|---|---|---|---|"]
    n = 0
    for row in data["rows"]:
        own = row["systems"].get(system)
        if own is None or own.get("correct", True):
            continue
        n += 1
        lines.append(
            f"| {row['id']} | {own.get('verdict', '')} | {_quote(row['question'], 120)} | "
            f"{_quote(own.get('answer') or '', 120)} |"
        )
    return lines if n else []


def refusal_counts(data: dict[str, Any], system: str = "policy-qa") -> str:
    """How many questions ``system`` refused, each way, with 95% (Wilson) intervals: a set of
    100 answerable questions measures a false-refusal rate to about ±6 points, so whether one
    sample lands above or below a target says little on its own."""
    rows = [r for r in data["rows"] if system in r["systems"]]
    parts = []
    for answerable, what in ((False, "unanswerable"), (True, "answerable")):
        flags = [
            bool(r["systems"][system].get("abstained"))
            for r in rows
            if r["answerable"] is answerable
        ]
        if flags:
            k, n = sum(flags), len(flags)
            lo, hi = wilson(k, n)
            parts.append(f"{k} of {n} {what} ({fmt(k / n)}, 95% interval {fmt(lo)}–{fmt(hi)})")
    if not parts:
        return ""
    return f"{SYSTEM_LABELS.get(system, system)} refused {' and '.join(parts)}."


def markdown(results: dict[str, Any], files: dict[str, str] | None = None) -> str:
    files = files or {}
    cfg = results["config"]
    out = ["# policy-qa evaluation", ""]
    out.append(
        f"Run {cfg['created']} · systems: {', '.join(cfg['systems'])} · seed {cfg['seed']} · "
        f"PolicyQA scoping {'on' if cfg['scope'] else 'off'} · "
        f"answerability check {cfg.get('answerability_check', 'off')} · "
        f"{cfg.get('seconds', '?')} s"
    )
    out.append("")
    out.append(
        "How to read it: each figure is policy-qa against the plain LangChain pipeline "
        "(RecursiveCharacterTextSplitter 1,000/200, MiniLM, Chroma top-4, answer = top chunk, "
        "never refuses); BM25 and dense USE are retrieval-only. Definitions are in "
        "`eval/README.md`. ✓/✗ in the last column: policy-qa better/worse than the baseline."
    )
    out += ["", "## Headline", "", compact_table(results), ""]
    split = split_table(results)
    if split:
        out += ["## Tune against held-out (policy-qa)", "", split, ""]
    out += ["## Retrieval: Recall@5 / MRR@10", "", retrieval_table(results), ""]
    for name, data in results["sets"].items():
        s = data["set"]
        out.append(f"## Set `{name}`")
        out.append("")
        out.append(
            f"{s['questions']} questions ({s['answerable']} answerable, {s['unanswerable']} "
            f"unanswerable; {s['dialogues']} dialogues) over `{s['corpus']}`."
        )
        out += ["", summary_table(data["figures"]), ""]
        missing = _missing_evidence(data)
        if missing:
            out.append(
                "Gold evidence not found verbatim in a system's text (check these quotes; "
                "those questions fall back to answer containment): " + "; ".join(missing) + "."
            )
            out.append("")
        types = _type_table(data)
        if types:
            out += ["By question type:", "", types, ""]
        counted = refusal_counts(data)
        if counted:
            out += [counted, ""]
        curve = data.get("refusal_curve")
        if curve:
            t, r, fr = curve["at_threshold"]
            obs_r, obs_fr = curve["observed"]
            out.append(
                f"Refusal threshold {t:.3f}: refusing below it gives refusal rate {fmt(r)} and "
                f"false-refusal rate {fmt(fr)}; observed (all refusal rules, with the "
                f"answerability check when it is on): {fmt(obs_r)} / {fmt(obs_fr)}."
            )
            out.append("")
    chart_names = [k for k in ("metrics", "retrieval", "refusal_curve", "latency") if k in files]
    if chart_names:
        out += ["## Charts", ""]
        out += [f"![{k}]({files[k]})" for k in chart_names]
        out.append("")
    out += ["## Failures", ""]
    out.append(
        "Every answerable question answered wrongly or refused, and every unanswerable question "
        "answered. Per-question rows for all systems are in `results.json`."
    )
    out.append("")
    for name, data in results["sets"].items():
        if "policy-qa" in data["figures"]:
            lines = failures(data, "policy-qa")
            out.append(f"### `{name}` — policy-qa ({sum(1 for x in lines if x.startswith('- '))})")
            out.append("")
            out += lines or ["None."]
            out.append("")
        if "baseline" in data["figures"]:
            table = _failure_table(data, "baseline")
            out.append(f"### `{name}` — LangChain baseline ({max(0, len(table) - 2)})")
            out.append("")
            out += table or ["None."]
            out.append("")
    return "\n".join(out)


# --- charts ---------------------------------------------------------------------------------


def charts(results: dict[str, Any], out: Path) -> dict[str, Path]:
    """Grouped bars per set, retrieval bars, refusal curves and latency; returns the files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths: dict[str, Path] = {}
    sets = list(results["sets"].items())
    if not sets:
        return paths

    fig, axes = plt.subplots(len(sets), 1, figsize=(12, 3.6 * len(sets)), squeeze=False)
    for ax, (name, data) in zip(axes[:, 0], sets, strict=True):
        _bars(ax, data["figures"], CHART_METRICS, f"{name}: policy-qa vs baselines")
    fig.tight_layout()
    paths["metrics"] = out / "metrics.png"
    fig.savefig(paths["metrics"], dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(12, 4), squeeze=False)
    for ax, metric in zip(axes[0], ("recall@5", "mrr@10"), strict=True):
        per_set = {name: data["figures"] for name, data in sets}
        _bars_by_set(ax, per_set, metric)
    fig.tight_layout()
    paths["retrieval"] = out / "retrieval.png"
    fig.savefig(paths["retrieval"], dpi=110)
    plt.close(fig)

    curves = [(name, data["refusal_curve"]) for name, data in sets if data.get("refusal_curve")]
    curves = [
        (n, c) for n, c in curves if c["observed"][0] is not None and c["observed"][1] is not None
    ]
    if curves:
        fig, ax = plt.subplots(figsize=(6.5, 5))
        for name, curve in curves:
            xs = [p[2] for p in curve["points"]]
            ys = [p[1] for p in curve["points"]]
            (line,) = ax.plot(xs, ys, marker=".", label=f"{name}: threshold sweep")
            t, r, fr = curve["at_threshold"]
            ax.scatter(
                [fr],
                [r],
                s=110,
                marker="*",
                color=line.get_color(),
                zorder=5,
                label=f"{name}: chosen threshold {t:.2f}",
            )
            ax.scatter(
                [curve["observed"][1]],
                [curve["observed"][0]],
                s=60,
                marker="o",
                facecolors="none",
                edgecolors=line.get_color(),
                zorder=5,
                label=f"{name}: observed",
            )
        ax.scatter([0], [0], marker="x", color=COLORS["baseline"], label="baseline (never refuses)")
        ax.set_xlabel("false-refusal rate on answerable questions (lower is better)")
        ax.set_ylabel("refusal rate on unanswerable questions (higher is better)")
        ax.set_xlim(-0.03, 1.03)
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
        ax.set_title("policy-qa refusals across evidence-score thresholds")
        fig.tight_layout()
        paths["refusal_curve"] = out / "refusal_curve.png"
        fig.savefig(paths["refusal_curve"], dpi=110)
        plt.close(fig)

    answering = [s for s in ("policy-qa", "baseline") if any(s in d["figures"] for _, d in sets)]
    if answering:
        fig, ax = plt.subplots(figsize=(8, 4))
        width = 0.8 / (2 * len(answering))
        for i, s in enumerate(answering):
            for j, (metric, hatch) in enumerate((("latency_p50", ""), ("latency_p95", "//"))):
                values = [_num(d["figures"].get(s, {}).get(metric)) * 1000 for _, d in sets]
                xs = [x + (2 * i + j - len(answering) + 0.5) * width for x in range(len(sets))]
                ax.bar(
                    xs,
                    values,
                    width,
                    color=COLORS.get(s),
                    hatch=hatch,
                    label=f"{SYSTEM_LABELS.get(s, s)} {metric[-3:]}",
                )
        ax.set_xticks(range(len(sets)), [n for n, _ in sets])
        ax.set_ylabel("ms per question")
        ax.set_title("Answer latency (p50 plain, p95 hatched)")
        ax.legend(fontsize=7)
        fig.tight_layout()
        paths["latency"] = out / "latency.png"
        fig.savefig(paths["latency"], dpi=110)
        plt.close(fig)
    return paths


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else math.nan


def _bars(ax: Any, figures: dict[str, dict[str, Any]], metrics: Sequence[str], title: str) -> None:
    systems = list(figures)
    width = 0.8 / max(1, len(systems))
    for i, s in enumerate(systems):
        values = [_num(figures[s].get(m)) for m in metrics]
        xs = [x + (i - (len(systems) - 1) / 2) * width for x in range(len(metrics))]
        ax.bar(xs, values, width, label=SYSTEM_LABELS.get(s, s), color=COLORS.get(s))
    ax.set_xticks(
        range(len(metrics)), [LABELS.get(m, m).replace(" (", "\n(") for m in metrics], fontsize=7
    )
    ax.set_ylim(0, 1.2)  # headroom so the legend never covers a bar
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, ncol=len(systems), loc="upper center")


def _bars_by_set(ax: Any, per_set: dict[str, dict[str, dict[str, Any]]], metric: str) -> None:
    names = list(per_set)
    systems = [
        s for s in ("policy-qa", "baseline", "bm25", "use") if any(s in f for f in per_set.values())
    ]
    width = 0.8 / max(1, len(systems))
    for i, s in enumerate(systems):
        values = [_num(per_set[n].get(s, {}).get(metric)) for n in names]
        xs = [x + (i - (len(systems) - 1) / 2) * width for x in range(len(names))]
        ax.bar(xs, values, width, label=SYSTEM_LABELS.get(s, s), color=COLORS.get(s))
    ax.set_xticks(range(len(names)), names)
    ax.set_ylim(0, 1.25)
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_title(LABELS.get(metric, metric))
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="upper center")
