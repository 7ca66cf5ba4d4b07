"""The model worker and its supervisor: real worker processes, real models, real signals.

The answerability check and the local LLM backend run llama.cpp in a worker process. Whatever
happens to it (killed, crashed, hung, unable to start), the caller gets an ``LLMError`` with a
readable reason, the question still gets its answer with a note, and the next call starts a
fresh worker. The crash tests send real signals to the real worker while it reads a prompt.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from gradio_client import Client

from policy_qa import Assistant, Settings
from policy_qa.errors import LLMError
from policy_qa.judge import BAND, AnswerabilityJudge, judge_available
from policy_qa.llm import YesNoModel, smollm2_model_path
from policy_qa.supervisor import WORKER_NICENESS, WorkerPool
from policy_qa.worker import build_features

from .ui_fixtures import private_assistant, running_app

pytestmark = pytest.mark.llm

needs_judge = pytest.mark.skipif(
    not judge_available(), reason="needs policy-qa[llm] (llama-cpp-python and the Qwen parts)"
)

# In the check's band and answerable: the scores alone answer it too (confidence >= 0.48),
# so the fallback's answer is the same and only the notes differ.
BORDERLINE = "What was Daedeok Valley meant to do?"
FAILED_NOTE = "answerability check failed, refusal threshold used: the model worker"

YES_NO = [
    {"role": "system", "content": "Reply with one word: yes or no."},
    {"role": "user", "content": "Text: The complex was founded in 1973.\n\nWas it founded?"},
]


@pytest.fixture(scope="module")
def smol() -> Iterator[WorkerPool]:
    pool = WorkerPool(smollm2_model_path(), n_ctx=1024, n_threads=2)
    yield pool
    pool.close()


@pytest.fixture(scope="module")
def judged(corpus_index: Path) -> Iterator[Assistant]:
    qa = Assistant(index_dir=corpus_index, settings=Settings.from_env(judge="on"))
    qa.prepare_check()  # the worker is up: the signals below land mid-question, not mid-load
    yield qa
    qa.close()


def _judge_pool(qa: Assistant) -> WorkerPool:
    judge = qa._judge_()
    assert isinstance(judge, AnswerabilityJudge)
    return judge.pool


class _SignalWhenBusy:
    """Sends ``sig`` to the pool's worker as soon as it works on ``op``; records its pid."""

    def __init__(self, pool: WorkerPool, op: str, sig: signal.Signals) -> None:
        self.pid: int | None = None
        self._stop = threading.Event()

        def run() -> None:
            while not self._stop.is_set():
                for worker in pool.workers:
                    pid = worker.pid
                    if worker.in_flight == op and pid is not None:
                        os.kill(pid, sig)
                        self.pid = pid
                        return
                time.sleep(0.002)

        self._thread = threading.Thread(target=run, daemon=True)

    def __enter__(self) -> _SignalWhenBusy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# --- the worker itself -----------------------------------------------------------------------


def test_the_worker_reads_replies_and_streams(smol: WorkerPool) -> None:
    info = smol.start()
    assert info["pid"] == smol.pids[0] != os.getpid()
    assert info["model"] == smollm2_model_path().name and info["features"]
    result = smol.request("p_yes", {"messages": YES_NO}, timeout=120)
    assert 0.0 <= result["p"] <= 1.0 and result["tokens"] > 10
    deltas = list(
        smol.stream(
            "chat",
            {"messages": [{"role": "user", "content": "Name a color."}], "max_tokens": 12},
            timeout=120,
        )
    )
    assert len(deltas) >= 2 and "".join(deltas).strip()
    assert smol.pids == [info["pid"]]  # one worker served all three


def test_the_worker_runs_nicer_than_its_caller_and_calls_are_counted(smol: WorkerPool) -> None:
    # Questions that need no model call keep the cores (docs/decisions/106-many-users-at-once.md).
    pid = smol.start()["pid"]
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, mine + WORKER_NICENESS)
    calls = smol.calls
    smol.request("p_yes", {"messages": YES_NO}, timeout=120)
    assert smol.calls == calls + 1


def test_a_follow_up_reuses_what_the_worker_read(smol: WorkerPool) -> None:
    # p_yes leaves the prompt in llama.cpp's cache; the quote follow-up reads only its new turn.
    smol.request("p_yes", {"messages": YES_NO}, timeout=120)
    follow_up = [
        *YES_NO,
        {"role": "assistant", "content": "yes"},
        {"role": "user", "content": "Quote it."},
    ]
    result = smol.request("reply", {"messages": follow_up, "max_tokens": 8}, timeout=120)
    assert result["reused"] >= 20 and result["reused"] < result["tokens"]


def test_a_stopped_stream_leaves_the_worker_ready(smol: WorkerPool) -> None:
    request = {"messages": [{"role": "user", "content": "Count to fifty."}], "max_tokens": 200}
    stream = smol.stream("chat", request, timeout=120)
    first = next(stream)
    pid = smol.pids[0]
    stream.close()  # the user pressed Stop: the worker is told to cancel, and stays
    assert first and smol.pids == [pid]
    assert 0.0 <= smol.request("p_yes", {"messages": YES_NO}, timeout=120)["p"] <= 1.0


def test_a_prompt_too_long_is_an_error_the_worker_survives(smol: WorkerPool) -> None:
    pid = smol.start()["pid"]
    long = [{"role": "user", "content": "word " * 3000}]
    with pytest.raises(LLMError, match="does not fit the model's context"):
        smol.request("p_yes", {"messages": long}, timeout=120)
    assert smol.pids == [pid]


def test_a_file_that_is_no_model_cannot_start_a_worker(tmp_path: Path) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a model")
    pool = WorkerPool(bad, n_ctx=512, n_threads=1)
    with pytest.raises(LLMError, match="could not load the GGUF model"):
        pool.request("p_yes", {"messages": YES_NO}, timeout=30)
    assert pool.pids == []


def test_a_worker_killed_between_calls_is_replaced(smol: WorkerPool) -> None:
    pid = smol.start()["pid"]
    os.kill(pid, signal.SIGKILL)  # say, by the OOM killer while the chat was idle
    deadline = time.monotonic() + 10
    while smol.pids == [pid] and time.monotonic() < deadline:
        time.sleep(0.01)  # until the kernel has ended it
    assert 0.0 <= smol.request("p_yes", {"messages": YES_NO}, timeout=120)["p"] <= 1.0
    assert smol.pids and smol.pids[0] != pid


def test_build_features_read_llama_cpp_system_info() -> None:
    info = "CPU : SSE3 = 1 | AVX2 = 1 | AVX512 = 0 | AMX_INT8 = 1 | REPACK = 1 |"
    assert build_features(info) == ["SSE3", "AVX2", "AMX_INT8", "REPACK"]


# --- the installed build on this machine -----------------------------------------------------


@needs_judge
def test_the_installed_build_is_safe_on_this_cpu() -> None:
    """No AMX path in the build (or the weights kept out of it), and a 1,000-token read of the
    Q4_K_M model completes: the read that died with SIGSEGV in a native build on AMX CPUs."""
    from policy_qa.llm import ensure_qwen_model

    qwen = ensure_qwen_model(Settings.from_env().model_cache)
    model = YesNoModel(qwen, timeout=600)
    info = model.load()
    assert not info["amx"] or not info["extra_buffers"], info["system_info"]
    assert "AVX2" in info["features"]
    text = ("The Daedeok research complex was set up in 1973 in Daejeon. " * 90).strip()
    messages = [{"role": "user", "content": f"{text}\n\nIs a year named? Yes or no."}]
    result = model.pool.request("p_yes", {"messages": messages}, timeout=600)
    assert result["tokens"] >= 1000 and 0.0 <= result["p"] <= 1.0
    assert model.pool.pids == [info["pid"]]


# --- a question survives its worker ----------------------------------------------------------


@needs_judge
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSEGV], ids=["SIGKILL", "SIGSEGV"])
def test_a_worker_killed_mid_question_leaves_an_answer_with_a_note(
    judged: Assistant, sig: signal.Signals
) -> None:
    pool = _judge_pool(judged)
    with _SignalWhenBusy(pool, "p_yes", sig) as killer:
        answer = judged.ask(BORDERLINE)
    assert killer.pid is not None
    assert BAND[0] <= answer.confidence < BAND[1]
    assert not answer.abstained and answer.citations  # the scores' decision
    [note] = [n for n in answer.notes if n.startswith(FAILED_NOTE)]
    assert f"died ({sig.name}) while reading the prompt" in note
    assert note.endswith("the next question starts a fresh one")
    # The next question starts a fresh worker, and the check works again.
    again = judged.ask(BORDERLINE)
    assert any(n.startswith("answerability check (Qwen2.5-1.5B)") for n in again.notes)
    assert pool.pids and killer.pid not in pool.pids


@needs_judge
def test_a_hung_worker_is_stopped_after_the_timeout(judged: Assistant) -> None:
    impatient = Assistant(
        index_dir=judged.index_dir,
        settings=Settings.from_env(judge="on", judge_timeout=3.0),
        embeddings=judged.embeddings,
    )
    pool = _judge_pool(impatient)
    assert pool is _judge_pool(judged)  # one worker pool per model in a process
    with _SignalWhenBusy(pool, "p_yes", signal.SIGSTOP) as freezer:
        began = time.monotonic()
        answer = impatient.ask(BORDERLINE)
        waited = time.monotonic() - began
    assert freezer.pid is not None and waited < 60
    [note] = [n for n in answer.notes if n.startswith(FAILED_NOTE)]
    assert "did not answer within 3 s while reading the prompt; it was stopped" in note
    assert not answer.abstained
    with pytest.raises(ProcessLookupError):
        os.kill(freezer.pid, 0)  # killed, not left stopped
    again = judged.ask(BORDERLINE)
    assert any(n.startswith("answerability check (Qwen2.5-1.5B)") for n in again.notes)
    assert pool.pids and freezer.pid not in pool.pids
    impatient.close()


@needs_judge
def test_the_llm_backend_falls_back_when_its_worker_dies(
    corpus_index: Path, judged: Assistant
) -> None:
    qa = Assistant(
        index_dir=corpus_index,
        settings=Settings.from_env(judge="off", llm="llamacpp", llm_max_tokens=24),
        embeddings=judged.embeddings,
    )
    answerer = qa._llm_answerer("llamacpp")
    pool = answerer.load().pool
    question = "When was the Daedeok Research Complex established?"
    with _SignalWhenBusy(pool, "chat", signal.SIGSEGV) as killer:
        answer = qa.ask(question)
    assert killer.pid is not None
    assert not answer.abstained and "1973" in answer.answer  # the extractive answer
    [note] = [n for n in answer.notes if n.startswith("LLM failed")]
    assert "the model worker died (SIGSEGV) while writing an answer" in note
    again = qa.ask(question)
    assert not any(n.startswith("LLM failed") for n in again.notes)
    assert pool.pids and killer.pid not in pool.pids
    qa.close()


@needs_judge
@pytest.mark.server
def test_the_chat_server_outlives_its_worker(
    corpus_index: Path, judged: Assistant, tmp_path: Path
) -> None:
    qa = private_assistant(corpus_index, judged, tmp_path, judge="on")
    pool = _judge_pool(qa)
    with running_app(qa) as url:
        client = Client(url, verbose=False)
        with _SignalWhenBusy(pool, "p_yes", signal.SIGSEGV) as killer:
            first = client.predict(BORDERLINE, api_name="/ask")
        assert killer.pid is not None
        assert any(n.startswith(FAILED_NOTE) and "SIGSEGV" in n for n in first["notes"])
        second = client.predict(BORDERLINE, api_name="/ask")
        assert any(n.startswith("answerability check (Qwen2.5-1.5B)") for n in second["notes"])
    qa.close()


# A child that watches its parent, then sleeps far longer than the test waits, stdin held open:
# only the watch can end it early.
_ORPHAN = """
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", (
    "import time; from policy_qa.worker import exit_with_parent; "
    "exit_with_parent(interval=0.1); print('watching', flush=True); time.sleep(300)"
)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
child.stdout.readline()
print(child.pid, flush=True)
time_to_die = sys.stdin.readline()
"""


def test_a_worker_ends_soon_after_its_parent_is_killed() -> None:
    """End of stdin ends a worker only between requests; killed mid-request, the parent left a
    worker using a core until its request ended. The worker watches its parent instead."""
    parent = subprocess.Popen(
        [sys.executable, "-c", _ORPHAN], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 60  # a liveness bound, not a speed figure
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    """Running: a zombie (ended, not yet reaped by whoever adopted it) counts as ended."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
