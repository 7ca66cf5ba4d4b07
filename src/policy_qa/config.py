"""One ``Settings`` object, built once and passed down.

This is the only module that reads environment variables. Everything else receives a
``Settings`` (or plain values taken from it), so tests build their own with ``Settings(...)``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from .errors import ConfigError

__all__ = [
    "CHROMA_TOKEN_HEADERS",
    "ENV_PREFIX",
    "JUDGE_MODES",
    "LLM_BACKENDS",
    "Settings",
    "quiet_third_parties",
]

ENV_PREFIX = "POLICY_QA_"
CHROMA_TOKEN_HEADERS = ("Authorization", "X-Chroma-Token")  # what a Chroma server reads
LLM_BACKENDS = ("none", "openai", "llamacpp")
JUDGE_MODES = ("auto", "on", "off")  # the answerability check (policy_qa.judge)


@dataclass(frozen=True)
class Settings:
    """Every knob of policy-qa. Environment variables are ``POLICY_QA_<FIELD>`` upper-cased."""

    # Where things live. ``data_dir`` holds the index and feedback; models go to ``model_cache``.
    data_dir: Path = Path(".policy-qa")
    index_dir: Path | None = None  # default: data_dir / "index"
    chroma_url: str | None = None  # e.g. http://127.0.0.1:8000 to use a Chroma server
    collection: str = "policy_qa"
    # A secured Chroma server (docs/decisions/092-chroma-server-auth.md): its token, read from
    # POLICY_QA_CHROMA_TOKEN and kept out of repr() so it is never logged or printed; the
    # header that carries it ("Authorization": Bearer, or "X-Chroma-Token"); the tenant and
    # database (None: the server's defaults).
    chroma_token: str | None = field(default=None, repr=False)
    chroma_token_header: str = "Authorization"
    chroma_tenant: str | None = None
    chroma_database: str | None = None

    # Chunking (characters): docs/decisions/001-chunks-of-about-700-characters.md.
    chunk_size: int = 700
    chunk_min: int = 200

    # What one file may cost to index, checked before it is parsed (decision 062): its size,
    # what a .docx (all its parts) or one PDF stream may unpack to, and its chunk count.
    max_file_mb: float = 50.0
    max_unpacked_mb: float = 100.0
    max_document_chunks: int = 20_000

    # Retrieval.
    dense_models: tuple[str, ...] = ("minilm", "use")
    # "kiwi" morphemes or "bigram" (characters): docs/decisions/002-korean-bm25-terms-from-kiwi.md
    korean_tokenizer: str = "kiwi"
    top_k: int = 6
    candidates: int = 30
    # Each retrieved chunk is shown with its neighbours up to this many characters (0: off).
    # Chosen on the dev samples (docs/decisions/009-passage-windows.md); the one place this
    # default lives.
    window_chars: int = 1400
    reranker_path: str | None = None  # a local sentence-transformers CrossEncoder folder

    # Answering.
    max_question_chars: int = 4000
    max_answer_sentences: int = 3
    # Questions that combine two stated facts get both facts and the result, marked computed;
    # off: the usual answer decides (the held-out ablation: docs/decisions/073-computed-answers.md).
    computed_answers: bool = True
    refusal_threshold: float = 0.48
    # The answerability check on borderline confidences (policy_qa.judge): "auto" uses the
    # packaged Qwen when policy-qa[llm] is installed, "on" insists on it, "off" never asks.
    judge: str = "auto"
    # Seconds one call of the check may take in the model worker before the worker is taken for
    # hung and killed (and as long again to wait for a free worker); the question is then
    # decided on evidence scores alone (docs/decisions/052-model-worker-process.md).
    judge_timeout: float = 60.0

    # LLM backend.
    llm: str = "none"
    llm_base_url: str | None = None
    llm_model: str = "local"
    llm_api_key: str | None = field(default=None, repr=False)  # a secret: never in logs
    llm_model_path: str | None = None
    llm_timeout: float = 120.0
    llm_max_tokens: int = 384
    # Local GGUF models run in worker processes: how many per model, and threads each (0: the
    # cores shared out, at most 4). Measured on 2 cores in docs/decisions/051-concurrency.md.
    llm_workers: int = 1
    llm_threads: int = 0
    # Where the packaged Qwen is joined, once per machine, under its sha256 (None: the user's
    # cache folder, see ``default_model_cache``; docs/decisions/053-one-model-copy-per-machine.md).
    model_cache_dir: Path | None = None

    # Web chat.
    host: str = "127.0.0.1"
    port: int = 7860
    auth: str | None = None  # "user:password"
    max_upload_mb: int = 20
    # Questions the web chat answers at once, and how many more may wait before a user is told
    # the server is busy. 32: a question waiting for the model worker holds a slot without using
    # a core; with 8 slots, plain questions waited behind such questions
    # (docs/decisions/051-concurrency.md).
    chat_concurrency: int = 32
    chat_queue_size: int = 64

    # Test-only: pause a write at this named boundary so a test can kill it there
    # (policy_qa.faults; docs/decisions/080-crash-consistent-indexing.md). Never set it in use.
    fault_pause_at: str | None = None

    def __post_init__(self) -> None:
        if self.chunk_size < 100:
            raise ConfigError(f"chunk_size must be at least 100 characters, got {self.chunk_size}")
        if not 0 <= self.chunk_min < self.chunk_size:
            raise ConfigError(
                f"chunk_min must be between 0 and chunk_size ({self.chunk_size}), "
                f"got {self.chunk_min}"
            )
        if self.top_k < 1 or self.candidates < self.top_k:
            raise ConfigError(
                f"need 1 <= top_k <= candidates, got top_k={self.top_k}, "
                f"candidates={self.candidates}"
            )
        if self.window_chars and self.window_chars < self.chunk_size:
            raise ConfigError(
                f"window_chars must be 0 (off) or at least chunk_size ({self.chunk_size}), "
                f"got {self.window_chars}"
            )
        unknown = set(self.dense_models) - {"minilm", "use"}
        if unknown:
            raise ConfigError(f"unknown dense model(s) {sorted(unknown)}: use 'minilm', 'use'")
        if self.korean_tokenizer not in ("bigram", "kiwi"):
            raise ConfigError(
                f"korean_tokenizer must be 'bigram' or 'kiwi', got {self.korean_tokenizer!r}"
            )
        if self.judge not in JUDGE_MODES:
            raise ConfigError(f"judge must be 'auto', 'on' or 'off', got {self.judge!r}")
        if self.llm not in LLM_BACKENDS:
            raise ConfigError(f"llm must be one of {', '.join(LLM_BACKENDS)}, got {self.llm!r}")
        if self.chroma_url:
            parsed = urlparse(self.chroma_url)
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                raise ConfigError(
                    f"chroma_url must look like http://127.0.0.1:8000, got {self.chroma_url!r}"
                )
        server_only = {
            "chroma_token": self.chroma_token,
            "chroma_tenant": self.chroma_tenant,
            "chroma_database": self.chroma_database,
        }
        given = [name for name, value in server_only.items() if value]
        if given and not self.chroma_url:
            raise ConfigError(
                f"{', '.join(given)} apply to a Chroma server: set chroma_url too "
                "(POLICY_QA_CHROMA_URL), or unset them for the local index"
            )
        if self.chroma_token_header not in CHROMA_TOKEN_HEADERS:
            raise ConfigError(
                f"chroma_token_header must be one of {', '.join(CHROMA_TOKEN_HEADERS)}, "
                f"got {self.chroma_token_header!r}"
            )
        if self.auth is not None:
            _check_auth(self.auth)
        if not 1 <= self.port <= 65535:
            raise ConfigError(f"port must be 1-65535, got {self.port}")
        if self.judge_timeout <= 0:
            raise ConfigError(f"judge_timeout must be positive seconds, got {self.judge_timeout}")
        if self.llm_workers < 1 or self.llm_threads < 0:
            raise ConfigError(
                f"need llm_workers >= 1 and llm_threads >= 0 (0: automatic), got "
                f"{self.llm_workers} and {self.llm_threads}"
            )
        if self.chat_concurrency < 1 or self.chat_queue_size < 1:
            raise ConfigError(
                f"chat_concurrency and chat_queue_size must be at least 1, got "
                f"{self.chat_concurrency} and {self.chat_queue_size}"
            )

    @property
    def resolved_index_dir(self) -> Path:
        return Path(self.index_dir) if self.index_dir else Path(self.data_dir) / "index"

    @property
    def feedback_path(self) -> Path:
        return Path(self.data_dir) / "feedback.jsonl"

    @property
    def models_dir(self) -> Path:
        return Path(self.data_dir) / "models"

    @property
    def model_cache(self) -> Path:
        """The folder the packaged models are joined into, shared by every data folder."""
        return Path(self.model_cache_dir) if self.model_cache_dir else default_model_cache()

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then ``POLICY_QA_*`` variables, then explicit ``overrides`` (not None)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(f.name, str(f.type), raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        for key in ("data_dir", "index_dir", "model_cache_dir"):
            if values.get(key) is not None:
                values[key] = Path(values[key]).expanduser()
        return cls(**values)


def _check_auth(auth: str) -> None:
    """A login is one user name and one password, both non-empty (docs/decisions/084-login.md).

    The login form drops spaces around the user name, so a name with them could never log in.
    """
    user, colon, password = auth.partition(":")
    if not colon:
        raise ConfigError("POLICY_QA_AUTH must be 'user:password' (no ':' found)")
    if not user.strip() or not password:
        missing = "user name" if not user.strip() else "password"
        raise ConfigError(
            f"POLICY_QA_AUTH has an empty {missing}: set it to 'user:password' with both parts "
            "filled in, or unset it to serve without a login on 127.0.0.1"
        )
    if user != user.strip():
        raise ConfigError(
            "POLICY_QA_AUTH's user name starts or ends with spaces, which the login form drops: "
            "remove them"
        )


def default_model_cache(env: Mapping[str, str] | None = None) -> Path:
    """``POLICY_QA_MODEL_CACHE_DIR``, else ``$XDG_CACHE_HOME/policy-qa/models``, else
    ``~/.cache/policy-qa/models``: one folder per user, whatever the data folder."""
    env = os.environ if env is None else env
    chosen = env.get(ENV_PREFIX + "MODEL_CACHE_DIR")
    if chosen:
        return Path(chosen).expanduser()
    base = env.get("XDG_CACHE_HOME") or str(Path("~/.cache").expanduser())
    return Path(base).expanduser() / "policy-qa" / "models"


def _parse(name: str, type_name: str, raw: str) -> Any:
    if type_name == "bool":
        word = raw.strip().lower()
        if word in ("1", "true", "yes", "on"):
            return True
        if word in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{ENV_PREFIX}{name.upper()}={raw!r} must be true or false")
    try:
        if "tuple" in type_name:
            return tuple(p.strip() for p in raw.split(",") if p.strip())
        if type_name.startswith("int"):
            return int(raw)
        if type_name.startswith("float"):
            return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{ENV_PREFIX}{name.upper()}={raw!r} is not a valid {type_name}") from exc
    return raw


def quiet_third_parties() -> None:
    """Keep libraries offline and silent; called by entry points before heavy imports.

    The packaged models are on disk, so a hub lookup can only fail (slowly); telemetry would
    try the network too.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # Loading a packaged model is quick; its per-weight progress bar is only noise.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
