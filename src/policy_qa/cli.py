"""The ``policy-qa`` console script: a thin layer over ``Assistant``.

Owns argument parsing, logging set-up and turning ``PolicyQAError`` into a one-line message and
a non-zero exit. Every command's behaviour lives in the library.

    policy-qa index PATH... [--index-dir DIR]
    policy-qa ask QUESTION [--json] [--stream] [--within PREFIX]   (QUESTION "-": read stdin)
    policy-qa documents | remove SOURCE
    policy-qa serve [--host H] [--port N] [--corpus DIR]
    policy-qa doctor
    policy-qa eval SET... [--limit N] [--out DIR]
    policy-qa --version           (also: python -m policy_qa ...)
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .config import JUDGE_MODES, Settings, quiet_third_parties
from .errors import PolicyQAError
from .text import terminal_safe
from .types import page_label

log = logging.getLogger("policy_qa")

EXIT_USAGE = 2
EXIT_ERROR = 1


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {
        "index_dir": getattr(args, "index_dir", None),
        "chroma_url": getattr(args, "chroma_url", None),
        "data_dir": getattr(args, "data_dir", None),
        "llm": getattr(args, "llm", None),
        "llm_base_url": getattr(args, "llm_base_url", None),
        "llm_model": getattr(args, "llm_model", None),
        "llm_model_path": getattr(args, "llm_model_path", None),
        "judge": getattr(args, "judge", None),
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
    }
    return Settings.from_env(**overrides)


def _assistant(args: argparse.Namespace) -> Any:
    from .assistant import Assistant

    return Assistant(settings=_settings(args))


def _progress_bar(desc: str) -> tuple[Callable[[int, int, str], None], Callable[[], None]]:
    """A tqdm bar on stderr driven by ``progress(done, total, label)`` callbacks."""
    from tqdm import tqdm

    bar: dict[str, Any] = {}

    def update(done: int, total: int, label: str) -> None:
        stage = label.split(" ", 1)[0]
        if bar.get("stage") != stage:
            if "bar" in bar:
                bar["bar"].close()
            bar["stage"] = stage
            bar["bar"] = tqdm(total=total, desc=f"{desc}: {stage}", unit="", file=sys.stderr)
        b = bar["bar"]
        b.total = total
        b.n = done
        b.set_postfix_str(label.split(" ", 1)[-1][-40:], refresh=False)
        b.refresh()

    def close() -> None:
        if "bar" in bar:
            bar["bar"].close()

    return update, close


def cmd_index(args: argparse.Namespace) -> int:
    if not args.verbose:  # each skipped file is printed below, once: not logged as well
        # pypdf too: a damaged PDF's "EOF marker not found" came before its skipped line.
        for name in ("policy_qa.ingest", "pypdf"):
            logging.getLogger(name).setLevel(logging.ERROR)
    qa = _assistant(args)
    update, close = _progress_bar("indexing")
    try:
        report = qa.index(args.paths, progress=None if args.quiet else update)
    finally:
        close()
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(
            f"Indexed into {qa.settings.chroma_url or qa.index_dir}: "
            f"{len(report.added)} added, {len(report.updated)} updated, "
            f"{len(report.unchanged)} unchanged, {len(report.removed)} removed, "
            f"{report.chunks} chunks in {report.seconds:.1f} s."
        )
        for skipped in report.skipped:
            line = terminal_safe(f"{skipped.path}: {skipped.reason}", one_line=True)
            print(f"  skipped {line}", file=sys.stderr)
    if not (report.added or report.updated or report.unchanged) and report.skipped:
        return EXIT_ERROR
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from .types import Answer

    # "-" reads the question from stdin, so a script can pipe in text that holds quotes or
    # newlines without shell escaping.
    question = sys.stdin.read() if args.question == ["-"] else " ".join(args.question)
    qa = _assistant(args)
    if args.stream and not args.json:
        final = None
        for item in qa.stream(question, within=args.within):
            if isinstance(item, Answer):
                final = item
            else:
                sys.stdout.write(terminal_safe(item))
                sys.stdout.flush()
        sys.stdout.write("\n")
        if final is not None:
            _print_sources(final)
        return 0
    answer = qa.ask(question, within=args.within)
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(terminal_safe(answer.answer))
        _print_sources(answer)
    return 0


def _print_sources(answer: Any) -> None:
    for note in answer.notes:
        print(f"note: {terminal_safe(note)}")
    if answer.citations:
        print()
        for c in answer.citations:
            where = f"{c.source}" + (f" § {c.section}" if c.section else "")
            where += f", {page_label(c.page, c.page_end)}" if c.page is not None else ""
            print(f"[{c.n}] {terminal_safe(where, one_line=True)} (chars {c.start}-{c.end})")
    elif answer.abstained and answer.passages:
        print("\nClosest passages:")
        for i, p in enumerate(answer.passages[:3], 1):
            c = p.chunk
            snippet = " ".join(c.text.split())[:160]
            shown = terminal_safe(f"{c.source} § {c.section or '-'}: {snippet}", one_line=True)
            print(f"  {i}. {shown}…")


def cmd_documents(args: argparse.Namespace) -> int:
    qa = _assistant(args)
    docs = qa.documents()
    if args.json:
        print(json.dumps([d.__dict__ for d in docs], ensure_ascii=False, indent=2))
        return 0
    if not docs:
        print("Nothing is indexed yet. Run `policy-qa index PATH`.")
    for d in docs:
        source, title = (terminal_safe(v, one_line=True) for v in (d.source, d.title))
        print(f"{source}\t{d.chunks} chunks\t{d.indexed_at}\t{title}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    qa = _assistant(args)
    if qa.remove(args.source):
        print(f"Removed {args.source}.")
        return 0
    print(f"{args.source} is not indexed (see `policy-qa documents`).", file=sys.stderr)
    return EXIT_ERROR


def cmd_serve(args: argparse.Namespace) -> int:
    from .assistant import Assistant
    from .doctor import ModelCheck, summary
    from .judge import require_available
    from .ui import serve

    settings = _settings(args)
    require_available(settings)  # judge=on without the model fails here, before serving
    qa = Assistant(settings=settings)
    if args.corpus:
        update, close = _progress_bar("indexing")
        try:
            report = qa.index([args.corpus], progress=update)
        finally:
            close()
        print(
            f"Index ready: {len(report.added) + len(report.updated)} new or changed, "
            f"{len(report.unchanged)} unchanged.",
            file=sys.stderr,
        )

    def report_check(checks: list[Any]) -> None:
        said = summary(checks)
        text = said[1] if said else ""
        prefix = "The answerability check is "
        if text.startswith(prefix):  # off or unavailable, and why
            print(f"Answerability check: {text.removeprefix(prefix)}", file=sys.stderr)
        else:
            probe = next((c for c in checks if c.name == "answerability check"), None)
            detail = f": {probe.detail}" if probe is not None else ""
            print(f"Answerability check: on{detail}.", file=sys.stderr)
            if text:  # the LLM backend's trouble
                print(text, file=sys.stderr)
        for check in checks:
            if check.failed:
                print(f"  {check.line()}", file=sys.stderr)

    # The model check (joining Qwen on a first run, starting the worker, a tiny P(yes)) runs
    # while the page comes up; the page shows its outcome when the check is off or broken.
    if settings.judge != "off":
        print("Checking the local model in the background…", file=sys.stderr)
    check = ModelCheck(settings, on_done=report_check).start()
    threading.Thread(target=_warm, args=(qa,), name="warm-up", daemon=True).start()
    serve(qa, share_warning=True, check=check)
    return 0


def _warm(qa: Any) -> None:
    """Load what the first questions would (the index, the embedding models, the Korean
    tokenizer) while the page comes up. Loading kiwipiepy takes ~10 s and holds the GIL: on the
    first Korean question it stalled every other user's question
    (docs/decisions/106-many-users-at-once.md)."""
    try:
        retriever = qa.retriever()
        for query in ("policy", "정책"):  # any English and Korean word: loads both paths
            retriever.search(query, 1)
    except PolicyQAError as exc:  # an empty or missing index: the first question says so
        log.info("nothing to warm up: %s", exc)


def cmd_doctor(args: argparse.Namespace) -> int:
    from .doctor import model_checks, passed, retrieval_checks

    settings = _settings(args)
    checks = retrieval_checks(settings)
    for check in checks:
        print(check.line(), flush=True)
    if settings.judge != "off" or settings.llm == "llamacpp":
        print("… loading the local model in its worker", file=sys.stderr, flush=True)
    for check in model_checks(settings):
        checks.append(check)
        print(check.line(), flush=True)
    if passed(checks):
        print("All required checks passed.")
        return 0
    print("Some required checks failed: see the fix under each FAIL.", file=sys.stderr)
    return EXIT_ERROR


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--index-dir", type=Path, help="index folder (env POLICY_QA_INDEX_DIR)")
    p.add_argument(
        "--chroma-url",
        help="use a Chroma server, e.g. http://127.0.0.1:8000 (env POLICY_QA_CHROMA_URL)",
    )
    p.add_argument("--data-dir", type=Path, help="data folder (env POLICY_QA_DATA_DIR)")


def _llm_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--llm", choices=("none", "openai", "llamacpp"), help="answer backend")
    p.add_argument("--llm-base-url", help="OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1")
    p.add_argument("--llm-model", help="model name for the OpenAI-compatible server")
    p.add_argument("--llm-model-path", help="a GGUF file for --llm llamacpp")
    p.add_argument(
        "--judge",
        choices=JUDGE_MODES,
        help="answerability check on borderline refusals with the packaged Qwen "
        "(default auto: on when policy-qa[llm] is installed; env POLICY_QA_JUDGE)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="policy-qa",
        description="Ask questions of policy documents and get answers that cite their sources.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("index", help="add or update documents (files or folders)")
    p.add_argument("paths", nargs="+")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _common(p)
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("ask", help="ask a question")
    p.add_argument("question", nargs="+", help='the question; "-" reads it from stdin')
    p.add_argument("--json", action="store_true", help="print Answer.to_dict() as JSON")
    p.add_argument("--stream", action="store_true", help="print the answer as it is written")
    p.add_argument("--within", help="only documents whose source starts with this prefix")
    _common(p)
    _llm_options(p)
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("documents", help="list indexed documents")
    p.add_argument("--json", action="store_true")
    _common(p)
    p.set_defaults(func=cmd_documents)

    p = sub.add_parser("remove", help="remove an indexed document by its source")
    p.add_argument("source")
    _common(p)
    p.set_defaults(func=cmd_remove)

    p = sub.add_parser("serve", help="start the web chat")
    p.add_argument("--host", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, help="port (default 7860)")
    p.add_argument("--corpus", type=Path, help="index this folder before serving")
    _common(p)
    _llm_options(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("doctor", help="load each configured model once and say what works")
    _common(p)
    _llm_options(p)
    p.set_defaults(func=cmd_doctor)

    try:
        from .evaluation.cli import add_parser as add_eval
    except ImportError as exc:  # the evaluation extras are part of the package; say if broken
        log.debug("eval command unavailable: %s", exc)
    else:
        add_eval(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    quiet_third_parties()
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "chromadb", "sentence_transformers", "bm25s", "urllib3"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    try:
        return int(args.func(args) or 0)
    except PolicyQAError as exc:
        print(f"error: {terminal_safe(str(exc), one_line=True)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        # A bug still ends in one line (-v adds the traceback): a user can act on neither.
        log.info("unexpected failure", exc_info=True)
        what = terminal_safe(f"{type(exc).__name__}: {exc}", one_line=True)[:300]
        print(
            f"error: policy-qa failed unexpectedly ({what}). This is a bug: please report it "
            "with the command you ran (-v shows where it failed).",
            file=sys.stderr,
        )
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
