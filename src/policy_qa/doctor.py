"""The self-check behind ``policy-qa doctor`` and the start of ``policy-qa serve``.

Each configured model is loaded and used once (a tiny encode, a tiny P(yes) in the model
worker, one short reply from the LLM backend), and each check becomes one ``Check``: ok, off
(not configured or not installed, and not required), or FAIL with what to do about it.
``serve`` runs the model part in the background (``ModelCheck``) so the page comes up at
once, logs it, and the page shows a line while the answerability check is off or broken.

It only calls the library's own parts; it fixes nothing and writes nothing but the joined
model file (the same one the check uses).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .config import Settings
from .errors import LLMError, PolicyQAError

__all__ = ["Check", "ModelCheck", "model_checks", "passed", "retrieval_checks", "run_checks"]

log = logging.getLogger(__name__)

OK, OFF, FAIL = "ok", "off", "FAIL"
_REBUILD = (
    "rebuild llama-cpp-python portably: rm -rf .venv && make setup (see "
    "docs/decisions/050-portable-llama-build.md); `policy-qa -v doctor` logs the worker's output"
)
_INSTALL_LLM = "make setup (or: pip install 'policy-qa[llm]' after installing the portable wheel)"
# The check asked at start: short, and its answer is plain (P(yes) near 1 on a working model).
_PROBE_QUESTION = "When was the research complex founded?"
_PROBE_PASSAGE = "The research complex was founded in 1973 in Daejeon."


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report."""

    name: str
    status: str  # ok, off or FAIL
    detail: str
    fix: str = ""
    required: bool = True

    @property
    def failed(self) -> bool:
        return self.status == FAIL and self.required

    def line(self) -> str:
        text = f"{self.status:<5} {self.name:<22} {self.detail}"
        return text + (f"\n      fix: {self.fix}" if self.fix and self.status != OK else "")


def passed(checks: list[Check]) -> bool:
    """Whether every required check passed (``policy-qa doctor`` exits 0)."""
    return not any(c.failed for c in checks)


def run_checks(settings: Settings) -> list[Check]:
    """Every check, retrieval first."""
    return [*retrieval_checks(settings), *model_checks(settings)]


# --------------------------------------------------------------------------- retrieval


def retrieval_checks(settings: Settings) -> list[Check]:
    """The embedding models (loaded, one tiny encode) and the index (readable or reachable)."""
    from .assistant import Assistant
    from .embeddings import load_embeddings

    checks: list[Check] = []
    loaded = {}
    for name in settings.dense_models:
        began = time.perf_counter()
        try:
            model = load_embeddings(name, settings.model_cache)
            width = model.encode(["tenancy deposit"]).shape[1]
            # Indexing's path as well: MiniLM answers a question in numpy but indexes through
            # sentence-transformers on torch (docs/decisions/103-cold-start.md).
            model.encode(["tenancy deposit"], threads=1)
        except Exception as exc:  # a broken package raises anything: say which model
            checks.append(
                Check(
                    f"embeddings {name}",
                    FAIL,
                    f"{type(exc).__name__}: {exc}",
                    "reinstall policy-qa: pip install -e . (the models ship in packages)",
                )
            )
            continue
        loaded[name] = model
        seconds = time.perf_counter() - began
        checks.append(Check(f"embeddings {name}", OK, f"{width}-d, loaded in {seconds:.1f} s"))
    if len(loaded) < len(settings.dense_models):
        return checks
    where = settings.chroma_url or str(settings.resolved_index_dir)
    try:
        with Assistant(settings=settings, embeddings=loaded) as qa:
            docs = qa.documents()
    except PolicyQAError as exc:
        checks.append(Check("index", FAIL, str(exc), "check chroma_url / index_dir"))
        return checks
    if docs:
        chunks = sum(d.chunks for d in docs)
        checks.append(Check("index", OK, f"{len(docs)} documents, {chunks} chunks at {where}"))
    else:
        checks.append(
            Check("index", OFF, f"nothing indexed yet at {where}", "policy-qa index PATH", False)
        )
    return checks


# --------------------------------------------------------------------------- models


def model_checks(settings: Settings) -> list[Check]:
    """llama-cpp-python, the packaged Qwen, a tiny P(yes) in the worker, the LLM backend."""
    checks = _answerability_checks(settings)
    if settings.llm != "none":
        checks.append(_backend_check(settings))
    return checks


def _answerability_checks(settings: Settings) -> list[Check]:
    from .judge import AnswerabilityJudge
    from .llm import ensure_qwen_model, qwen_installed

    name = "answerability check"
    if settings.judge == "off":
        return [
            Check(name, OFF, "the judge setting is off", "POLICY_QA_JUDGE=auto turns it on", False)
        ]
    required = settings.judge == "on"
    if importlib.util.find_spec("llama_cpp") is None:
        detail = "llama-cpp-python is not installed"
        return [
            Check("llama-cpp-python", FAIL if required else OFF, detail, _INSTALL_LLM, required)
        ]
    checks = [Check("llama-cpp-python", OK, importlib.metadata.version("llama-cpp-python"))]
    if not qwen_installed():
        detail = "the packaged Qwen parts are not installed"
        checks.append(
            Check("Qwen model", FAIL if required else OFF, detail, _INSTALL_LLM, required)
        )
        return checks
    try:
        path = ensure_qwen_model(settings.model_cache)
    except LLMError as exc:
        checks.append(Check("Qwen model", FAIL, str(exc), _INSTALL_LLM))
        return checks
    checks.append(Check("Qwen model", OK, f"joined and verified: {path}"))
    judge = AnswerabilityJudge(
        path,
        timeout=settings.judge_timeout,
        workers=settings.llm_workers,
        threads=settings.llm_threads or None,
    )
    began = time.perf_counter()
    try:
        info = judge.load()
        loaded = time.perf_counter()
        verdict = judge(_PROBE_QUESTION, _PROBE_PASSAGE, confidence=0.5)
    except LLMError as exc:
        checks.append(Check(name, FAIL, str(exc), _REBUILD))
        return checks
    done = time.perf_counter()
    checks.append(_build_check(info))
    checks.append(
        Check(
            name,
            OK,
            f"P(yes)={verdict.p_yes:.2f} in {done - loaded:.1f} s in worker pid {info['pid']} "
            f"({info['n_threads']} threads; started in {loaded - began:.1f} s)",
        )
    )
    return checks


def _build_check(info: dict[str, Any]) -> Check:
    features = [str(f) for f in info.get("features", []) or []]
    shown = " ".join(f for f in features if f.startswith(("AVX", "FMA", "F16C", "AMX")))
    amx = info.get("amx")
    if not amx:
        return Check("llama.cpp build", OK, f"{shown or 'no AVX'}; no AMX path")
    return Check(
        "llama.cpp build",
        OK,
        f"{shown}; has the AMX path, so the worker keeps the weights out of it (llama.cpp #20824)",
    )


def _backend_check(settings: Settings) -> Check:
    from .llm import backend_name, llm_error, make_chat_model

    backend = backend_name(settings)
    began = time.perf_counter()
    try:
        reply = make_chat_model(settings, max_tokens=4).invoke("Reply with the word yes.")
    except PolicyQAError as exc:
        return Check(f"LLM {settings.llm}", FAIL, str(exc), "check the llm_* settings")
    except Exception as exc:  # the client's own errors, named for people by llm_error
        error = llm_error(exc, backend=backend, timeout=settings.llm_timeout)
        return Check(f"LLM {settings.llm}", FAIL, str(error), "check the llm_* settings")
    seconds = time.perf_counter() - began
    said = " ".join(str(reply.content).split())[:40]
    return Check(f"LLM {settings.llm}", OK, f"{backend} replied {said!r} in {seconds:.1f} s")


# --------------------------------------------------------------------------- serve


class ModelCheck:
    """``model_checks`` on a background thread, for ``serve``: the page comes up at once.

    ``page_status()`` is what the page shows: nothing while all is well, an info line while the
    check starts, and the reason while the answerability check is off or broken.
    """

    def __init__(
        self, settings: Settings, on_done: Callable[[list[Check]], None] | None = None
    ) -> None:
        self.settings = settings
        self.checks: list[Check] | None = None
        self._on_done = on_done
        self._thread = threading.Thread(target=self._run, name="policy-qa-check", daemon=True)

    def start(self) -> ModelCheck:
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> list[Check] | None:
        self._thread.join(timeout)
        return self.checks

    @property
    def settled(self) -> bool:
        return self.checks is not None

    def _run(self) -> None:
        try:
            checks = model_checks(self.settings)
        except Exception as exc:  # a bug here must not take the server down
            log.exception("the model check failed")
            checks = [Check("answerability check", FAIL, f"{type(exc).__name__}: {exc}")]
        self.checks = checks
        for check in checks:
            log.info("check: %s", check.line())
        if self._on_done is not None:
            self._on_done(checks)

    def page_status(self) -> tuple[str, str] | None:
        """(kind, message) for the page's status line, or None when there is nothing to say."""
        if self.checks is None:
            if self.settings.judge == "off":
                return None
            return "info", "Starting the answerability check (loading the local model)…"
        return summary(self.checks)


_CHECK_PARTS = ("llama-cpp-python", "Qwen model", "llama.cpp build", "answerability check")


def summary(checks: list[Check]) -> tuple[str, str] | None:
    """(kind, message) a person must know about the local models, or None when they work."""
    scores = "Borderline questions are decided on evidence scores alone."
    part = [c for c in checks if c.name in _CHECK_PARTS]
    for check in part:
        if check.status == FAIL:
            return "error", f"The answerability check is unavailable: {check.detail}. {scores}"
    for check in checks:
        if check.name.startswith("LLM ") and check.status == FAIL:
            return "error", (
                f"The language model is unavailable: {check.detail}. "
                "Answers quote the documents instead."
            )
    for check in part:
        if check.status == OFF:
            return "info", f"The answerability check is off: {check.detail}. {scores}"
    return None
