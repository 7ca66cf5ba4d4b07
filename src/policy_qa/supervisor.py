"""Starts, talks to and watches the model worker processes (``policy_qa.worker``).

The caller's process (the web chat, a script calling ``Assistant.ask``) never loads llama.cpp:
it sends requests to a worker over pipes and waits for the reply with a timeout. Whatever
happens to the worker becomes an ``LLMError`` whose message says what happened, and the next
call starts a fresh worker (docs/decisions/052-model-worker-process.md):

- it dies (any signal: SIGSEGV in native code, SIGKILL from the OOM killer or a person) or
  exits: "the model worker died (SIGSEGV) while reading the prompt …";
- it does not answer within the timeout (hung, stopped, far too slow): it is killed;
- it cannot start (llama-cpp-python missing, a file that is not a GGUF model): the reason.

``WorkerPool`` holds the workers of one model (``llm_workers`` of them, one request at a time
each: a llama.cpp context is not re-entrant); a call takes a free one and waits for one up to a
limit. ``worker_pool`` keeps one pool per model and options per process, so the answerability
check of every ``Assistant`` and the doctor share the same workers.

This module knows the protocol, not the operations' meaning: ``llm`` builds the requests.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Collection, Generator, Iterator
from pathlib import Path
from typing import IO, Any

from .errors import LLMError

__all__ = [
    "STARTUP_TIMEOUT",
    "WORKER_NICENESS",
    "ModelWorker",
    "WorkerPool",
    "close_all",
    "default_threads",
    "worker_pool",
]

log = logging.getLogger(__name__)

# Starting a worker: Python, llama_cpp and the model file (Qwen loads in ~1 s from a warm page
# cache, far longer from a cold disk); a dead start still fails at once.
STARTUP_TIMEOUT = 180.0
# After a cancelled chat, how long the worker may take to notice (it checks after each token).
_CANCEL_GRACE = 10.0
_STDERR_KEPT = 60  # lines of the worker's stderr kept for the log when it dies
_WORKER_SCRIPT = Path(__file__).with_name("worker.py")
_OMP_WAIT_POLICY = "PASSIVE"  # unless the environment says otherwise; see ``start``
# The worker runs this much nicer than its caller: a model call takes seconds anyway, while a
# question that needs none should keep the cores it needs for its ~50 ms
# (docs/decisions/106-many-users-at-once.md).
WORKER_NICENESS = 10

_WHAT = {
    "start": "loading the model",
    "p_yes": "reading the prompt",
    "reply": "writing a reply",
    "chat": "writing an answer",
    "info": "reporting its build",
}


class ModelWorker:
    """One worker process for one model: started on first use and after any failure.

    Not thread-safe by itself: ``WorkerPool`` hands a worker to one caller at a time.
    ``in_flight`` names the operation a request is waiting on (None when idle).
    """

    def __init__(self, model_path: Path, n_ctx: int, n_threads: int) -> None:
        if n_ctx < 64 or n_threads < 1:
            raise ValueError(f"need n_ctx >= 64 and n_threads >= 1, got {n_ctx}, {n_threads}")
        self.model_path = Path(model_path)
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.in_flight: str | None = None
        self.prefix: str | None = None  # what the worker's context last read (``WorkerPool``)
        self.starts = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._messages: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._stderr: collections.deque[str] = collections.deque(maxlen=_STDERR_KEPT)
        self._info: dict[str, Any] = {}
        self._next_id = 0

    # ------------------------------------------------------------------ process

    @property
    def pid(self) -> int | None:
        """The running worker's process id (None before the first start or after a failure)."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    @property
    def info(self) -> dict[str, Any]:
        """What the worker reported when it started: build features, load time, pid."""
        return dict(self._info)

    def start(self, timeout: float = STARTUP_TIMEOUT) -> dict[str, Any]:
        """Start the worker unless it runs; its ``info`` once the model is loaded."""
        if self.pid is not None:
            return self.info
        self.stop()
        # The worker runs as a script and imports llama_cpp, numpy and the standard library
        # only: not policy_qa's package, with torch and Chroma behind it.
        env = dict(os.environ)
        # llama.cpp's threads meet at an OpenMP barrier after every operation; spinning there
        # while the other core runs the chat server's retrieval made a prompt read 30 times
        # slower on a busy 2-core machine (docs/decisions/050-portable-llama-build.md).
        env.setdefault("OMP_WAIT_POLICY", _OMP_WAIT_POLICY)
        cmd = [
            sys.executable,
            "-P",  # not the script's own folder first: policy_qa/types.py would shadow types
            str(_WORKER_SCRIPT),
            str(self.model_path),
            "--n-ctx",
            str(self.n_ctx),
            "--n-threads",
            str(self.n_threads),
            "--nice",
            str(WORKER_NICENESS),
        ]
        try:
            proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
            )
        except OSError as exc:
            raise LLMError(f"the model worker could not start: {exc}") from exc
        self._proc = proc
        self.starts += 1
        self._messages = queue.Queue()
        self._stderr.clear()
        assert proc.stdout is not None and proc.stderr is not None
        threading.Thread(
            target=_read_messages, args=(proc.stdout, self._messages), daemon=True
        ).start()
        threading.Thread(
            target=_read_stderr, args=(proc.stderr, self._stderr, proc.pid), daemon=True
        ).start()
        message = self._receive("start", timeout)
        if "fatal" in message:
            self.stop()
            raise LLMError(str(message["fatal"]))
        if "ready" not in message:
            self.stop()
            raise LLMError(f"the model worker sent {str(message)[:200]} instead of starting")
        self._info = dict(message["ready"])
        log.info(
            "model worker %d started: %s in %.1f s (%d threads; llama.cpp build: %s)",
            proc.pid,
            self.model_path.name,
            self._info.get("load_seconds", 0.0),
            self.n_threads,
            " ".join(self._info.get("features", [])) or "?",
        )
        if self._info.get("amx"):
            log.warning(
                "this llama-cpp-python build has llama.cpp's AMX path (%s); the worker keeps "
                "the weights out of it (docs/decisions/050-portable-llama-build.md)",
                ", ".join(self._info["amx"]),
            )
        return self.info

    def stop(self) -> None:
        """Kill the worker (if any) and forget it; the next request starts a fresh one."""
        proc, self._proc = self._proc, None
        self.in_flight = None
        self.prefix = None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            proc.kill()  # SIGKILL also ends a stopped (SIGSTOP) process
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            with contextlib.suppress(OSError):
                if pipe is not None:
                    pipe.close()

    def close(self) -> None:
        """End the worker politely (end of its input), then by force."""
        proc = self._proc
        if proc is not None and proc.poll() is None and proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        self.stop()

    # ------------------------------------------------------------------ requests

    def request(self, op: str, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send one request and wait up to ``timeout`` seconds for its result."""
        rid = self._send(op, payload)
        try:
            while True:
                message = self._receive(op, timeout)
                if message.get("id") != rid:
                    continue  # a late line from a cancelled request
                if "error" in message:
                    raise LLMError(str(message["error"]))
                if "result" in message:
                    return dict(message["result"])
        finally:
            self.in_flight = None

    def stream(
        self, op: str, payload: dict[str, Any], timeout: float
    ) -> Generator[str, None, None]:
        """Send one request and yield its ``delta`` lines until its result.

        ``timeout`` bounds the whole reply. Closing the generator early (the user pressed Stop)
        cancels the request in the worker, which stays loaded for the next one.
        """
        rid = self._send(op, payload)
        deadline = time.monotonic() + timeout
        finished = False
        try:
            while True:
                message = self._receive(op, max(0.0, deadline - time.monotonic()), timeout)
                if message.get("id") != rid:
                    continue
                if "delta" in message:
                    yield str(message["delta"])
                elif "error" in message:
                    finished = True
                    raise LLMError(str(message["error"]))
                elif "result" in message:
                    finished = True
                    return
        except LLMError:
            finished = True
            raise
        finally:
            if not finished:
                self._cancel(rid)
            self.in_flight = None

    def _cancel(self, rid: int) -> None:
        try:
            self._write({"op": "cancel", "id": rid})
            deadline = time.monotonic() + _CANCEL_GRACE
            while True:
                message = self._receive("cancel", max(0.0, deadline - time.monotonic()))
                if message.get("id") == rid and ("result" in message or "error" in message):
                    return
        except LLMError as exc:
            log.warning("cancelling a reply: %s", exc)

    def _send(self, op: str, payload: dict[str, Any]) -> int:
        self.start()
        self._next_id += 1
        self.in_flight = op
        self._write({"id": self._next_id, "op": op, **payload})
        return self._next_id

    def _write(self, message: dict[str, Any]) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None:
            raise self._failure(message.get("op", "?"), None)
        try:
            proc.stdin.write(json.dumps(message, ensure_ascii=False).encode("utf-8") + b"\n")
            proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._failure(str(message.get("op", "?")), None) from None

    def _receive(self, op: str, timeout: float, limit: float | None = None) -> dict[str, Any]:
        """The worker's next message; an ``LLMError`` (and a stopped worker) if it died or
        sent nothing within ``timeout`` seconds (``limit``: the budget named in the message)."""
        try:
            message = self._messages.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            raise self._failure(op, timeout if limit is None else limit) from None
        if message is None:
            raise self._failure(op, None)
        return message

    def _failure(self, op: str, timed_out: float | None) -> LLMError:
        """The error for a worker that died (``timed_out`` None) or did not answer in time."""
        proc = self._proc
        what = _WHAT.get(op, op)
        pid = proc.pid if proc is not None else None
        if timed_out is not None:
            if op == "start":
                reason = f"the model worker did not start within {timed_out:g} s"
            else:
                reason = (
                    f"the model worker did not answer within {timed_out:g} s while {what}; "
                    "it was stopped"
                )
            self.stop()
        else:
            code = None
            if proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    code = proc.wait(timeout=10)
            self.stop()
            reason = f"the model worker {_death(code)} while {what}"
        tail = [line for line in self._stderr if line.strip()]
        log.warning(
            "%s (pid %s)%s",
            reason,
            pid,
            ("; its last output:\n  " + "\n  ".join(tail[-12:])) if tail else "",
        )
        return LLMError(f"{reason}; the next question starts a fresh one")


def _death(code: int | None) -> str:
    if code is None:
        return "stopped answering"
    if code < 0:
        try:
            return f"died ({signal.Signals(-code).name})"
        except ValueError:
            return f"died (signal {-code})"
    return f"exited with code {code}"


def _read_messages(pipe: IO[bytes], messages: queue.Queue[dict[str, Any] | None]) -> None:
    """Parse the worker's protocol lines into ``messages``; None at its end."""
    try:
        for line in pipe:
            with contextlib.suppress(ValueError):
                messages.put(dict(json.loads(line)))
    except (OSError, ValueError):
        pass
    messages.put(None)


def _read_stderr(pipe: IO[bytes], kept: collections.deque[str], pid: int) -> None:
    worker_log = logging.getLogger("policy_qa.worker")
    with contextlib.suppress(OSError, ValueError):
        for raw in pipe:
            line = raw.decode("utf-8", "replace").rstrip()
            kept.append(line)
            worker_log.debug("[%d] %s", pid, line)


class WorkerPool:
    """``size`` workers for one model; a call takes a free one, waiting up to ``wait`` seconds.

    A follow-up (``prefer``: the keys of the prompts it continues) goes to the worker that read
    one of them when that worker is free, so llama.cpp's cached prefix is reused.
    """

    def __init__(self, model_path: Path, n_ctx: int, n_threads: int, size: int = 1) -> None:
        if size < 1:
            raise ValueError(f"a worker pool needs at least one worker, got {size}")
        self.model_path = Path(model_path)
        self.workers = [ModelWorker(model_path, n_ctx, n_threads) for _ in range(size)]
        self._taken: set[int] = set()
        self._cond = threading.Condition()
        self.calls = 0  # workers handed out: how many model calls this pool has served

    @contextlib.contextmanager
    def worker(self, wait: float, prefer: Collection[str] = ()) -> Iterator[ModelWorker]:
        """A free worker for the ``with`` block; ``LLMError`` if none frees up in ``wait`` s."""
        deadline = time.monotonic() + wait
        with self._cond:
            while True:
                free = [i for i in range(len(self.workers)) if i not in self._taken]
                if free:
                    same = [i for i in free if self.workers[i].prefix in prefer]
                    index = (same or free)[0]
                    self._taken.add(index)
                    self.calls += 1
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise LLMError(
                        f"the model was busy with other questions for {wait:g} s; "
                        "this one was decided without it"
                    )
                self._cond.wait(remaining)
        try:
            yield self.workers[index]
        finally:
            with self._cond:
                self._taken.discard(index)
                self._cond.notify()

    def start(self, timeout: float = STARTUP_TIMEOUT) -> dict[str, Any]:
        """Start one worker now (the others start on demand); its ``info``."""
        with self.worker(timeout) as worker:
            return worker.start(timeout)

    def request(
        self,
        op: str,
        payload: dict[str, Any],
        *,
        timeout: float,
        wait: float | None = None,
        prefer: Collection[str] = (),
        remember: str | None = None,
    ) -> dict[str, Any]:
        """One request on a free worker (``remember``: the prefix key its context now holds)."""
        with self.worker(timeout if wait is None else wait, prefer) as worker:
            result = worker.request(op, payload, timeout)
            worker.prefix = remember
            return result

    def stream(
        self, op: str, payload: dict[str, Any], *, timeout: float, wait: float | None = None
    ) -> Generator[str, None, None]:
        with self.worker(timeout if wait is None else wait) as worker:
            worker.prefix = None
            yield from worker.stream(op, payload, timeout)

    @property
    def pids(self) -> list[int]:
        """The running workers' process ids."""
        return [pid for w in self.workers if (pid := w.pid) is not None]

    def close(self) -> None:
        for worker in self.workers:
            worker.close()


def default_threads(workers: int = 1) -> int:
    """Threads per worker when the settings leave it open: the cores shared out, at most 4."""
    return max(1, min(4, (os.cpu_count() or 1) // max(1, workers)))


_pools: dict[tuple[str, int, int, int], WorkerPool] = {}
_pools_lock = threading.Lock()


def worker_pool(model_path: Path, n_ctx: int, n_threads: int, size: int = 1) -> WorkerPool:
    """The process's pool for this model and these options, made on first use."""
    key = (str(Path(model_path).resolve()), n_ctx, n_threads, size)
    with _pools_lock:
        if key not in _pools:
            _pools[key] = WorkerPool(Path(model_path), n_ctx, n_threads, size)
        return _pools[key]


@atexit.register
def close_all() -> None:
    """End every worker this process started (also run at interpreter exit)."""
    with _pools_lock:
        pools = list(_pools.values())
    for pool in pools:
        pool.close()
