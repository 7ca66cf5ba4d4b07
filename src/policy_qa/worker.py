"""The model worker: a child process that runs llama.cpp. The only module that imports llama_cpp.

    python -m policy_qa.worker MODEL.gguf --n-ctx 2048 --n-threads 2   (started by the supervisor)
    python -m policy_qa.worker --info        (this build's CPU features; exit 1 if it has AMX)

Why a process of its own: llama.cpp is native code, and a native crash (a SIGSEGV in its AMX
path on Sapphire Rapids CPUs, llama.cpp #20824) takes the whole process with it. Here it takes
only the worker; ``policy_qa.supervisor`` turns the death into an ``LLMError`` and starts a
fresh worker for the next call (docs/decisions/052-model-worker-process.md).

Protocol: one JSON object per line. Requests come on stdin: ``{"id": n, "op": ..., ...}``.
Replies go to a private copy of the original stdout; fd 1 itself is pointed at stderr first, so
nothing llama.cpp prints can corrupt the protocol. The first line is ``{"ready": info}`` once
the model is loaded, or ``{"fatal": message}`` before exiting. Each request gets
``{"id": n, "result": {...}}`` or ``{"id": n, "error": message}``; a ``chat`` sends
``{"id": n, "delta": text}`` lines before its result, and stops early on a
``{"op": "cancel", "id": n}`` line. End of stdin (the parent closed it or died) ends the worker.

Ops: ``p_yes`` (P(yes) for the reply's first token), ``reply`` (a short greedy reply that reuses
the shared prompt prefix of the previous call: llama.cpp keeps it in its KV cache), ``chat``
(streamed chat completion) and ``info``.

It knows nothing of passages, questions or settings: it reads chat messages and model options.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import re
import select
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["NO_WORDS", "YES_WORDS", "build_features", "exit_with_parent", "main"]

# The reply's first token read as yes or no (both casings: the chat template decides which).
YES_WORDS = ("yes", "Yes")
NO_WORDS = ("no", "No")

# llama.cpp's AMX matrix code crashes on Q4_K_M models (llama.cpp #20824); these flags in
# ``llama_print_system_info`` mean a build has it (docs/decisions/050-portable-llama-build.md).
AMX_FEATURES = ("AMX_INT8", "AMX_BF16", "AMX_TILE")

_FEATURE = re.compile(r"([A-Z0-9_]+) = 1")


def build_features(system_info: str) -> list[str]:
    """The features a ``llama_print_system_info`` string reports as on, in its order.

    >>> build_features("CPU : SSE3 = 1 | AVX2 = 1 | AVX512 = 0 | AMX_INT8 = 1 |")
    ['SSE3', 'AVX2', 'AMX_INT8']
    """
    return list(dict.fromkeys(_FEATURE.findall(system_info)))


class _Lines:
    """JSON lines from a raw file descriptor, with a non-blocking look for a pending line."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buffer = b""
        self._eof = False
        self._held: list[dict[str, Any]] = []

    def _fill(self, block: bool) -> None:
        if self._eof:
            return
        if not block and not select.select([self._fd], [], [], 0)[0]:
            return
        data = os.read(self._fd, 1 << 16)
        if data:
            self._buffer += data
        else:
            self._eof = True

    def read(self, block: bool = True) -> dict[str, Any] | None:
        """The next request; None at end of input (or, not blocking, when none is pending)."""
        if self._held:
            return self._held.pop(0)
        while b"\n" not in self._buffer:
            if self._eof:
                return None
            before = len(self._buffer)
            self._fill(block)
            if not block and len(self._buffer) == before:
                return None
        line, self._buffer = self._buffer.split(b"\n", 1)
        return dict(json.loads(line)) if line.strip() else self.read(block)

    def hold(self, request: dict[str, Any]) -> None:
        """Keep ``request`` for the next ``read`` (looked at early, not handled)."""
        self._held.append(request)


class _Model:
    """One loaded GGUF model and the operations the supervisor asks of it."""

    def __init__(self, path: Path, n_ctx: int, n_threads: int) -> None:
        import llama_cpp

        self._lib = llama_cpp
        system_info = llama_cpp.llama_print_system_info().decode("utf-8", "replace")
        features = build_features(system_info)
        amx = [f for f in AMX_FEATURES if f in features]
        if amx:
            # A build with llama.cpp's AMX path (a native build on an AMX CPU): keeping the
            # weights out of the "extra" buffer types keeps them out of the AMX code, which was
            # verified to stop the crash (docs/decisions/050-portable-llama-build.md).
            _keep_weights_out_of_extra_buffers(llama_cpp)
        began = time.perf_counter()
        # Prompts are read with as many threads as replies are written (llama-cpp-python's
        # default for reading is every core, which a worker pool must share out).
        self.llama = llama_cpp.Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_threads_batch=n_threads,
            verbose=False,
        )
        self.n_ctx = n_ctx
        self.info: dict[str, Any] = {
            "pid": os.getpid(),
            "model": path.name,
            "n_ctx": n_ctx,
            "n_threads": n_threads,
            "llama_cpp": getattr(llama_cpp, "__version__", "?"),
            "system_info": system_info.strip(),
            "features": features,
            "amx": amx,
            "extra_buffers": not amx,
            "load_seconds": round(time.perf_counter() - began, 3),
        }
        self._format: Any = None
        self._yes: list[int] = []
        self._no: list[int] = []
        self._stop: set[int] = set()

    # ------------------------------------------------------------------ prompts

    def _formatter(self) -> Any:
        if self._format is None:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            llama = self.llama
            template = llama.metadata.get("tokenizer.chat_template")
            if not template:
                raise _RequestError(f"{self.info['model']} carries no chat template")
            self._format = Jinja2ChatFormatter(
                template=template,
                eos_token=self._token_text(llama.token_eos()),
                bos_token=self._token_text(llama.token_bos()),
                add_generation_prompt=True,
            )
            first = lambda w: llama.tokenize(w.encode(), add_bos=False)[0]  # noqa: E731
            self._yes = sorted({first(w) for w in YES_WORDS})
            self._no = sorted({first(w) for w in NO_WORDS})
            vocab = self._lib.llama_model_get_vocab(llama.model)
            self._stop = {llama.token_eos(), int(self._lib.llama_vocab_eot(vocab))}
        return self._format

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return self.llama.detokenize([token]).decode("utf-8", "ignore")

    def _prompt(self, messages: list[dict[str, str]], room: int) -> list[int]:
        prompt = self._formatter()(messages=messages).prompt
        tokens: list[int] = self.llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        if len(tokens) + room >= self.n_ctx:
            raise _RequestError(
                f"the prompt ({len(tokens)} tokens) does not fit the model's context "
                f"(n_ctx={self.n_ctx})"
            )
        return tokens

    # ------------------------------------------------------------------ operations

    def p_yes(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        """P(yes) / (P(yes) + P(no)) for the reply's first token, reading the prompt once."""
        import numpy as np

        tokens = self._prompt(messages, room=0)
        began = time.perf_counter()
        self.llama.reset()
        self.llama.eval(tokens)
        # Only the last position's logits exist (logits_all=False keeps 1.2 GB of score rows
        # away); llama.cpp hands them out for the context.
        logits = np.ctypeslib.as_array(
            self._lib.llama_get_logits(self.llama.ctx), shape=(self.llama.n_vocab(),)
        )
        yes = float(np.logaddexp.reduce(logits[self._yes]))
        no = float(np.logaddexp.reduce(logits[self._no]))
        return {
            "p": 1.0 / (1.0 + float(np.exp(no - yes))),
            "tokens": len(tokens),
            "seconds": time.perf_counter() - began,
        }

    def reply(self, messages: list[dict[str, str]], max_tokens: int) -> dict[str, Any]:
        """The greedy reply to ``messages``, at most ``max_tokens`` tokens.

        ``generate(reset=True)`` keeps the longest prefix it shares with what the context last
        read, so a follow-up to the conversation ``p_yes`` just read costs only its new tokens.
        """
        tokens = self._prompt(messages, room=max_tokens)
        before = self.llama.n_tokens
        shared = 0
        if before:
            cached = self.llama.input_ids[:before].tolist()
            while shared < min(len(cached), len(tokens)) and cached[shared] == tokens[shared]:
                shared += 1
        began = time.perf_counter()
        out: list[int] = []
        for token in self.llama.generate(tokens, temp=0.0, top_k=1, reset=True):
            if token in self._stop or len(out) >= max_tokens:
                break
            out.append(token)
        text = self.llama.detokenize(out).decode("utf-8", "ignore").strip()
        return {
            "text": text,
            "tokens": len(tokens),
            "reused": shared,
            "seconds": time.perf_counter() - began,
        }

    def chat(self, request: dict[str, Any], lines: _Lines) -> Iterator[str]:
        """Deltas of a chat completion, ending early on a cancel line or past the deadline."""
        limit = request.get("timeout")
        deadline = time.monotonic() + (float(limit) if limit is not None else float("inf"))
        try:
            stream = self.llama.create_chat_completion(
                messages=request["messages"],
                stream=True,
                max_tokens=int(request.get("max_tokens") or 256),
                temperature=float(request.get("temperature") or 0.0),
                stop=list(request.get("stop") or []),
            )
            for part in stream:
                if time.monotonic() > deadline:
                    raise _RequestError(
                        f"the local model did not finish within {request['timeout']:g} s "
                        "(raise llm_timeout or lower llm_max_tokens)"
                    )
                pending = lines.read(block=False)
                if pending is not None:
                    if pending.get("op") == "cancel":
                        return
                    lines.hold(pending)
                choice: Any = part["choices"][0]  # type: ignore[index]
                delta = choice.get("delta", {}).get("content")
                if delta:
                    yield str(delta)
        except ValueError as exc:
            # llama-cpp-python raises ValueError when the prompt exceeds the context window.
            raise _RequestError(f"the local model rejected the prompt: {exc}") from exc


class _RequestError(Exception):
    """A request the model cannot serve; the worker reports it and carries on."""


def _keep_weights_out_of_extra_buffers(llama_cpp: Any) -> None:
    # llama-cpp-python's Llama has no argument for it: it takes its model parameters from
    # ``llama_model_default_params``, so the defaults are what we change (pinned <0.4).
    import llama_cpp.llama as llama_module

    original = llama_cpp.llama_model_default_params

    def defaults() -> Any:
        params = original()
        params.use_extra_bufts = False
        return params

    llama_cpp.llama_model_default_params = defaults
    llama_module.llama_cpp.llama_model_default_params = defaults


def _serve(model: _Model, lines: _Lines, out: BinaryIO) -> None:
    def send(message: dict[str, Any]) -> None:
        out.write(json.dumps(message, ensure_ascii=False).encode("utf-8") + b"\n")
        out.flush()

    send({"ready": model.info})
    while (request := lines.read()) is not None:
        rid = request.get("id")
        op = request.get("op")
        try:
            if op == "p_yes":
                send({"id": rid, "result": model.p_yes(request["messages"])})
            elif op == "reply":
                result = model.reply(request["messages"], int(request.get("max_tokens", 40)))
                send({"id": rid, "result": result})
            elif op == "chat":
                began = time.perf_counter()
                for delta in model.chat(request, lines):
                    send({"id": rid, "delta": delta})
                send({"id": rid, "result": {"seconds": time.perf_counter() - began}})
            elif op == "info":
                send({"id": rid, "result": model.info})
            elif op == "cancel":
                continue  # arrived after its chat ended: nothing to stop
            else:
                send({"id": rid, "error": f"unknown operation {op!r}"})
        except _RequestError as exc:
            send({"id": rid, "error": str(exc)})
        except Exception as exc:  # a Python-level failure: report it, keep the model
            send({"id": rid, "error": f"{type(exc).__name__}: {exc}"})


def exit_with_parent(interval: float = 1.0) -> threading.Thread:
    """End this process soon after its parent dies, even in the middle of a request.

    End of stdin is noticed only between requests, and one check of a long prompt on a busy
    machine can take minutes: a worker whose parent was killed went on using a core that long.
    llama.cpp runs without the GIL (ctypes releases it), so a thread can watch the parent.
    ``PR_SET_PDEATHSIG`` is not used: it fires when the *thread* that started the worker ends,
    and the supervisor starts workers from whichever handler thread needs one.
    """
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(0)  # nobody is left to read a reply

    thread = threading.Thread(target=watch, name="exit-with-parent", daemon=True)
    thread.start()
    return thread


def _private_stdout() -> BinaryIO:
    """A private copy of stdout for the protocol; fd 1 then goes to stderr."""
    fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(fd, "wb", buffering=0)


def _print_info() -> int:
    """``--info``: the installed llama-cpp-python's build features; 1 if it has the AMX path."""
    try:
        import llama_cpp
    except ImportError as exc:
        print(f"llama-cpp-python is not importable: {exc}", file=sys.stderr)
        return 1
    system_info = llama_cpp.llama_print_system_info().decode("utf-8", "replace")
    features = build_features(system_info)
    amx = [f for f in AMX_FEATURES if f in features]
    said = f"llama-cpp-python {getattr(llama_cpp, '__version__', '?')}: {' '.join(features)}"
    if not amx:
        print(f"{said}; no AMX path")
        return 0
    print(
        f"{said}; this build has llama.cpp's AMX path ({', '.join(amx)}), which crashes on "
        "Q4_K_M models (llama.cpp #20824): rebuild it with `rm -rf .venv && make setup` "
        "(docs/decisions/050-portable-llama-build.md)",
        file=sys.stderr,
    )
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m policy_qa.worker", description=__doc__)
    parser.add_argument("model", nargs="?", type=Path)
    parser.add_argument("--n-ctx", type=int, default=2048)
    parser.add_argument("--n-threads", type=int, default=2)
    parser.add_argument("--nice", type=int, default=0, help="lower this process's priority")
    parser.add_argument("--info", action="store_true", help="print the build's features")
    args = parser.parse_args(argv)
    if args.info:
        return _print_info()
    if args.model is None:
        parser.error("give a GGUF model path (or --info)")
    if args.nice:
        os.nice(args.nice)
    # A native crash prints the Python stack to stderr, which the supervisor keeps for its log.
    faulthandler.enable()
    # Ctrl+C in a terminal reaches the whole process group: the supervisor decides when the
    # worker ends (it closes stdin), so a keyboard interrupt must not kill a reply half-way.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    exit_with_parent()
    out = _private_stdout()
    lines = _Lines(sys.stdin.fileno())
    try:
        model = _Model(args.model, args.n_ctx, args.n_threads)
    except ImportError as exc:
        out.write(json.dumps({"fatal": f"llama-cpp-python is not importable ({exc})"}).encode())
        out.write(b"\n")
        return 1
    except Exception as exc:  # llama-cpp-python raises ValueError for a file it cannot load
        message = f"could not load the GGUF model {args.model}: {exc}"
        out.write(json.dumps({"fatal": message}).encode() + b"\n")
        return 1
    _serve(model, lines, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
