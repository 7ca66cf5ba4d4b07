# Over 500 lines: one page, whose handlers share ChatUI's state and escaping rules; tests call them.
"""The web chat: the only module that imports Gradio.

Owns the page (``build_app``), starting the server (``launch``/``serve``) and the handlers the
page wires together. Handlers are plain methods of ``ChatUI`` that tests call directly; every
behaviour they need lives in ``Assistant``. This module must not retrieve, answer or index by
itself, and must never put document text or questions into the page as HTML: everything a user
or a document supplies goes through ``escape_md`` (chat messages, rendered as Markdown) or
``html.escape`` (the sources and status panels) before it is wrapped in our own markup.

    chat column                         side column
    ┌──────────────────────────────┐    ┌─ Sources ─┬─ Documents ─┐
    │ Chatbot: answers with [n]    │    │ [1] [2] [3] (radio)       │
    │ question  [Send]             │    │ title · section · offsets │
    │ Answer with: [extractive ▾]  │    │ passage with <mark>quote  │
    │ [Stop] [New chat] [Copy]     │    └───────────────────────────┘
    └──────────────────────────────┘

"Answer with" lists ``Assistant.backends`` and is shown only when an LLM is configured.

A click on an ``[n]`` link in the chat reaches Python through the sources panel's own
``gr.HTML`` event (``js_on_load`` + ``trigger``): a few lines of JavaScript, no framework.
"""

from __future__ import annotations

import contextlib
import html
import ipaddress
import json
import logging
import re
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import gradio as gr
from starlette.middleware import Middleware

from .assistant import Assistant
from .config import Settings
from .errors import ConfigError, PolicyQAError, QuestionError
from .ingest import SUPPORTED_SUFFIXES
from .inputs import check_history
from .login import LoginThrottle, ThrottledLogin
from .types import Answer, page_label

log = logging.getLogger(__name__)

__all__ = [
    "API_NAME",
    "API_NAMES",
    "EXAMPLES",
    "ChatUI",
    "CheckStatus",
    "build_app",
    "escape_md",
    "exposure_warning",
    "history_pairs",
    "launch",
    "serve",
]

API_NAME = "ask"
API_NAMES = (API_NAME, "retrieve", "documents")  # the public endpoints, in the API page's order
EXAMPLES = (
    "When was the Daedeok Research Complex established?",
    "How far is Daejeon from Seoul?",
    "What is the National Innovation Cluster?",
    "What does the Special Act on Balanced National Development do?",
)
NOT_FOUND = "Not found in the documents."
EXTRACTIVE_LABEL = "Extractive (quotes only)"
_THINKING = "Searching the documents…"
_CONTEXT_CHARS = 300  # document text shown on each side of a quote without a stored passage
_CLOSEST = 3  # passages shown under a refusal
_CITE_HREF = re.compile(r"#?pqa-cite-(\d+)-(\d+)$")
_MARKER = re.compile(r"\[(\d+)\]")
_MD_SPECIAL = frozenset("\\`*_{}[]()<>#+-.!|~$:&\"'=^@%/")

Turn = dict[str, Any]  # {"question", "text", "answer": Answer.to_dict() | None, "stopped", "error"}


# --- rendering: pure functions of the conversation -------------------------------------------


def escape_md(text: str) -> str:
    """``text`` made inert for Gradio's Markdown renderer: shown as typed, never as markup.

    Every ASCII punctuation mark that Markdown or HTML could act on becomes a numeric character
    reference, which CommonMark prints literally; so ``<script>``, ``*bold*``, ``[x](javascript:)``
    and ``www.`` autolinks all stay text. Leading spaces are dropped so no line becomes code.
    """
    lines = []
    for line in text.split("\n"):
        lines.append("".join(f"&#{ord(ch)};" if ch in _MD_SPECIAL else ch for ch in line.lstrip()))
    return "\n".join(lines)


def _cite_link(turn: int, n: int, tip: str = "") -> str:
    title = f' title="{html.escape(tip, quote=True)}"' if tip else ""
    return f'<a class="pqa-cite" href="#pqa-cite-{turn}-{n}"{title}>[{n}]</a>'


def render_answer(turn: int, answer: dict[str, Any]) -> str:
    """An answer as a chat message: escaped text with each [n] a link to its citation."""
    cites = {c["n"]: c for c in answer["citations"]}

    def link(match: re.Match[str]) -> str:
        n = int(match.group(1))
        if n not in cites:
            return f"&#91;{n}&#93;"
        c = cites[n]
        return _cite_link(turn, n, _where(c["title"], c["section"], _pages(c)))

    # Markers become placeholders before escaping so the answer is escaped as one text.
    text = answer["answer"].replace("\x00", "")
    marked = _MARKER.sub(lambda m: f"\x00{m.group(1)}\x00", text)
    body = re.sub(r"\x00(\d+)\x00", link, escape_md(marked))
    if answer["abstained"]:
        body += f"\n\n<em>{NOT_FOUND} The closest passages are in the Sources panel.</em>"
    elif cites:
        groups: dict[tuple[str, str, str], list[int]] = {}
        for c in answer["citations"]:
            groups.setdefault((c["title"], c["section"], _pages(c)), []).append(c["n"])
        lines = [
            " ".join(_cite_link(turn, n) for n in ns) + " " + escape_md(_where(*where))
            for where, ns in groups.items()
        ]
        body += "\n\n<small>Sources: " + " · ".join(lines) + "</small>"
    if answer.get("backend"):
        body += f"\n\n<small><em>Answered with: {escape_md(answer['backend'])}</em></small>"
    for note in answer.get("notes", []):
        body += f"\n\n<small><em>Note: {escape_md(note)}</em></small>"
    return body


def _where(title: str, section: str, pages: str = "") -> str:
    where = f"{title} § {section}" if section and section != title else title
    return f"{where}, {pages}" if pages else where


def _pages(item: dict[str, Any]) -> str:
    """A citation's or passage's pages as "p. 12" or "pp. 12–13"; "" without pages (and for
    an answer saved before pages were kept)."""
    return page_label(item.get("page"), item.get("page_end"))


def render_chat(turns: Sequence[Turn]) -> list[dict[str, str]]:
    """The Chatbot's messages for a conversation: a user and an assistant message per turn."""
    messages: list[dict[str, str]] = []
    for i, turn in enumerate(turns):
        messages.append({"role": "user", "content": escape_md(_clip(turn["question"]))})
        if turn.get("answer") is not None:
            content = render_answer(i, turn["answer"])
        elif turn.get("error"):
            content = f"<em>{escape_md(turn['error'])}</em>"
        elif turn.get("stopped"):
            content = escape_md(turn.get("text", "")) + "\n\n<em>Stopped.</em>"
        else:
            content = escape_md(turn.get("text", "")) or f"<em>{_THINKING}</em>"
        messages.append({"role": "assistant", "content": content})
    return messages


def _clip(text: str, limit: int = 2000) -> str:
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


def plain_text(answer: dict[str, Any] | None) -> str:
    """The answer with its sources as plain text (what the copy button copies)."""
    if not answer:
        return ""
    lines = [answer["answer"]]
    if answer["citations"]:
        lines += ["", "Sources:"]
        for c in answer["citations"]:
            where = _where(c["title"], c["section"], _pages(c))
            lines.append(f"[{c['n']}] {where} ({c['source']}, characters {c['start']}-{c['end']})")
            lines.append(f'    "{c["quote"]}"')
    elif answer["abstained"] and answer["passages"]:
        lines += ["", f"{NOT_FOUND} Closest passages:"]
        for p in answer["passages"][:_CLOSEST]:
            where = f"{p['source']}, characters {p['start']}-{p['end']}"
            lines.append(f"- {p['title']} § {p['section'] or '-'} ({where})")
    for note in answer.get("notes", []):
        lines.append(f"Note: {note}")
    return "\n".join(lines)


def history_pairs(history: Any) -> list[tuple[str, str]]:
    """Earlier turns as ``(question, answer)`` pairs, from either shape a client sends.

    ``history`` is a list of ``[question, answer]`` pairs or of chat messages (the library
    reads both: ``inputs.check_history``), or either as a JSON string; a pair whose answer is
    null is a turn still being answered, and counts as an empty answer. ValueError, with what
    is wrong, for anything else.
    """
    if isinstance(history, str):
        history = json.loads(history) if history.strip() else []
    if history is None:
        return []
    if not isinstance(history, list | tuple):
        raise ValueError(f"history must be a list, got {type(history).__name__}")
    pending = [
        [turn[0], ""]
        if isinstance(turn, list | tuple) and len(turn) == 2 and turn[1] is None
        else turn
        for turn in history
    ]
    try:
        return check_history(pending)
    except QuestionError as exc:
        raise ValueError(str(exc)) from None


def _api_history(history: Any) -> list[tuple[str, str]]:
    try:
        return history_pairs(history)
    except ValueError as exc:  # json.JSONDecodeError is one too
        message = (
            "history must be a JSON list of [question, answer] pairs or of "
            f'{{"role", "content"}} messages: {exc}'
        )
        raise gr.Error(message, print_exception=False) from None


@contextlib.contextmanager
def _api_errors(endpoint: str) -> Iterator[None]:
    """What goes wrong in a web API call, as the caller's one-line message: the library's own
    message, or for a bug a pointer to the server log (decision 083), never a traceback."""
    try:
        yield
    except PolicyQAError as exc:
        raise gr.Error(str(exc), print_exception=False) from None
    except gr.Error:
        raise  # already the caller's one-line message
    except Exception as exc:  # a bug must not leave the caller with nothing to go on
        log.exception("the %s endpoint failed", endpoint)
        message = f"Something went wrong ({type(exc).__name__}); the server log has details."
        raise gr.Error(message, print_exception=False) from None


def _status(message: str, kind: str = "error") -> str:
    icon = {"error": "⚠", "ok": "✓", "info": "ℹ"}[kind]
    role = ' role="alert"' if kind == "error" else ""
    return f'<div class="pqa-status pqa-{kind}"{role}>{icon} {html.escape(message)}</div>'


class ChatView(NamedTuple):
    """What a chat handler shows: one value per output component, in wiring order."""

    question: Any
    chat: list[dict[str, str]]
    turns: list[Turn]
    focus: int
    status: str
    sources: str
    cites: Any
    plain: str


class SourcesView(NamedTuple):
    focus: int
    sources: str
    cites: Any
    plain: str
    tab: Any


class DocumentsView(NamedTuple):
    status: str
    table: list[list[Any]]
    remove_choices: Any
    files: Any


# --- handlers ---------------------------------------------------------------------------------


class CheckStatus(Protocol):
    """The model check ``serve`` runs in the background (``doctor.ModelCheck``)."""

    @property
    def settled(self) -> bool: ...

    def page_status(self) -> tuple[str, str] | None: ...


@dataclass
class ChatUI:
    """The page's behaviour over one ``Assistant``; each method is one event's handler.

    ``check`` is the start-up model check: the page shows its line while the answerability
    check is off or broken (None: no line).
    """

    qa: Assistant
    check: CheckStatus | None = None

    def __post_init__(self) -> None:
        self._doc_lengths: dict[str, int] = {}

    @property
    def upload_dir(self) -> Path:
        return Path(self.qa.settings.data_dir) / "uploads"

    # chat

    def check_line(self) -> tuple[str, Any]:
        """The status line about the local model, and the timer that refreshes it (it stops
        once the check has settled)."""
        said = self.check.page_status() if self.check is not None else None
        line = _status(said[1], "error" if said[0] == "error" else "info") if said else ""
        settled = self.check is None or self.check.settled
        return line, gr.Timer(active=not settled)

    def backend_choices(self) -> list[tuple[str, str]]:
        """The "Answer with" choices: ``(label, value)`` for each of ``Assistant.backends``."""
        return [(self._backend_label(b), b) for b in self.qa.backends]

    def backend_selector(self) -> Any:
        """The "Answer with" dropdown: the configured backend first, hidden with one choice."""
        choices = self.backend_choices()
        return gr.Dropdown(
            label="Answer with",
            choices=choices,
            value=self.qa.backends[-1],  # the configured backend
            visible=len(choices) > 1,
            interactive=True,
            elem_id="pqa-backend",
        )

    def _backend_label(self, backend: str) -> str:
        if backend == "none":
            return EXTRACTIVE_LABEL
        if backend == "openai":
            return f"LLM: openai {self.qa.settings.llm_model}"
        if backend == "llamacpp":
            return "LLM: local GGUF"
        return f"LLM: {backend}"

    def _check_backend(self, backend: str | None) -> str | None:
        """``backend`` for ``Assistant.stream`` (None: configured); ConfigError if unknown."""
        if backend in (None, ""):
            return None
        if backend not in self.qa.backends:
            raise ConfigError(
                f"Unknown answer backend {backend!r}: choose one of {', '.join(self.qa.backends)}."
            )
        return backend

    def respond(
        self, question: str, turns: Sequence[Turn] | None, backend: str | None = None
    ) -> Iterator[ChatView]:
        """Answer ``question`` in the conversation ``turns``, yielding the page as it streams.

        ``backend`` is one of ``Assistant.backends`` (the "Answer with" choice); None or empty
        uses the configured one.
        """
        turns = [dict(t) for t in (turns or [])]
        question = question or ""
        try:
            llm = self._check_backend(backend)
        except ConfigError as exc:
            yield self._view("", turns, status=_status(str(exc)), keep=question)
            return
        history = [
            (t["question"], t["answer"]["answer"]) for t in turns if t.get("answer") is not None
        ]
        if not question.strip():
            yield self._view("", turns, status=_status("Please type a question."), keep=question)
            return
        turn: Turn = {"question": question, "text": "", "answer": None, "stopped": False}
        turns.append(turn)
        yield self._view("", turns, status="", focus=len(turns) - 1)
        try:
            for item in self.qa.stream(question, history, llm=llm):
                if isinstance(item, Answer):
                    turn["answer"] = item.to_dict()
                else:
                    turn["text"] += item
                    yield self._view("", turns, status="", focus=len(turns) - 1)
        except PolicyQAError as exc:
            # The library's messages are written for people: show them as they are.
            turns.pop()
            yield self._view(question, turns, status=_status(str(exc)), keep=question)
            return
        except Exception as exc:  # a bug must not put a traceback on the page
            log.exception("answering %r failed", question[:200])
            turns.pop()
            message = f"Something went wrong ({type(exc).__name__}); the server log has details."
            yield self._view(question, turns, status=_status(message), keep=question)
            return
        yield self._view("", turns, status="", focus=len(turns) - 1, n=1)

    def stop(self, turns: Sequence[Turn] | None) -> tuple[list[dict[str, str]], list[Turn]]:
        """Mark an unfinished answer as stopped (the stream itself is cancelled by Gradio)."""
        turns = [dict(t) for t in (turns or [])]
        if turns and turns[-1].get("answer") is None:
            turns[-1]["stopped"] = True
        return render_chat(turns), turns

    def new_chat(self) -> ChatView:
        return self._view("", [], status="")

    def show_citation(self, turns: Sequence[Turn] | None, ref: str) -> SourcesView:
        """The sources panel for a clicked ``[n]`` link (``ref`` is its ``#pqa-cite-T-N``)."""
        match = _CITE_HREF.search(ref or "")
        if not match:
            return self.pick_citation(turns, len(turns or []) - 1, None)
        return self.pick_citation(turns, int(match.group(1)), match.group(2))

    def pick_citation(
        self, turns: Sequence[Turn] | None, focus: int, n: str | int | None
    ) -> SourcesView:
        turns = list(turns or [])
        answer = turns[focus].get("answer") if 0 <= focus < len(turns) else None
        n_int = int(n) if n not in (None, "") else None
        sources = self.render_sources(focus, answer, n_int)
        tab = gr.Tabs(selected="sources")
        return SourcesView(focus, sources, _cite_choices(answer, n_int), plain_text(answer), tab)

    def select_message(self, turns: Sequence[Turn] | None, index: Any) -> SourcesView:
        """Clicking a message shows that exchange's sources."""
        i = index[0] if isinstance(index, list | tuple) else index
        return self.pick_citation(turns, int(i or 0) // 2, 1)

    def feedback(self, turns: Sequence[Turn] | None, index: Any, liked: Any) -> str:
        """Record thumbs up/down for the answer at chat message ``index`` as one JSON line."""
        i = index[0] if isinstance(index, list | tuple) else index
        turns = list(turns or [])
        turn = turns[int(i) // 2] if 0 <= int(i) // 2 < len(turns) else None
        if turn is None or turn.get("answer") is None:
            return _status("Only a finished answer can be rated.")
        if liked in (None, ""):
            return ""
        rating = "up" if liked is True or str(liked).lower() in ("like", "true") else "down"
        answer = turn["answer"]
        row = {
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "rating": rating,
            "question": answer["question"],
            "answer": answer["answer"],
            "abstained": answer["abstained"],
            "citations": answer["citations"],
            "backend": answer["backend"],
            "notes": answer["notes"],
            "history": [t["question"] for t in turns[: int(i) // 2]],
        }
        path = self.qa.settings.feedback_path
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
        return _status(f"Thanks: feedback saved to {path}.", "ok")

    def api_ask(
        self, question: str, history: Any = None, backend: str | None = None
    ) -> dict[str, Any]:
        """The ``/ask`` endpoint: ``Answer.to_dict()`` for a question and prior turns.

        ``history`` is a list of ``[question, answer]`` pairs, or the same as a JSON string.
        ``backend`` is one of ``Assistant.backends``; None or empty uses the configured one.
        """
        with _api_errors("/ask"):
            llm = self._check_backend(backend)
            answer = self.qa.ask(question, _api_history(history), llm=llm)
        return answer.to_dict()

    def api_retrieve(
        self, question: str, history: Any = None, k: int | None = None, within: str | None = None
    ) -> list[dict[str, Any]]:
        """The ``/retrieve`` endpoint: the ranked passages ``/ask`` would answer from, each as
        ``Passage.to_dict()``. ``history`` as for ``api_ask``; ``k`` passages (default
        ``top_k``); ``within``: only sources under this prefix."""
        limit = self.qa.settings.candidates  # retrieval ranks no more than this many
        count = k if k is None or type(k) is int else 0  # not a bool, a float or a str
        with _api_errors("/retrieve"):
            if count is not None and not 1 <= count <= limit:
                raise ConfigError(f"k must be a whole number from 1 to {limit}, not {k!r}.")
            passages = self.qa.retrieve(
                question, _api_history(history), within=within or None, k=count
            )
        return [p.to_dict() for p in passages]

    def api_documents(self) -> list[dict[str, Any]]:
        """The ``/documents`` endpoint: what is indexed, one ``DocumentInfo`` as a dict each."""
        with _api_errors("/documents"):
            documents = self.qa.documents()
        return [asdict(d) for d in documents]

    # sources panel

    def render_sources(self, turn: int, answer: dict[str, Any] | None, n: int | None) -> str:
        """The sources panel: the chosen citation's passage with its quote marked."""
        if not answer:
            return (
                '<div class="pqa-empty">Ask a question: the passages each answer cites '
                "appear here, with the quoted sentences highlighted.</div>"
            )
        parts = []
        if answer["abstained"] or not answer["citations"]:
            parts.append(
                f'<div class="pqa-notfound" role="note"><strong>{NOT_FOUND}</strong> '
                "No passage answers this question well enough to quote. "
                "The closest passages are below, if you want to look yourself.</div>"
            )
            for p in answer["passages"][:_CLOSEST]:
                parts.append(self._card(p, p["text"], p["start"], None, selected=False))
            return "".join(parts)
        cites = {c["n"]: c for c in answer["citations"]}
        chosen = cites.get(n or 0) or answer["citations"][0]
        context, offset = self._context(chosen, answer["passages"])
        parts.append(self._card(chosen, context, offset, chosen, selected=True))
        others = [c for c in answer["citations"] if c["n"] != chosen["n"]]
        if others:
            links = " ".join(_cite_link(turn, c["n"], c["quote"][:120]) for c in others)
            parts.append(f'<div class="pqa-others">Other citations in this answer: {links}</div>')
        return "".join(parts)

    def _context(self, cite: dict[str, Any], passages: Sequence[dict[str, Any]]) -> tuple[str, int]:
        """Text around a quote: the stored passage that holds it, else the document's text."""
        for p in passages:
            inside = p["start"] <= cite["start"] < cite["end"] <= p["end"]
            if p["source"] == cite["source"] and inside:
                return p["text"], p["start"]
        try:
            text = self.qa.document_text(cite["source"])
        except PolicyQAError:
            return cite["quote"], cite["start"]
        lo = max(0, cite["start"] - _CONTEXT_CHARS)
        hi = min(len(text), cite["end"] + _CONTEXT_CHARS)
        return text[lo:hi], lo

    def _doc_length(self, source: str) -> int | None:
        if source not in self._doc_lengths:
            try:
                self._doc_lengths[source] = len(self.qa.document_text(source))
            except PolicyQAError:
                return None
        return self._doc_lengths[source]

    def _card(
        self,
        item: dict[str, Any],
        context: str,
        offset: int,
        cite: dict[str, Any] | None,
        *,
        selected: bool,
    ) -> str:
        e = html.escape
        if cite is not None:
            lo, hi = cite["start"] - offset, cite["end"] - offset
            body = f"{e(context[:lo])}<mark>{e(context[lo:hi])}</mark>{e(context[hi:])}"
            badge = f'<span class="pqa-badge">[{cite["n"]}]</span> '
        else:
            body, badge = e(context), ""
        length = self._doc_length(item["source"])
        where = f"characters {item['start']:,}–{item['end']:,}"
        if _pages(item):
            where = f"{_pages(item)}, {where}"
        if length:
            pct = round(100 * item["start"] / max(length, 1))
            where += f" of {length:,} ({pct}% into the document)"
        section = item["section"] or "(no section)"
        cls = "pqa-card pqa-selected" if selected else "pqa-card"
        return (
            f'<div class="{cls}">'
            f'<div class="pqa-title">{badge}{e(item["title"])}</div>'
            f'<div class="pqa-meta">Section: {e(section)}</div>'
            f'<div class="pqa-meta">{e(item["source"])} · {where}</div>'
            f'<div class="pqa-passage">{body}</div></div>'
        )

    # documents

    def documents_table(self) -> list[list[Any]]:
        return [
            [d.title, d.source, d.chunks, d.indexed_at[:16].replace("T", " ")]
            for d in self.qa.documents()
        ]

    def documents_view(self, status: str = "") -> DocumentsView:
        try:
            table = self.documents_table()
        except PolicyQAError as exc:
            table, status = [], status + _status(str(exc))
        sources = [row[1] for row in table]
        return DocumentsView(status, table, gr.Dropdown(choices=sources, value=None), None)

    def upload(
        self,
        files: Sequence[Any] | None,
        progress: Callable[[int, int, str], None] | None = None,
    ) -> DocumentsView:
        """Copy uploaded files into the data directory and index them; say what happened."""
        paths = [Path(getattr(f, "name", f)) for f in (files or [])]
        if not paths:
            return self.documents_view(_status("Choose one or more files to add.", "info"))
        limit_mb = self.qa.settings.max_upload_mb
        messages: list[str] = []
        accepted: list[Path] = []
        self.upload_dir.mkdir(parents=True, exist_ok=True)
        for path in paths:
            name = _safe_name(path.name)
            if path.suffix.lower() not in SUPPORTED_SUFFIXES:
                shown = path.suffix or "(no extension)"
                messages.append(
                    f"✗ {path.name}: {shown} files are not supported "
                    f"(use {', '.join(SUPPORTED_SUFFIXES)})."
                )
                continue
            size = path.stat().st_size if path.exists() else 0
            if size > limit_mb * 1024 * 1024:
                messages.append(
                    f"✗ {path.name}: {size / 1024 / 1024:.1f} MB is over the {limit_mb} MB limit."
                )
                continue
            target = self.upload_dir / name
            shutil.copyfile(path, target)
            accepted.append(target)
        for target in accepted:
            try:
                report = self.qa.index([target], progress=progress)
            except PolicyQAError as exc:
                messages.append(f"✗ {target.name}: {exc}")
                continue
            for skipped in report.skipped:
                messages.append(f"✗ {Path(skipped.path).name}: {skipped.reason}")
                target.unlink(missing_ok=True)
            for source in (*report.added, *report.updated):
                messages.append(f"✓ {source}: indexed and searchable now.")
            for source in report.unchanged:
                messages.append(f"✓ {source}: already indexed, unchanged.")
        self._doc_lengths.clear()
        status = "".join(_status(m[2:], "error" if m.startswith("✗") else "ok") for m in messages)
        return self.documents_view(status or _status("Nothing was indexed."))

    def remove(self, source: str | None) -> DocumentsView:
        if not source:
            return self.documents_view(_status("Pick a document to remove.", "info"))
        try:
            removed = self.qa.remove(source)
        except PolicyQAError as exc:
            return self.documents_view(_status(str(exc)))
        self._doc_lengths.clear()
        uploaded = self.upload_dir / source
        if removed and uploaded.is_file() and uploaded.parent == self.upload_dir:
            uploaded.unlink()
        if not removed:
            return self.documents_view(_status(f"{source} is not indexed."))
        return self.documents_view(_status(f"Removed {source}.", "ok"))

    # helpers

    def _view(
        self,
        question: str,
        turns: list[Turn],
        *,
        status: str,
        focus: int | None = None,
        n: int | None = None,
        keep: str | None = None,
    ) -> ChatView:
        turns = [dict(t) for t in turns]  # a snapshot: later tokens must not rewrite this view
        focus = len(turns) - 1 if focus is None else focus
        answer = turns[focus].get("answer") if 0 <= focus < len(turns) else None
        return ChatView(
            keep if keep is not None else question,
            render_chat(turns),
            turns,
            focus,
            status,
            self.render_sources(focus, answer, n),
            _cite_choices(answer, n),
            plain_text(answer),
        )


def _cite_choices(answer: dict[str, Any] | None, n: int | None) -> Any:
    choices = [(f"[{c['n']}]", str(c["n"])) for c in (answer or {}).get("citations", [])]
    value = str(n) if n is not None and any(v == str(n) for _, v in choices) else None
    if value is None and choices:
        value = choices[0][1]
    return gr.Radio(choices=choices, value=value, visible=bool(choices))


def _safe_name(name: str) -> str:
    name = re.sub(r"[^\w.\- ]+", "_", Path(name).name).strip(" .") or "upload"
    return name[-120:]


# --- the page ---------------------------------------------------------------------------------

_CSS = """
.pqa-hidden { display: none !important; }
.pqa-status { padding: 6px 10px; border-radius: 6px; margin: 4px 0; white-space: pre-wrap; }
.pqa-error { background: #fdecea; color: #7a1c12; border: 1px solid #f5c2bd; }
.pqa-ok { background: #e8f5e9; color: #1b5e20; border: 1px solid #c8e6c9; }
.pqa-info { background: #e8f0fe; color: #1a3d7c; border: 1px solid #c6d7fb; }
a.pqa-cite { font-weight: 600; text-decoration: none; cursor: pointer; padding: 0 1px; }
.pqa-card { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 10px 12px;
  margin-bottom: 10px; }
.pqa-selected { border-color: var(--color-accent); box-shadow: 0 0 0 1px var(--color-accent); }
.pqa-title { font-weight: 600; margin-bottom: 4px; }
.pqa-meta { font-size: 0.85em; opacity: 0.8; }
.pqa-passage { margin-top: 8px; white-space: pre-wrap; overflow-wrap: anywhere; line-height: 1.5; }
.pqa-passage mark { background: #ffe58a; color: inherit; padding: 0 1px; }
.pqa-notfound { background: #fff4e5; border: 1px solid #ffd8a8; border-radius: 8px;
  padding: 8px 12px; margin-bottom: 10px; color: #663c00; }
.pqa-empty, .pqa-others { opacity: 0.85; padding: 4px 0; }
"""

# Installed once by the sources panel: a click on any [n] link (in the chat or the panel) is
# sent to Python as the panel's own click event, carrying the link's target.
_CITE_JS = """
window.__pqaTrigger = trigger;
window.__pqaPanel = element;
if (!window.__pqaCiteListener) {
  window.__pqaCiteListener = true;
  document.addEventListener('click', (event) => {
    const link = event.target instanceof Element ? event.target.closest('a.pqa-cite') : null;
    if (!link) return;
    event.preventDefault();
    event.stopPropagation();
    window.__pqaTrigger('click', {cite: link.getAttribute('href') || ''});
    setTimeout(() => window.__pqaPanel.scrollIntoView({block: 'nearest', behavior: 'smooth'}), 200);
  }, true);
}
"""

# Copies the plain-text answer (held by the hidden-or-shown textbox) to the clipboard.
_COPY_JS = "(text) => { if (text) { navigator.clipboard.writeText(text); } return text; }"


def build_app(assistant: Assistant, check: CheckStatus | None = None) -> gr.Blocks:
    """The web chat over ``assistant`` (not launched; see ``launch``).

    Questions run ``chat_concurrency`` at a time: one that needs no model call does not wait
    for another's (the model worker queues those itself). Uploads and removals run one at a
    time in their own group, so indexing never holds up a question
    (docs/decisions/051-concurrency.md).
    """
    ui = ChatUI(assistant, check)
    settings = assistant.settings
    types = sorted({".pdf", ".docx", ".html", ".htm", ".md", ".txt"} & set(SUPPORTED_SUFFIXES))
    private: dict[str, Any] = {"api_visibility": "private"}
    asking: dict[str, Any] = {
        "concurrency_id": "ask",
        "concurrency_limit": settings.chat_concurrency,
    }
    indexing: dict[str, Any] = {"concurrency_id": "index", "concurrency_limit": 1, **private}

    with gr.Blocks(title="policy-qa") as app:
        turns = gr.State([])
        focus = gr.State(-1)
        gr.Markdown("### policy-qa · ask the policy documents; every answer cites its source")
        check_line = gr.HTML(elem_id="pqa-check")
        check_timer = gr.Timer(2.0, active=check is not None)
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=340):
                chat = gr.Chatbot(
                    elem_id="pqa-chat",
                    show_label=False,
                    height=520,
                    latex_delimiters=[],
                    sanitize_html=True,
                    render_markdown=True,
                    buttons=[],
                    feedback_options=("Like", "Dislike"),
                    examples=[{"text": q} for q in EXAMPLES],
                    placeholder="**Ask a question about the indexed documents.** "
                    "Answers quote the documents; click a number like [1] to see the passage.",
                    allow_tags=False,
                )
                with gr.Row(equal_height=True):
                    question = gr.Textbox(
                        elem_id="pqa-question",
                        show_label=False,
                        placeholder="Ask a question… (Enter to send)",
                        lines=1,
                        max_lines=6,
                        scale=5,
                        min_width=200,
                        autofocus=True,
                    )
                    send = gr.Button("Send", variant="primary", scale=1, min_width=70)
                backend = ui.backend_selector()
                status = gr.HTML(elem_id="pqa-status")
                with gr.Row():
                    stop = gr.Button("Stop", variant="stop", size="sm", min_width=60)
                    new = gr.Button("New chat", size="sm", min_width=60)
                    copy = gr.Button("Copy answer + sources", size="sm", min_width=60)
            with gr.Column(scale=2, min_width=320), gr.Tabs() as tabs:
                with gr.Tab("Sources", id="sources"):
                    cites = gr.Radio(
                        label="Citation", choices=[], visible=False, elem_id="pqa-cites"
                    )
                    sources = gr.HTML(
                        ui.render_sources(-1, None, None),
                        elem_id="pqa-sources",
                        js_on_load=_CITE_JS,
                    )
                    with gr.Accordion("Answer as plain text", open=False):
                        plain = gr.Textbox(
                            show_label=False,
                            interactive=False,
                            lines=6,
                            max_lines=20,
                            buttons=["copy"],
                            elem_id="pqa-plain",
                        )
                with gr.Tab("Documents", id="documents"):
                    files = gr.File(
                        label=f"Add documents ({' '.join(types)}; up to "
                        f"{settings.max_upload_mb} MB each)",
                        file_count="multiple",
                        file_types=types,
                        elem_id="pqa-upload",
                    )
                    doc_status = gr.HTML(elem_id="pqa-doc-status")
                    table = gr.Dataframe(
                        headers=["Title", "Source", "Chunks", "Indexed at"],
                        datatype=["str", "str", "number", "str"],
                        interactive=False,
                        wrap=True,
                        elem_id="pqa-documents",
                    )
                    with gr.Row(equal_height=True):
                        to_remove = gr.Dropdown(
                            label="Remove a document", choices=[], scale=3, elem_id="pqa-remove"
                        )
                        remove = gr.Button("Remove", variant="stop", scale=1, min_width=80)

        chat_out = [question, chat, turns, focus, status, sources, cites, plain]
        src_out = [focus, sources, cites, plain, tabs]
        docs_out = [doc_status, table, to_remove, files]

        ask_in = [question, turns, backend]
        events = [
            question.submit(ui.respond, ask_in, chat_out, **asking, **private),
            send.click(ui.respond, ask_in, chat_out, **asking, **private),
            chat.example_select(_example_text, None, question, **private).then(
                ui.respond, ask_in, chat_out, **asking, **private
            ),
        ]
        stop.click(ui.stop, [turns], [chat, turns], cancels=events, **private)
        new.click(ui.new_chat, None, chat_out, cancels=events, **private)
        chat.clear(ui.new_chat, None, chat_out, cancels=events, **private)
        copy.click(None, [plain], [plain], js=_COPY_JS, **private)
        sources.click(_on_cite(ui), [turns], src_out, **private)
        cites.input(ui.pick_citation, [turns, focus, cites], src_out, **private)
        chat.select(_on_select(ui), [turns], src_out, **private)
        chat.like(_on_like(ui), [turns], status, **private)

        files.upload(_on_upload(ui), [files], docs_out, **indexing)
        remove.click(ui.remove, [to_remove], docs_out, **indexing)
        app.load(ui.documents_view, None, docs_out, **private)
        app.load(ui.check_line, None, [check_line, check_timer], **private)
        check_timer.tick(ui.check_line, None, [check_line, check_timer], **private)

        ask, retrieve, documents = _api(ui)
        gr.api(ask, api_name=API_NAME, **asking)
        gr.api(retrieve, api_name="retrieve", **asking)
        gr.api(documents, api_name="documents", **asking)
    return app


def _example_text(evt: gr.SelectData) -> str:
    value = evt.value
    return str(value.get("text", "")) if isinstance(value, dict) else str(value)


def _on_cite(ui: ChatUI) -> Callable[..., SourcesView]:
    def on_cite(turns: list[Turn], evt: gr.EventData) -> SourcesView:
        data = getattr(evt, "_data", None) or {}
        return ui.show_citation(turns, str(data.get("cite", "")))

    return on_cite


def _on_select(ui: ChatUI) -> Callable[..., SourcesView]:
    def on_select(turns: list[Turn], evt: gr.SelectData) -> SourcesView:
        return ui.select_message(turns, evt.index)

    return on_select


def _on_like(ui: ChatUI) -> Callable[..., str]:
    def on_like(turns: list[Turn], evt: gr.LikeData) -> str:
        return ui.feedback(turns, evt.index, evt.liked)

    return on_like


def _on_upload(ui: ChatUI) -> Callable[..., DocumentsView]:
    def on_upload(files: list[str] | None, progress: gr.Progress = gr.Progress()) -> DocumentsView:  # noqa: B008
        def report(done: int, total: int, label: str) -> None:
            progress((done, max(total, 1)), desc=label)

        return ui.upload(files, progress=report)

    return on_upload


# Earlier turns, as the API takes them (``history_pairs``).
ApiHistory = list[list[str]] | list[dict[str, Any]] | str | None


def _api(ui: ChatUI) -> tuple[Callable[..., Any], ...]:
    """The public endpoints' functions: their signatures and docstrings are the API page."""

    def ask(
        question: str, history: ApiHistory = None, backend: str | None = None
    ) -> dict[str, Any]:
        """Answer a question from the indexed documents; returns ``Answer.to_dict()``.

        history: earlier turns as [[question, answer], ...] or as chat messages
        [{"role": "user" | "assistant", "content": "..."}, ...] (or either as a JSON string).
        backend: "none" (extractive, quotes only) or the configured LLM backend; default: the
        configured backend.
        """
        return ui.api_ask(question, history, backend)

    def retrieve(
        question: str, history: ApiHistory = None, k: int | None = None, within: str | None = None
    ) -> list[dict[str, Any]]:
        """The ranked passages /ask would answer from, each as ``Passage.to_dict()``.

        history: as for /ask (a follow-up is searched with the topic of the turn before).
        k: how many passages (default: the top_k setting). within: only documents whose source
        starts with this prefix.
        """
        return ui.api_retrieve(question, history, k, within)

    def documents() -> list[dict[str, Any]]:
        """The indexed documents: [{source, title, chunks, indexed_at, language}, ...]."""
        return ui.api_documents()

    return ask, retrieve, documents


# --- serving ----------------------------------------------------------------------------------


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_warning(settings: Settings, share_warning: bool = False) -> str | None:
    """What to tell the operator when the server is reachable from other machines."""
    if _is_loopback(settings.host):
        return None
    message = (
        f"the web chat is listening on {settings.host}:{settings.port}, "
        "reachable from other machines"
    )
    if settings.auth is None:
        message += "; anyone who can reach it can read and change the index"
        if share_warning:
            message += " (set POLICY_QA_AUTH=user:password to require a login)"
    return message


def launch(
    assistant: Assistant,
    *,
    block: bool = True,
    share_warning: bool = False,
    quiet: bool = False,
    check: CheckStatus | None = None,
) -> gr.Blocks:
    """Build the app and serve it on ``settings.host:settings.port``; returns the app.

    With ``block=False`` the server runs in the background (tests); call ``app.close()``.
    Never creates a public share link. ``check``: the start-up model check, shown on the page.
    At most ``chat_queue_size`` events wait; past that a user is told the application is busy
    and to try again (Gradio's own message), rather than waiting without end.
    """
    settings = assistant.settings
    warning = exposure_warning(settings, share_warning)
    if warning:
        log.warning(warning)
    auth = None
    app_kwargs: dict[str, Any] = {}
    if settings.auth:
        user, _, password = settings.auth.partition(":")
        auth = (user, password)
        # Failed logins are throttled per client address in front of Gradio's POST /login
        # (its auth callable never sees the address): docs/decisions/084-login.md.
        app_kwargs["middleware"] = [Middleware(ThrottledLogin, throttle=LoginThrottle())]
    app = build_app(assistant, check)
    # Quick handlers (sources, citations, feedback) run as many at once as questions do.
    app.queue(
        default_concurrency_limit=settings.chat_concurrency, max_size=settings.chat_queue_size
    )
    app.launch(
        server_name=settings.host,
        server_port=settings.port,
        share=False,
        auth=auth,
        app_kwargs=app_kwargs,
        max_file_size=settings.max_upload_mb * 1024 * 1024,
        prevent_thread_lock=not block,
        quiet=quiet,
        show_error=False,
        ssr_mode=False,
        pwa=False,
        mcp_server=False,
        theme=gr.themes.Default(primary_hue="blue", secondary_hue="slate"),
        css=_CSS,
        footer_links=["api"],
    )
    return app


def serve(
    assistant: Assistant, share_warning: bool = False, check: CheckStatus | None = None
) -> None:
    """Serve the web chat until interrupted (``policy-qa serve``).

    ``share_warning`` adds how to require a login to the warning printed (on stderr, through
    logging) when the server binds to an address other machines can reach.
    """
    launch(assistant, block=True, share_warning=share_warning, check=check)
