"""The bad-input catalogue (issue 24.2): every bad input through the CLI, the Python API and
the web API, each answered by one clean message, and no index changed by it.

Clean means: the CLI exits with status 1 and prints one line (``error: ...``, or the skipped
file's reason), never a traceback; the API raises the named ``PolicyQAError`` subclass; the
web ``/ask`` endpoint returns the library's message as a ``gr.Error``, never Gradio's
"upstream app raised an exception". Inputs that are odd but answerable (control characters,
a ``within`` that matches nothing) must be answered. After every input the index it was given
is unchanged: the same documents and chunk ids, or for a damaged index the same bytes.

``test_the_catalogue_adds_up`` (last) prints the counts the issue asks for: inputs tried,
clean, traceback (must be 0), data lost (must be 0).
docs/decisions/083-one-line-for-every-bad-input.md
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from gradio_client import Client

from policy_qa import (
    Assistant,
    ConfigError,
    DocumentError,
    DocumentNotFoundError,
    IndexDamagedError,
    IndexNotFoundError,
    PolicyQAError,
    QuestionError,
    Settings,
)
from policy_qa.chroma_store import ChromaStore
from policy_qa.inputs import check_history
from policy_qa.ui import API_NAME

from .conftest import CORPUS, free_port
from .ui_fixtures import running_app

pytestmark = pytest.mark.slow

QUESTION = "When was the Daedeok Research Complex established?"
HUGE = "x" * 100_000


@dataclass(frozen=True)
class Outcome:
    case: str
    surface: str
    clean: bool
    traceback: bool
    data_lost: bool


LEDGER: list[Outcome] = []


# --- the indexes the inputs are tried on ------------------------------------------------------


def fingerprint(index_dir: Path) -> Any:
    """What must not change: a sound index's documents and ids, a damaged one's bytes."""
    if not index_dir.is_dir():
        return index_dir.read_bytes() if index_dir.exists() else None
    database = index_dir / "chroma.sqlite3"
    try:
        store = ChromaStore(index_dir, None, "policy_qa", ("minilm", "use"))
        return [(d.source, d.chunks) for d in store.documents()], store.stored_ids()
    except IndexDamagedError:
        return hashlib.sha256(database.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def indexes(corpus_index: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A private copy of the corpus index, three damaged copies, and two misplaced folders."""
    work = tmp_path_factory.mktemp("bad-inputs")
    sound = work / "sound"
    shutil.copytree(corpus_index, sound)
    out = {"sound": sound}
    for name in ("truncated", "bad-header", "empty"):
        broken = work / name
        shutil.copytree(corpus_index, broken)
        database = broken / "chroma.sqlite3"
        data = database.read_bytes()
        if name == "truncated":
            database.write_bytes(data[: len(data) // 2])
        elif name == "bad-header":
            database.write_bytes(b"X" * 16 + data[16:])
        else:
            database.write_bytes(b"")
        out[name] = broken
    a_file = work / "a-file"
    a_file.write_text("not an index\n", encoding="utf-8")
    out["a-file"] = a_file
    out["under-a-file"] = a_file / "index"
    return out


@pytest.fixture(scope="module")
def api(
    indexes: dict[str, Path], qa: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Assistant]:
    settings = Settings(
        index_dir=indexes["sound"],
        data_dir=tmp_path_factory.mktemp("bad-inputs-data"),
        judge="off",
        port=free_port(),
    )
    assistant = Assistant(settings=settings, embeddings=qa.embeddings)
    yield assistant
    assistant.close()


@pytest.fixture(scope="module")
def served(api: Assistant) -> Iterator[str]:
    with running_app(api) as url:
        yield url


def record(case: str, surface: str, index: Path, attempt: Callable[[], tuple[bool, bool]]) -> None:
    """Try one input: ``attempt`` says (clean, traceback seen); the index must not change."""
    before = fingerprint(index)
    clean, traceback = attempt()
    lost = fingerprint(index) != before
    LEDGER.append(Outcome(case, surface, clean and not lost, traceback, lost))
    assert not traceback, f"{case} ({surface}): a traceback"
    assert not lost, f"{case} ({surface}): the index changed"
    assert clean, f"{case} ({surface}): not one clean message"


# --- the CLI ----------------------------------------------------------------------------------

OK = None  # an input that must be answered (status 0), not refused with an error


def policy_qa(*args: str | bytes, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("policy-qa")
    return subprocess.run(
        [str(exe), *args],
        capture_output=True,
        timeout=300,
        env={**os.environ, "POLICY_QA_JUDGE": "off", **(env or {})},
    )


CLI_CASES: list[tuple[str, list[Any], str, str | None, dict[str, str]]] = [
    # (case, arguments, index, what the one line says (None: answered), environment)
    ("question: invalid UTF-8", ["ask", b"When \xff was it?"], "sound", "byte 0xFF", {}),
    ("question: empty", ["ask", ""], "sound", "Please type a question", {}),
    ("question: only whitespace", ["ask", " \t "], "sound", "Please type a question", {}),
    ("question: 100,000 characters", ["ask", HUGE], "sound", "characters long", {}),
    ("question: escape and bidi characters", ["ask", "When \x1b[2J\u202e?"], "sound", OK, {}),
    ("within: matches nothing", ["ask", QUESTION, "--within", "none/"], "sound", OK, {}),
    ("within: invalid UTF-8", ["ask", QUESTION, "--within", b"x\xff"], "sound", "within", {}),
    ("remove: unknown source", ["remove", "nope.txt"], "sound", "is not indexed", {}),
    ("remove: invalid UTF-8 source", ["remove", b"x\xff.txt"], "sound", "not the source", {}),
    ("index: a path that does not exist", ["index", "/nonexistent/x"], "sound", "not found", {}),
    ("index-dir: a file (ask)", ["ask", QUESTION], "a-file", "is a file, not a folder", {}),
    ("index-dir: a file (documents)", ["documents"], "a-file", "is a file, not a folder", {}),
    ("index-dir: a file (index)", ["index", str(CORPUS)], "a-file", "is a file, not a", {}),
    ("index-dir: under a file", ["index", str(CORPUS)], "under-a-file", "path is a file", {}),
    *[
        (f"chroma.sqlite3 {damage} ({command[0]})", command, damage, "policy-qa index", {})
        for damage in ("truncated", "bad-header", "empty")
        for command in (["documents"], ["ask", QUESTION], ["index", str(CORPUS)], ["remove", "a"])
    ],
    (
        "env: POLICY_QA_TOP_K=abc",
        ["ask", QUESTION],
        "sound",
        "not a valid int",
        {"POLICY_QA_TOP_K": "abc"},
    ),
    ("env: POLICY_QA_AUTH=':'", ["serve"], "sound", "empty user name", {"POLICY_QA_AUTH": ":"}),
    ("env: POLICY_QA_AUTH='user:'", ["serve"], "sound", "empty password", {"POLICY_QA_AUTH": "u:"}),
    (
        "env: an unknown fault boundary",
        ["index", str(CORPUS)],
        "sound",
        "fault_pause_at must be one of",
        {"POLICY_QA_FAULT_PAUSE_AT": "nowhere"},
    ),
]


@pytest.mark.parametrize(
    ("case", "args", "index", "says", "env"), CLI_CASES, ids=[c[0] for c in CLI_CASES]
)
def test_cli(
    indexes: dict[str, Path],
    case: str,
    args: list[str | bytes],
    index: str,
    says: str | None,
    env: dict[str, str],
) -> None:
    index_dir = indexes[index]

    def attempt() -> tuple[bool, bool]:
        quiet = ["-q"] if args[0] == "index" else []  # no progress bar in the one line
        done = policy_qa(*args, *quiet, "--index-dir", str(index_dir), env=env)
        stderr = done.stderr.decode("utf-8", "replace")
        lines = [line for line in stderr.splitlines() if line.strip()]
        if says is None:
            return done.returncode == 0 and not lines and bool(done.stdout), "Traceback" in stderr
        one = len(lines) == 1 and says in lines[0]
        return done.returncode == 1 and one, "Traceback" in stderr

    record(case, "cli", index_dir, attempt)


def test_cli_two_indexers_creating_one_folder(tmp_path: Path) -> None:
    """The issue's race: both died in 1 run of 5. Now both finish and agree."""
    index_dir = tmp_path / "fresh"
    exe = Path(sys.executable).with_name("policy-qa")

    def attempt() -> tuple[bool, bool]:
        procs = [
            subprocess.Popen(
                [str(exe), "index", str(CORPUS), "--index-dir", str(index_dir), "-q"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        results = [p.communicate(timeout=300) for p in procs]
        traceback = any("Traceback" in err for _, err in results)
        ok = all(p.returncode == 0 for p in procs)
        listed = policy_qa("documents", "--json", "--index-dir", str(index_dir))
        sources = [d["source"] for d in json.loads(listed.stdout)]
        return ok and sources == ["daedeok-and-national-innovation-cluster.txt"], traceback

    record(
        "index: two processes create one fresh folder at once", "cli", tmp_path / "none", attempt
    )


def test_cli_a_damaged_lexical_index_is_rebuilt(indexes: dict[str, Path], tmp_path: Path) -> None:
    index_dir = tmp_path / "lexical-damaged"
    shutil.copytree(indexes["sound"], index_dir)
    lexical = index_dir / "lexical" / "policy_qa"
    lexical.mkdir(parents=True, exist_ok=True)
    (lexical / "meta.json").write_text('{"fingerprint": 3', encoding="utf-8")
    (lexical / "terms.npz").write_bytes(b"garbage")

    def attempt() -> tuple[bool, bool]:
        done = policy_qa("ask", QUESTION, "--index-dir", str(index_dir), "--json")
        stderr = done.stderr.decode("utf-8", "replace")
        answered = done.returncode == 0 and not json.loads(done.stdout)["abstained"]
        return answered, "Traceback" in stderr

    record("lexical index: damaged files (rebuilt)", "cli", index_dir, attempt)


# --- the Python API ---------------------------------------------------------------------------

# The calls take the assistant as ``Any``: they pass it what its signatures forbid, on purpose.
_API: list[tuple[str, Callable[[Any], Any], type[PolicyQAError] | None, str]] = [
    # (case, call, the error it must raise (None: answered), what the message says)
    ("question: lone surrogate", lambda qa: qa.ask("When\ud800?"), QuestionError, "U+D800"),
    ("question: invalid UTF-8", lambda qa: qa.ask("caf\udce9?"), QuestionError, "0xE9"),
    ("question: empty", lambda qa: qa.ask(""), QuestionError, "Please type"),
    ("question: only whitespace", lambda qa: qa.ask("\n\t "), QuestionError, "Please type"),
    ("question: 100,000 characters", lambda qa: qa.ask(HUGE), QuestionError, "characters long"),
    ("question: None", lambda qa: qa.ask(None), QuestionError, "Please type"),
    ("question: a number", lambda qa: qa.ask(123), QuestionError, "got int"),
    ("question: bytes", lambda qa: qa.ask(b"When?"), QuestionError, "got bytes"),
    ("question: a list", lambda qa: qa.ask(["When?"]), QuestionError, "got list"),
    ("question: NUL, escape, bidi", lambda qa: qa.ask("When\x00 \x1b[2J\u202e?"), None, ""),
    ("question: only punctuation", lambda qa: qa.ask("?!?"), None, ""),
    (
        "history: [(None, None)]",
        lambda qa: qa.ask(QUESTION, [(None, None)]),
        QuestionError,
        "turn 1",
    ),
    (
        "history: lone surrogate",
        lambda qa: qa.ask(QUESTION, [("q\ud800", "a")]),
        QuestionError,
        "turn 1's question",
    ),
    ("history: a string", lambda qa: qa.ask(QUESTION, "q, a"), QuestionError, "got str"),
    ("history: a number", lambda qa: qa.ask(QUESTION, 42), QuestionError, "got int"),
    ("history: a dict", lambda qa: qa.ask(QUESTION, {"q": "a"}), QuestionError, "got dict"),
    ("history: a one-item turn", lambda qa: qa.ask(QUESTION, [["q"]]), QuestionError, "turn 1"),
    (
        "history: a three-item turn",
        lambda qa: qa.ask(QUESTION, [["q", "a", "b"]]),
        QuestionError,
        "turn 1",
    ),
    ("history: [None]", lambda qa: qa.ask(QUESTION, [None]), QuestionError, "turn 1"),
    ("history: numbers", lambda qa: qa.ask(QUESTION, [[1, 2]]), QuestionError, "turn 1"),
    ("history: 500 turns", lambda qa: qa.ask(QUESTION, [("q", "a")] * 500), None, ""),
    (
        "history: chat messages",
        lambda qa: qa.ask(
            QUESTION, [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
        ),
        None,
        "",
    ),
    (
        "history: a message without content",
        lambda qa: qa.ask(QUESTION, [{"role": "user", "content": "q"}, {"role": "assistant"}]),
        QuestionError,
        "message 2's content",
    ),
    (
        "history: a message of another role",
        lambda qa: qa.ask(QUESTION, [{"role": "bot", "content": "x"}]),
        QuestionError,
        "role 'bot'",
    ),
    (
        "history: messages and pairs",
        lambda qa: qa.ask(QUESTION, [{"role": "user", "content": "q"}, ["q2", "a2"]]),
        None,
        "",
    ),
    ("within: a number", lambda qa: qa.ask(QUESTION, within=7), QuestionError, "within"),
    (
        "within: lone surrogate",
        lambda qa: qa.ask(QUESTION, within="\udc80"),
        QuestionError,
        "within",
    ),
    ("within: matches nothing", lambda qa: qa.ask(QUESTION, within="none/"), None, ""),
    ("k: 0", lambda qa: qa.retrieve(QUESTION, k=0), QuestionError, "k must be"),
    ("k: -1", lambda qa: qa.retrieve(QUESTION, k=-1), QuestionError, "k must be"),
    ("k: text", lambda qa: qa.retrieve(QUESTION, k="5"), QuestionError, "k must be"),
    ("k: True", lambda qa: qa.retrieve(QUESTION, k=True), QuestionError, "k must be"),
    ("llm: unknown backend", lambda qa: qa.ask(QUESTION, llm="gpt5"), ConfigError, "llm must be"),
    ("remove: unknown source", lambda qa: qa.remove("nope.txt") is False, None, ""),
    ("remove: a number", lambda qa: qa.remove(123), DocumentNotFoundError, "not the source"),
    ("remove: lone surrogate", lambda qa: qa.remove("\ud800"), DocumentNotFoundError, "source"),
    (
        "document_text: unknown",
        lambda qa: qa.document_text("x"),
        DocumentNotFoundError,
        "not indexed",
    ),
    ("document_text: None", lambda qa: qa.document_text(None), DocumentNotFoundError, "source"),
    ("index: a number", lambda qa: qa.index(123), DocumentError, "got 123"),
    ("index: None", lambda qa: qa.index(None), DocumentError, "got None"),
    ("index: a NUL in a path", lambda qa: qa.index(["a\x00b"]), DocumentError, "NUL"),
    ("index: a path that does not exist", lambda qa: qa.index(["/nonexistent/x"]), None, ""),
    ("settings: auth ':'", lambda qa: Settings(auth=":"), ConfigError, "empty user name"),
    ("settings: auth 'user:'", lambda qa: Settings(auth="user:"), ConfigError, "empty password"),
    ("settings: auth ' user:pw'", lambda qa: Settings(auth=" u:pw"), ConfigError, "spaces"),
    ("settings: auth without ':'", lambda qa: Settings(auth="user"), ConfigError, "no ':'"),
]


@pytest.mark.parametrize(("case", "call", "error", "says"), _API, ids=[c[0] for c in _API])
def test_api(
    api: Assistant,
    indexes: dict[str, Path],
    case: str,
    call: Callable[[Assistant], Any],
    error: type[PolicyQAError] | None,
    says: str,
) -> None:
    def attempt() -> tuple[bool, bool]:
        try:
            result = call(api)
        except PolicyQAError as exc:
            return error is not None and isinstance(exc, error) and says in str(exc), False
        except Exception:  # anything else is what a user would have seen as a traceback
            return False, True
        return error is None and result is not False, False

    record(case, "api", indexes["sound"], attempt)


_API_INDEXES: list[tuple[str, str, Callable[[Assistant], Any], type[PolicyQAError], str]] = [
    (f"{where} ({name})", where, call, error, says)
    for where, error, says in [
        ("a-file", ConfigError, "is a file, not a folder"),
        ("under-a-file", ConfigError, "path is a file"),
        ("truncated", IndexDamagedError, "policy-qa index"),
        ("bad-header", IndexDamagedError, "policy-qa index"),
        ("empty", IndexDamagedError, "0 bytes"),
    ]
    for name, call in [
        ("documents", lambda qa: qa.documents()),
        ("ask", lambda qa: qa.ask(QUESTION)),
        ("index", lambda qa: qa.index([CORPUS])),
        ("remove", lambda qa: qa.remove("a.txt")),
    ]
    if not (where == "under-a-file" and name != "index")
] + [
    ("missing (ask)", "missing", lambda qa: qa.ask(QUESTION), IndexNotFoundError, "policy-qa index")
]


@pytest.mark.parametrize(
    ("case", "where", "call", "error", "says"), _API_INDEXES, ids=[c[0] for c in _API_INDEXES]
)
def test_api_on_unusable_indexes(
    indexes: dict[str, Path],
    qa: Any,
    tmp_path: Path,
    case: str,
    where: str,
    call: Callable[[Assistant], Any],
    error: type[PolicyQAError],
    says: str,
) -> None:
    index_dir = indexes.get(where, tmp_path / "missing")
    settings = Settings(index_dir=index_dir, data_dir=tmp_path / "data", judge="off")

    def attempt() -> tuple[bool, bool]:
        try:
            call(Assistant(settings=settings, embeddings=qa.embeddings))
        except PolicyQAError as exc:
            return isinstance(exc, error) and says in str(exc) and "\n" not in str(exc), False
        except Exception:
            return False, True
        return False, False

    record(f"index folder {case}", "api", index_dir, attempt)


# --- the web API ------------------------------------------------------------------------------

_WEB: list[tuple[str, Any, Any, str | None, str | None]] = [
    # (case, question, history, backend, what the error says (None: answered))
    ("question: empty", "", [], None, "Please type a question"),
    ("question: only whitespace", "  \n ", [], None, "Please type a question"),
    ("question: 100,000 characters", HUGE, [], None, "characters long"),
    ("question: a number", 123, [], None, "got int"),
    ("question: null", None, [], None, "Please type a question"),
    ("question: escape and bidi characters", "When \x1b[2J\u202e?", [], None, None),
    ("history: [[null, null]]", QUESTION, [[None, None]], None, "turn 1"),
    ("history: not JSON", QUESTION, "not json", None, "JSON list"),
    ("history: the JSON number 42", QUESTION, "42", None, "got int"),
    ("history: a JSON object", QUESTION, '{"a": 1}', None, "got dict"),
    ("history: a one-item turn", QUESTION, [["only"]], None, "turn 1"),
    ("history: a three-item turn", QUESTION, [["q", "a", "b"]], None, "turn 1"),
    ("history: numbers", QUESTION, [[1, 2]], None, "turn 1"),
    ("history: [null]", QUESTION, [None], None, "turn 1"),
    ("backend: unknown", QUESTION, [], "gpt5", "Unknown answer backend"),
]
_OPAQUE = "upstream app raised an exception"


@pytest.mark.parametrize(
    ("case", "question", "history", "backend", "says"), _WEB, ids=[c[0] for c in _WEB]
)
def test_web(
    served: str,
    indexes: dict[str, Path],
    caplog: pytest.LogCaptureFixture,
    case: str,
    question: Any,
    history: Any,
    backend: str | None,
    says: str | None,
) -> None:
    client = Client(served, verbose=False)

    def attempt() -> tuple[bool, bool]:
        try:
            result = client.predict(question, history, backend, api_name=f"/{API_NAME}")
        except Exception as exc:
            message = str(exc)
            return says is not None and says in message and _OPAQUE not in message, False
        return says is None and isinstance(result, dict) and "answer" in result, False

    record(case, "web", indexes["sound"], attempt)
    assert not [r for r in caplog.records if r.levelname == "ERROR"], "the server logged an error"


def _raw_ask(url: str, body: bytes) -> tuple[int, str]:
    """POST /ask as raw JSON (gradio_client cannot send a lone surrogate); (status, reply)."""
    call = f"{url.rstrip('/')}/gradio_api/call/{API_NAME}"
    posted = httpx.post(call, content=body, headers={"content-type": "application/json"})
    if posted.status_code != 200:
        return posted.status_code, posted.text
    event = posted.json()["event_id"]
    return 200, httpx.get(f"{call}/{event}", timeout=120).text


_RAW: list[tuple[str, bytes, str]] = [
    # (case, the request body, what the reply says)
    (
        "question: lone surrogate",
        json.dumps({"data": ["When\ud800?", [], None]}).encode(),
        "lone surrogate (U+D800)",
    ),
    (
        "history: invalid UTF-8 (as a surrogate escape)",
        json.dumps({"data": [QUESTION, [["q\udcff", "a"]], None]}).encode(),
        "turn 1's question is not valid text",
    ),
    ("body: invalid UTF-8 bytes", b'{"data": ["When \xff?", [], null]}', "error parsing the body"),
]


@pytest.mark.parametrize(("case", "body", "says"), _RAW, ids=[c[0] for c in _RAW])
def test_web_raw(served: str, indexes: dict[str, Path], case: str, body: bytes, says: str) -> None:
    def attempt() -> tuple[bool, bool]:
        status, reply = _raw_ask(served, body)
        error = status == 400 or reply.startswith("event: error")
        return error and says in reply and _OPAQUE not in reply, "Traceback" in reply

    record(case, "web", indexes["sound"], attempt)


# --- bad files: skipped with their reason, and the rest of the run goes on --------------------

# (file name, what its one-line reason says). Each is tried on every surface it can reach: a
# browser cannot upload a link or a name that is not UTF-8.
BAD_FILES: list[tuple[str, str]] = [
    ("loop-a.txt", "symbolic link loop"),
    ("loop-b.txt", "symbolic link loop"),
    (os.fsdecode(b"caf\xe9.txt"), "is not valid UTF-8; rename it"),
    ("random.txt", "looks like binary data"),
    ("big.txt", "over the 50 MB limit per file"),
    ("bomb.docx", "over the 100 MB limit; raise POLICY_QA_MAX_UNPACKED_MB"),
    ("empty.txt", "empty"),
    ("broken.pdf", "could not read PDF"),
]
UPLOADABLE = ("random.txt", "big.txt", "bomb.docx", "empty.txt", "broken.pdf")
HOSTILE = (
    "Fund rules\n\nThe Tarnwick fund pays \u202e$100\u202c to each \x1b[31mdistrict\x1b[0m "
    "every spring, after the council approves the accounts.\n"
)
HOSTILE_ASK = "How much does the Tarnwick fund pay each district?"
UNSAFE = ("\x1b", "\u202e", "\u202c")


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of bad files, one well-formed file and one with terminal escapes and bidi
    overrides (indexed, cleaned)."""
    import docx

    folder = tmp_path_factory.mktemp("bad-files")
    (folder / "loop-a.txt").symlink_to(folder / "loop-b.txt")
    (folder / "loop-b.txt").symlink_to(folder / "loop-a.txt")
    (folder / os.fsdecode(b"caf\xe9.txt")).write_text("Named in Latin-1.\n", encoding="utf-8")
    # The random bytes saved as .txt were indexed as 152 chunks of mojibake.
    (folder / "random.txt").write_bytes(random.Random(24).randbytes(200_000))
    with (folder / "big.txt").open("wb") as sparse:  # 51 MB on paper, no disk used
        sparse.truncate(51_000_000)
    memo = docx.Document()
    memo.add_paragraph("A memo.")
    memo.save(str(folder / "bomb.docx"))
    with (
        zipfile.ZipFile(folder / "bomb.docx", "a", compression=zipfile.ZIP_DEFLATED) as archive,
        archive.open("word/media/padding.bin", "w", force_zip64=True) as part,
    ):
        for _ in range(101):  # 101 MB of zeros, about 100 kB packed
            part.write(bytes(1_000_000))
    (folder / "empty.txt").write_bytes(b"")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog")
    (folder / "hostile.txt").write_text(HOSTILE, encoding="utf-8")
    (folder / "good.txt").write_text(
        "Library hours\n\nThe Tarnwick library opens at nine on weekdays.\n", encoding="utf-8"
    )
    return folder


def shown(name: str) -> str:
    """How a skipped file's name is reported: a byte that is not UTF-8 as ``\\xe9``."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def kept(before: Any, after: Any) -> bool:
    """Whether everything indexed before is still there, unchanged (new documents may join)."""
    (docs, ids), (docs_after, ids_after) = before, after
    return set(docs) <= set(docs_after) and all(
        set(ids[name]) <= set(ids_after[name]) for name in ids
    )


def record_files(surface: str, outcomes: dict[str, tuple[bool, bool]], lost: bool) -> None:
    for name, (clean, traceback) in outcomes.items():
        LEDGER.append(Outcome(f"file: {name}", surface, clean and not lost, traceback, lost))
    assert not lost, f"{surface}: indexing the bad files changed what was indexed before"
    assert all(clean and not tb for clean, tb in outcomes.values()), outcomes


def private_index(indexes: dict[str, Path], tmp_path: Path) -> Path:
    index_dir = tmp_path / "index"
    shutil.copytree(indexes["sound"], index_dir)
    return index_dir


def test_cli_bad_files(indexes: dict[str, Path], bad_files: Path, tmp_path: Path) -> None:
    index_dir = private_index(indexes, tmp_path)
    before = fingerprint(index_dir)
    done = policy_qa("index", str(bad_files), "--index-dir", str(index_dir), "-q")
    stderr = done.stderr.decode("utf-8", "replace")
    lines = [line for line in stderr.splitlines() if line.strip()]
    traceback = "Traceback" in stderr
    outcomes = {}
    for name, says in BAD_FILES:
        mine = [line for line in lines if f"/{shown(name)}: " in line]
        one = len(mine) == 1 and mine[0].startswith("  skipped ") and says in mine[0]
        outcomes[name] = (done.returncode == 0 and one, traceback)
    # Nothing but the skipped files' lines: no library warning, no progress bar.
    assert len(lines) == len(BAD_FILES), lines
    assert b"2 added" in done.stdout
    asked = policy_qa("ask", HOSTILE_ASK, "--index-dir", str(index_dir))
    answer = asked.stdout.decode("utf-8")
    outcomes["hostile.txt"] = (
        asked.returncode == 0 and "$100" in answer and not any(c in answer for c in UNSAFE),
        b"Traceback" in asked.stderr,
    )
    record_files("cli", outcomes, not kept(before, fingerprint(index_dir)))


def test_api_bad_files(indexes: dict[str, Path], bad_files: Path, tmp_path: Path, qa: Any) -> None:
    index_dir = private_index(indexes, tmp_path)
    before = fingerprint(index_dir)
    settings = Settings(index_dir=index_dir, data_dir=tmp_path / "data", judge="off")
    assistant = Assistant(settings=settings, embeddings=qa.embeddings)
    try:
        report = assistant.index([bad_files])
    except Exception:
        outcomes = {name: (False, True) for name, _ in BAD_FILES}
    else:
        reasons = {Path(s.path).name: s.reason for s in report.skipped}
        outcomes = {}
        for name, says in BAD_FILES:
            reason = reasons.get(shown(name), "")
            outcomes[name] = (says in reason and "\n" not in reason, False)
        assert sorted(report.added) == ["good.txt", "hostile.txt"]
        answer = assistant.ask(HOSTILE_ASK)
        text = answer.answer + "".join(c.quote for c in answer.citations)
        outcomes["hostile.txt"] = ("$100" in text and not any(c in text for c in UNSAFE), False)
    assistant.close()
    record_files("api", outcomes, not kept(before, fingerprint(index_dir)))


def test_web_bad_uploads(
    indexes: dict[str, Path], bad_files: Path, tmp_path: Path, qa: Any
) -> None:
    """The page's upload handler (a plain function: the page calls exactly this)."""
    from policy_qa.ui import ChatUI

    index_dir = private_index(indexes, tmp_path)
    before = fingerprint(index_dir)
    settings = Settings(index_dir=index_dir, data_dir=tmp_path / "data", judge="off")
    assistant = Assistant(settings=settings, embeddings=qa.embeddings)
    ui = ChatUI(assistant)
    outcomes = {}
    for name in (*UPLOADABLE, "hostile.txt"):
        says = dict(BAD_FILES).get(name, "searchable now")
        if name == "big.txt":
            says = "over the 20 MB limit"  # the upload limit comes first
        try:
            status = ui.upload([str(bad_files / name)]).status
        except Exception:
            outcomes[name] = (False, True)
            continue
        outcomes[name] = (says in status and status.count("pqa-status") == 1, False)
    view = list(ui.respond(HOSTILE_ASK, []))[-1]
    said = view.turns[-1]["answer"]["answer"]
    clean = "$100" in said and not any(c in said for c in UNSAFE)
    outcomes["hostile.txt"] = (outcomes["hostile.txt"][0] and clean, outcomes["hostile.txt"][1])
    assistant.close()
    record_files("web", outcomes, not kept(before, fingerprint(index_dir)))


# --- the counts -------------------------------------------------------------------------------


def test_the_catalogue_adds_up() -> None:
    """Runs last in this module: the closing counts (``-s`` shows them)."""
    if not LEDGER:
        pytest.skip("run with the rest of this module")
    by_surface: dict[str, int] = {}
    for outcome in LEDGER:
        by_surface[outcome.surface] = by_surface.get(outcome.surface, 0) + 1
    tried = len(LEDGER)
    clean = sum(o.clean for o in LEDGER)
    tracebacks = sum(o.traceback for o in LEDGER)
    lost = sum(o.data_lost for o in LEDGER)
    surfaces = ", ".join(f"{k} {v}" for k, v in sorted(by_surface.items()))
    print(
        f"\nbad-input catalogue: {tried} inputs tried ({surfaces}), {clean} clean, "
        f"{tracebacks} traceback, {lost} data lost"
    )
    assert tracebacks == 0 and lost == 0 and clean == tried


def test_messages_are_read_as_the_pairs_they_hold() -> None:
    """The Python API takes a conversation as OpenAI-style and Gradio clients keep it."""
    messages = [
        {"role": "assistant", "content": "Hello! Ask me about the documents."},
        {"role": "system", "content": "ignored"},
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1"},
        {"role": "assistant", "content": "a1, more"},
        {"role": "user", "content": [{"type": "text", "text": "q2"}, {"type": "image"}]},
        {"role": "user", "content": "q3"},
        {"role": "assistant", "content": "a3"},
    ]
    assert check_history(messages) == [("q1", "a1\n\na1, more"), ("q2", ""), ("q3", "a3")]
    with pytest.raises(QuestionError, match="history turn 1's question is not valid text"):
        check_history([{"role": "user", "content": "q\ud800"}])
