# Over 500 lines: running, scoring and aggregating a set are one loop (metrics.py scores).
"""Running question sets through the systems and turning their predictions into results.

The runner loads each set, builds each system over the set's corpus, asks every question
(dialogues turn by turn, each system carrying its own previous answers as history), scores
every prediction with ``metrics`` and keeps one row per question so that a person can read
every failure. ``results.json`` is the whole record; ``report`` renders it.

It also owns the regression gate: comparing a run's figures with a committed baseline.

It must not print (progress goes through tqdm on stderr, everything else through logging).
"""

from __future__ import annotations

import dataclasses
import logging
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

from ..config import Settings
from ..errors import ConfigError, PolicyQAError
from ..judge import check_enabled
from . import metrics as M
from .datasets import (
    DATASET_NAMES,
    PARTS,
    EvalSet,
    Item,
    Turn,
    describe,
    load_named,
    load_set,
    load_splits,
)
from .journal import Journal, check, fingerprint, journal_path
from .systems import History, IndexStats, Prediction, Retrieved, System

__all__ = [
    "ANSWERING",
    "DEFAULT_GATED",
    "LOWER_IS_BETTER",
    "REPO_ROOT",
    "SYSTEM_NAMES",
    "EvidenceLocator",
    "K",
    "RunOptions",
    "SetSpec",
    "TextSource",
    "aggregate",
    "build_systems",
    "by_type",
    "default_set_path",
    "make_baseline",
    "refusal_curve",
    "regressions",
    "resolve_set",
    "run",
    "run_set",
    "score_turn",
]

log = logging.getLogger(__name__)

SYSTEM_NAMES = ("policy-qa", "baseline", "bm25", "use")
ANSWERING = ("policy-qa", "baseline")
K = 10
BASELINE_STORE = "baseline-chroma"  # the plain pipeline's Chroma folder in a set's work folder
REPO_ROOT = Path(__file__).resolve().parents[3]

DEFAULT_GATED = M.HEADLINE_METRICS
LOWER_IS_BETTER = M.LOWER_IS_BETTER


@dataclass(frozen=True)
class SetSpec:
    """Which set to run: a .jsonl path or a name (``daedeok``, ``policyqa``, ...)."""

    name: str
    limit: int | None = None
    groups: int | None = None  # policies (PolicyQA) / articles (KorQuAD) to sample first
    # Every question of a public dataset (NAME:all), where no limit means a sample of
    # RunOptions.dataset_default_limit: a rate measured on a sample moves from sample to sample.
    whole: bool = False
    # One part of the frozen split (eval/splits.json): "tune" or "heldout"; None: the whole set.
    part: str | None = None


@dataclass(frozen=True)
class RunOptions:
    systems: tuple[str, ...] = SYSTEM_NAMES
    seed: int = 0
    scope: bool = True
    datasets_dir: Path | None = None
    corpus: Path | None = None  # overrides the corpus folder of JSON Lines sets
    progress: bool = True
    dataset_default_limit: int = 50  # a public dataset without --limit would take hours

    def __post_init__(self) -> None:
        unknown = [s for s in self.systems if s not in SYSTEM_NAMES]
        if unknown or not self.systems:
            raise ConfigError(
                f"unknown system(s) {unknown or '(none)'}: choose from {', '.join(SYSTEM_NAMES)}"
            )


def default_set_path(name: str) -> Path:
    """Where a bundled set named ``name`` lives (``eval/<name>.jsonl`` of the project)."""
    for root in (REPO_ROOT, Path.cwd()):
        candidate = root / "eval" / f"{name}.jsonl"
        if candidate.is_file():
            return candidate
    raise ConfigError(f"no bundled question set called {name!r} (looked for eval/{name}.jsonl)")


SPLITS_PATH = REPO_ROOT / "eval" / "splits.json"


def split_partner(name: str) -> tuple[str, str] | None:
    """(base name, part) of a set that is one part of a frozen split, else None.

    ``policyqa@heldout`` is the held-out part of PolicyQA; the bundled sets pair up as
    ``daedeok`` (tune) and ``daedeok-heldout`` (held out).
    """
    base, _, part = name.partition("@")
    if part in PARTS:
        return base, part
    if name == "daedeok":
        return "daedeok", "tune"
    if name == "daedeok-heldout":
        return "daedeok", "heldout"
    return None


def resolve_set(spec: SetSpec, options: RunOptions, workdir: Path) -> EvalSet:
    """Load one set; public datasets write their corpus under ``workdir``."""
    if spec.name in DATASET_NAMES:
        if options.datasets_dir is None:
            raise ConfigError(f"{spec.name} needs --datasets-dir (or POLICY_QA_DATASETS)")
        limit = spec.limit if spec.limit is not None else options.dataset_default_limit
        return load_named(
            spec.name,
            options.datasets_dir,
            workdir / "corpus" / spec.name,
            limit=None if spec.whole else limit,
            seed=options.seed,
            scope=options.scope,
            groups=spec.groups,
            part=spec.part,
            splits=load_splits(SPLITS_PATH) if spec.part else None,
        )
    path = Path(spec.name)
    if path.suffix != ".jsonl":
        path = default_set_path(spec.name)
    loaded = load_set(path, corpus=options.corpus).sample(spec.limit, options.seed)
    return loaded if options.scope else loaded.without_scope()


# --- systems --------------------------------------------------------------------------------


def build_systems(names: Sequence[str], settings: Settings, workdir: Path) -> list[System]:
    from .baseline import BM25Baseline, DenseBaseline, LangChainBaseline
    from .systems import PolicyQASystem

    built: list[System] = []
    for name in names:
        if name == "policy-qa":
            built.append(PolicyQASystem(workdir / "policy-qa-index", settings))
        elif name == "baseline":
            built.append(LangChainBaseline(workdir=workdir / BASELINE_STORE))
        elif name == "bm25":
            built.append(BM25Baseline())
        elif name == "use":
            built.append(DenseBaseline("use", model_cache=settings.model_cache))
    return built


def _share_chunks(systems: Sequence[System], corpus: Path) -> None:
    """Baselines chunk the same way; cut once and hand the chunks to each of them."""
    from .baseline import BM25Baseline, DenseBaseline, LangChainBaseline, PlainChunks

    plain = [s for s in systems if isinstance(s, LangChainBaseline | BM25Baseline | DenseBaseline)]
    if plain:
        chunks = PlainChunks(corpus)
        for s in plain:
            s.use_chunks(chunks)


# --- scoring one question -------------------------------------------------------------------


class TextSource(Protocol):
    """Anything that returns its own text of a source: a ``System``, or an ``Assistant``."""

    def document_text(self, source: str) -> str: ...


class EvidenceLocator:
    """Gold evidence located in one system's text, cached per (source, quote).

    Every system reports passages as offsets into *its own* text of a source, so the gold
    quotes are located in that same text (``metrics.locate``); a quote without a source is
    looked for in every file of ``corpus``.

    >>> gold = EvidenceLocator(assistant, Path("corpus"))
    >>> gold.span(source, "Daedeok Research Complex was established in 1973 ...")  # a Span
    """

    def __init__(self, system: TextSource, corpus: Path) -> None:
        self._system = system
        self._corpus = corpus
        self._cache: dict[tuple[str | None, str], M.Span | None] = {}
        self._sources: list[str] | None = None

    def _all_sources(self) -> list[str]:
        if self._sources is None:
            self._sources = sorted(
                p.relative_to(self._corpus).as_posix()
                for p in self._corpus.rglob("*")
                if p.is_file() and not p.name.startswith(".") and not p.name.endswith(".meta.json")
            )
        return self._sources

    def _text(self, source: str) -> str | None:
        try:
            return self._system.document_text(source)
        except (KeyError, PolicyQAError):
            return None

    def span(self, source: str | None, quote: str) -> M.Span | None:
        """Where ``quote`` stands in the system's text of ``source`` (None: not found)."""
        key = (source, quote)
        if key not in self._cache:
            found = None
            for candidate in [source] if source else self._all_sources():
                text = self._text(candidate)
                where = M.locate(quote, text) if text is not None else None
                if where:
                    found = M.Span(candidate, *where)
                    break
            self._cache[key] = found
        return self._cache[key]


def score_turn(
    system: System,
    gold: EvidenceLocator,
    item: Item,
    turn: Turn,
    retrieved: Sequence[Retrieved],
    prediction: Prediction | None,
    latency: float | None,
    long_answers: bool,
) -> dict[str, Any]:
    """One row of results: what the system did with one question, and each verdict."""
    located = [gold.span(item.source, quote) for quote in turn.evidence]
    evidence = [s for s in located if s is not None]
    spans = [M.Span(r.source, r.start, r.end) for r in retrieved]
    covered = M.coverage(spans, [r.text for r in retrieved], evidence, turn.answers, item.source)
    n_gold = len(evidence) or (1 if turn.answers else 0)
    row: dict[str, Any] = {
        "evidence_located": f"{len(evidence)}/{len(turn.evidence)}",
        "retrieved": [
            {"rank": i, "source": r.source, "start": r.start, "end": r.end, "covers": sorted(c)}
            for i, (r, c) in enumerate(zip(retrieved, covered, strict=True), start=1)
        ],
        "first_hit": M.first_hit_rank(covered),
    }
    if turn.answerable and n_gold:
        row.update(
            {
                "recall@1": M.recall_at_k(covered, n_gold, 1),
                "recall@5": M.recall_at_k(covered, n_gold, 5),
                "recall@10": M.recall_at_k(covered, n_gold, K),
                "mrr@10": M.mrr_at_k(covered, K),
                "ndcg@10": M.ndcg_at_k(covered, n_gold, K),
            }
        )
    if prediction is None:
        return row
    answer = "" if prediction.abstained else prediction.answer
    citations = []
    for c in prediction.citations:
        verdict = (
            M.citation_correct(c.text, M.Span(c.source, c.start, c.end), turn.answers, evidence)
            if turn.answerable
            else False
        )
        citations.append(
            {
                "source": c.source,
                "start": c.start,
                "end": c.end,
                "quote": c.text,
                "correct": verdict,
            }
        )
    row.update(
        {
            "answer": prediction.answer,
            "abstained": prediction.abstained,
            "confidence": prediction.confidence,
            "citations": citations,
            "notes": list(prediction.notes),
            "retrieval_query": prediction.retrieval_query,
            "latency": latency,
        }
    )
    if turn.answerable:
        if turn.answers:
            present = M.answer_present(answer, turn.answers)
            recall = M.token_recall(answer, turn.answers)
            row["answer_present"] = present
            row["token_f1"] = M.token_f1(answer, turn.answers)
            row["answer_recall"] = recall
            row["correct"] = (recall >= 0.5) if long_answers else present
        else:  # evidence only: judged by its citations
            row["correct"] = not prediction.abstained and any(c["correct"] for c in citations)
        if prediction.abstained:
            row["correct"] = False
        row["verdict"] = (
            "correct" if row["correct"] else ("false refusal" if prediction.abstained else "wrong")
        )
    else:
        row["correct"] = prediction.abstained
        row["verdict"] = "refused" if prediction.abstained else "answered unanswerable"
    return row


def aggregate(rows: Sequence[dict[str, Any]], index: IndexStats | None) -> dict[str, Any]:
    """A system's figures on a set, from its rows (``None`` where nothing was measured)."""
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    figures: dict[str, Any] = {
        "questions": len(rows),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
    }
    for key in ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10"):
        figures[key] = M.mean([r[key] for r in answerable if key in r])
    located = [r["evidence_located"].split("/") for r in rows if r["evidence_located"] != "0/0"]
    figures["evidence_located"] = (
        sum(int(a) for a, _ in located) / sum(int(b) for _, b in located) if located else None
    )
    if rows and "abstained" in rows[0]:
        with_answers = [r for r in answerable if "answer_present" in r]
        figures["answer_present"] = M.rate([r["answer_present"] for r in with_answers])
        figures["token_f1"] = M.mean([r["token_f1"] for r in with_answers])
        figures["answer_recall"] = M.mean([r["answer_recall"] for r in with_answers])
        figures["answer_correct"] = M.rate([r["correct"] for r in answerable])
        precision, recall = M.citation_scores(
            [[c["correct"] for c in r["citations"]] for r in answerable]
        )
        figures["citation_precision"] = precision
        figures["citation_recall"] = recall
        figures["refusal_rate"] = M.rate([r["abstained"] for r in unanswerable])
        figures["false_refusal_rate"] = M.rate([r["abstained"] for r in answerable])
        figures["overall_correct"] = M.rate([r["correct"] for r in rows])
        latencies = [r["latency"] for r in rows if r.get("latency") is not None]
        figures["latency_p50"] = M.percentile(latencies, 50)
        figures["latency_p95"] = M.percentile(latencies, 95)
    if index is not None:
        figures["index_documents"] = index.documents
        figures["index_chunks"] = index.chunks
        figures["index_seconds"] = index.seconds
        figures["index_chunks_per_s"] = M.throughput(index.chunks, index.seconds)
    return figures


def by_type(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Correctness and Recall@5 per question type (answerable and not)."""
    out: dict[str, dict[str, Any]] = {}
    for t in sorted({r["type"] for r in rows}):
        group = [r for r in rows if r["type"] == t]
        out[t] = {
            "n": len(group),
            "correct": M.rate([r["correct"] for r in group if "correct" in r]),
            "recall@5": M.mean([r["recall@5"] for r in group if "recall@5" in r]),
        }
    return out


# --- running --------------------------------------------------------------------------------


class _Bar:
    """tqdm on stderr, or nothing."""

    def __init__(self, enabled: bool, total: int, desc: str) -> None:
        self._bar: Any = None
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, file=sys.stderr, unit="q", dynamic_ncols=True)

    def step(self, label: str) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(label, refresh=False)
            self._bar.update(1)

    def index_progress(self, system: str) -> Callable[[int, int, str], None]:
        def progress(done: int, total: int, label: str) -> None:
            if self._bar is not None:
                self._bar.set_postfix_str(f"indexing {system} {done}/{total}")

        return progress

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def run_set(
    eval_set: EvalSet,
    systems: Sequence[System],
    *,
    progress: bool = True,
    journal: tuple[Path, str] | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """Index the set's corpus with every system, ask every question, score every answer.

    With ``journal`` (a folder and the run's fingerprint) every scored answer is written there
    as it comes; with ``resume`` too, the answers an earlier run wrote are read back instead of
    asked again (journal.py).
    """
    _share_chunks(systems, eval_set.corpus)
    turns = [(item, i, turn) for item in eval_set.items for i, turn in enumerate(item.turns)]
    bar = _Bar(progress, len(turns) * len(systems), eval_set.name)
    rows: list[dict[str, Any]] = []
    for item, i, turn in turns:
        rows.append(
            {
                "id": item.row_id(i),
                "item": item.id,
                "turn": i + 1,
                "type": item.type,
                "lang": item.lang,
                "question": turn.question,
                "answerable": turn.answerable,
                "gold_answers": [a if isinstance(a, str) else list(a) for a in turn.answers],
                "gold_evidence": list(turn.evidence),
                "source": item.source,
                "within": item.within,
                "systems": {},
            }
        )
    figures: dict[str, Any] = {}
    indexing: dict[str, Any] = {}
    try:
        for system in systems:
            began = time.perf_counter()
            log.info("indexing %s for %s", eval_set.corpus, system.name)
            stats = system.index(eval_set.corpus, progress=bar.index_progress(system.name))
            indexing[system.name] = dataclasses.asdict(stats)
            gold = EvidenceLocator(system, eval_set.corpus)
            history: list[tuple[str, str]] = []
            with _journal(journal, system.name, resume) as written:
                for row, (item, i, turn) in zip(rows, turns, strict=True):
                    if i == 0:
                        history = []
                    done = written.get(row["id"], turn.question) if written else None
                    if done is None:
                        done = _ask_one(system, gold, item, turn, history, eval_set.long_answers)
                        # A failed question (a store that went away, say) is asked again on
                        # resume, not read back as a wrong answer.
                        if written and "error" not in done:
                            written.add(row["id"], turn.question, done)
                    elif system.answers:
                        history.append((turn.question, done["answer"]))
                    row["systems"][system.name] = done
                    bar.step(system.name)
                resumed = written.resumed if written else 0
            own = [_flatten(r, system.name) for r in rows]
            unlocated = [r["id"] for r in own if _unlocated(r["evidence_located"])]
            if unlocated:
                log.warning(
                    "%s: gold evidence of %d question(s) not found in %s's text: %s",
                    eval_set.name,
                    len(unlocated),
                    system.name,
                    ", ".join(unlocated[:10]),
                )
            figures[system.name] = aggregate(own, stats)
            figures[system.name]["by_type"] = by_type(own)
            figures[system.name]["eval_seconds"] = time.perf_counter() - began
            # Answers read back from an earlier run: their latencies are that run's.
            figures[system.name]["resumed"] = resumed
            system.close()
    finally:
        bar.close()
        for system in systems:
            system.close()
    result: dict[str, Any] = {
        "set": describe([eval_set])[0],
        "indexing": indexing,
        "figures": figures,
        "rows": rows,
    }
    if "policy-qa" in figures:
        result["refusal_curve"] = refusal_curve(rows, systems)
    return result


@contextmanager
def _journal(
    journal: tuple[Path, str] | None, system: str, resume: bool
) -> Iterator[Journal | None]:
    if journal is None:
        yield None
        return
    folder, digest = journal
    with Journal(journal_path(folder, system), digest, resume=resume) as written:
        yield written


def _ask_one(
    system: System,
    gold: EvidenceLocator,
    item: Item,
    turn: Turn,
    history: list[tuple[str, str]],
    long_answers: bool,
) -> dict[str, Any]:
    past: History = list(history)
    error = None
    prediction: Prediction | None = None
    latency: float | None = None
    try:
        retrieved = system.retrieve(turn.question, past, item.within, K)
    except PolicyQAError as exc:
        retrieved, error = [], f"retrieve: {exc}"
    if system.answers:
        started = time.perf_counter()
        try:
            prediction = system.ask(turn.question, past, item.within)
        except PolicyQAError as exc:
            prediction = Prediction(answer="", abstained=False)
            error = f"ask: {exc}"
        latency = time.perf_counter() - started
        history.append((turn.question, prediction.answer))
    row = score_turn(system, gold, item, turn, retrieved, prediction, latency, long_answers)
    if error:
        row["error"] = error
    return row


def _unlocated(located: str) -> bool:
    found, total = located.split("/")
    return found != total


def _flatten(row: dict[str, Any], system: str) -> dict[str, Any]:
    flat = {k: v for k, v in row.items() if k != "systems"}
    flat.update(row["systems"][system])
    return flat


def refusal_curve(rows: Sequence[dict[str, Any]], systems: Sequence[System]) -> dict[str, Any]:
    """policy-qa's refusal rate vs false-refusal rate if it refused below each threshold."""
    own = [r["systems"]["policy-qa"] for r in rows]
    pairs = [
        (float(o["confidence"]), bool(r["answerable"]))
        for r, o in zip(rows, own, strict=True)
        if o.get("confidence") is not None
    ]
    chosen = next(
        (float(getattr(s, "refusal_threshold", 0.0)) for s in systems if s.name == "policy-qa"), 0.0
    )
    values = sorted({c for c, _ in pairs} | {0.0, chosen})
    thresholds = [*values, (values[-1] + 1e-6) if values else 1.0]
    curve = M.refusal_curve([c for c, _ in pairs], [a for _, a in pairs], thresholds)
    at_chosen = M.refusal_curve([c for c, _ in pairs], [a for _, a in pairs], [chosen])[0]
    return {
        "threshold": chosen,
        "points": [list(p) for p in curve],
        "at_threshold": list(at_chosen),
        "observed": [
            M.rate([o["abstained"] for r, o in zip(rows, own, strict=True) if not r["answerable"]]),
            M.rate([o["abstained"] for r, o in zip(rows, own, strict=True) if r["answerable"]]),
        ],
    }


@contextmanager
def _workdir(path: Path | None) -> Iterator[Path]:
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="policy-qa-eval-") as tmp:
        yield Path(tmp)


def run(
    specs: Sequence[SetSpec],
    options: RunOptions,
    settings: Settings,
    workdir: Path | None = None,
    *,
    resume: bool = False,
) -> dict[str, Any]:
    """Run every set with every system; returns what ``results.json`` holds.

    With ``resume``, a set's folder in ``workdir`` left by an earlier run of the same command
    is reused: its indexes are brought up to date and its journal's answers are not asked again.
    """
    if not specs:
        raise ConfigError("name at least one question set")
    if resume and workdir is None:
        raise ConfigError("--resume needs the --workdir of the run to go on with")
    started = time.perf_counter()
    results: dict[str, Any] = {
        "config": _config(specs, options, settings),
        "sets": {},
    }
    with _workdir(workdir) as work:
        for n, spec in enumerate(specs):
            label = f"{Path(spec.name).stem}-{spec.part}" if spec.part else Path(spec.name).stem
            set_dir = work / f"{n:02d}-{label}"
            if set_dir.exists() and not resume:
                raise ConfigError(
                    f"{set_dir} exists: give --workdir an empty folder, or add --resume to go "
                    "on with the run that left it"
                )
            digest = fingerprint({**results["config"], "sets": [dataclasses.asdict(spec)]})
            if resume and set_dir.exists():
                for system in options.systems:  # before any work, and before anything is removed
                    check(journal_path(set_dir, system), digest)
                _reuse(set_dir)
            eval_set = resolve_set(spec, options, set_dir)
            if eval_set.name in results["sets"]:
                raise ConfigError(f"set {eval_set.name!r} named twice")
            log.info(
                "set %s: %d questions over %s", eval_set.name, eval_set.n_questions, eval_set.corpus
            )
            systems = build_systems(options.systems, settings, set_dir)
            results["sets"][eval_set.name] = run_set(
                eval_set,
                systems,
                progress=options.progress,
                journal=(set_dir, digest),
                resume=resume,
            )
    results["config"]["seconds"] = round(time.perf_counter() - started, 1)
    return results


def _reuse(set_dir: Path) -> None:
    """Make a set's folder from an earlier run fit to run in again.

    The generated corpus is written again (it is the same text; policy-qa's index leaves files
    whose content hash it holds alone), and the plain baseline's store, which only ever adds,
    is built again rather than doubled.
    """
    for generated in (set_dir / "corpus", set_dir / BASELINE_STORE):
        shutil.rmtree(generated, ignore_errors=True)


def _config(specs: Sequence[SetSpec], options: RunOptions, settings: Settings) -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for package in ("policy-qa", "langchain-chroma", "chromadb", "sentence-transformers", "bm25s"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    safe_settings = {
        k: (str(v) if isinstance(v, Path) else v)
        for k, v in dataclasses.asdict(settings).items()
        if "key" not in k and k != "auth"
    }
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "sets": [dataclasses.asdict(s) for s in specs],
        "systems": list(options.systems),
        "seed": options.seed,
        "scope": options.scope,
        "k": K,
        "settings": safe_settings,
        # What "auto" resolved to on this machine: the check changes refusals, so say it.
        "answerability_check": "on" if check_enabled(settings) else "off",
        "python": platform.python_version(),
        "versions": versions,
    }


# --- regression gate ------------------------------------------------------------------------


def make_baseline(
    results: dict[str, Any],
    *,
    tolerance: float | dict[str, float] = 0.05,
    gated: Sequence[str] = DEFAULT_GATED,
    systems: Sequence[str] = ("policy-qa",),
) -> dict[str, Any]:
    """The figures to commit as ``eval/baseline.json``, with how to reproduce them."""
    figures: dict[str, Any] = {}
    for name, data in results["sets"].items():
        figures[name] = {
            system: {k: data["figures"][system].get(k) for k in gated}
            for system in systems
            if system in data["figures"]
        }
    return {
        "tolerance": tolerance,
        "note": (
            "A gated figure may fall by at most its set's tolerance (absolute; rise, for the "
            "figures in lower_is_better) before the regression test fails. `tolerance` is one "
            "number or {set name: number, 'default': number}. Refresh with "
            "`policy-qa eval ... --save-baseline eval/baseline.json` after an intended change."
        ),
        "lower_is_better": sorted(LOWER_IS_BETTER & set(gated)),
        "run": {
            "sets": results["config"]["sets"],
            "seed": results["config"]["seed"],
            "scope": results["config"]["scope"],
            "systems": list(systems),
        },
        "figures": figures,
    }


def regressions(results: dict[str, Any], baseline: dict[str, Any]) -> list[str]:
    """Every gated figure that got worse by more than the tolerance, said plainly."""
    tolerance = baseline.get("tolerance", 0.05)
    problems = []

    def allowed(set_name: str) -> float:
        if isinstance(tolerance, dict):
            return float(tolerance.get(set_name) or tolerance.get("default") or 0.05)
        return float(tolerance)

    for set_name, systems in baseline["figures"].items():
        current_set = results["sets"].get(set_name)
        if current_set is None:
            problems.append(f"{set_name}: not in this run")
            continue
        for system, expected in systems.items():
            current = current_set["figures"].get(system)
            if current is None:
                problems.append(f"{set_name}/{system}: not in this run")
                continue
            for metric, old in expected.items():
                new = current.get(metric)
                if old is None:
                    continue
                if new is None:
                    problems.append(f"{set_name}/{system} {metric}: was {old:.3f}, now missing")
                    continue
                tol = allowed(set_name)
                worse = new - old if metric in LOWER_IS_BETTER else old - new
                if worse > tol + 1e-9:
                    problems.append(
                        f"{set_name}/{system} {metric}: {old:.3f} -> {new:.3f} "
                        f"(worse by {worse:.3f}, tolerance {tol:.3f})"
                    )
    return problems
