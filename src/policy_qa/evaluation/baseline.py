"""The systems policy-qa is compared with: a plain LangChain pipeline and retrieval-only baselines.

- ``LangChainBaseline``: the tutorial pipeline. Files read as plain text (no cleaning),
  ``RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200, add_start_index=True)``,
  the same MiniLM embeddings, ``langchain_chroma.Chroma`` in a temporary folder, top-4
  similarity search; the answer is the top chunk, cited whole, and it never refuses. It has no
  notion of a conversation, so a dialogue turn is searched as it is.
- ``BM25Baseline``: ``bm25s`` over the same chunks, tokenised the standard bm25s way (English
  stop words, Snowball stemmer).
- ``DenseBaseline``: exact cosine search over the same chunks with one of our embedding models
  (``use``, the multilingual one; ``minilm`` is what the LangChain baseline ranks with).

On purpose these bypass policy-qa's own store, lexical index and retriever (they import
``langchain_chroma`` and ``bm25s`` directly): a baseline that shared our code would not be one.
Offsets are into each file's raw text, which ``document_text`` returns.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..embeddings import load_embeddings
from ..errors import ConfigError
from .systems import History, IndexStats, Prediction, Progress, Quote, Retrieved

log = logging.getLogger(__name__)

CHUNK_SIZE = 1000
CHUNK_OVERLAP = 200
TOP_K = 4
PLAIN_SUFFIXES = (".txt", ".md", ".markdown")


class PlainChunks:
    """Files read as they are and split by LangChain's recursive splitter, shared by baselines."""

    def __init__(self, corpus: Path) -> None:
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        started = time.perf_counter()
        self.texts: dict[str, str] = {}
        self.skipped: list[str] = []
        root = Path(corpus)
        if not root.is_dir():
            raise ConfigError(f"corpus folder {root} not found")
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root).as_posix()
            if not path.is_file() or any(part.startswith(".") for part in path.parts[-1:]):
                continue
            if path.name.endswith(".meta.json"):
                continue
            if path.suffix.lower() not in PLAIN_SUFFIXES:
                self.skipped.append(f"{relative}: not plain text")
                continue
            self.texts[relative] = path.read_text(encoding="utf-8", errors="replace")
        splitter = RecursiveCharacterTextSplitter(
            chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP, add_start_index=True
        )
        self.chunks: list[Retrieved] = []
        for source, text in self.texts.items():
            for doc in splitter.create_documents([text]):
                start = int(doc.metadata["start_index"])
                if start < 0:  # the splitter could not place it; find it ourselves
                    start = text.find(doc.page_content)
                end = start + len(doc.page_content)
                self.chunks.append(Retrieved(source, start, end, doc.page_content))
        self.seconds = time.perf_counter() - started

    def mask(self, within: str | None) -> np.ndarray | None:
        if within is None:
            return None
        return np.array([c.source.startswith(within) for c in self.chunks], dtype=bool)


def _top_folder(source: str) -> str:
    return source.split("/", 1)[0] + "/" if "/" in source else ""


class LangChainBaseline:
    """The plain LangChain RAG pipeline (see the module docstring)."""

    name = "baseline"
    answers = True

    def __init__(self, chunks: PlainChunks | None = None, workdir: Path | None = None) -> None:
        self._chunks = chunks
        self._workdir = workdir
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._store: Any = None

    def use_chunks(self, chunks: PlainChunks) -> None:
        """Share chunks already cut from the same corpus (they are identical for every baseline)."""
        self._chunks = chunks

    def index(self, corpus: Path, progress: Progress | None = None) -> IndexStats:
        from langchain_chroma import Chroma
        from langchain_core.documents import Document as LCDocument

        embeddings = load_embeddings("minilm")
        embeddings.embed_query("warm up")  # a model load is not indexing time
        started = time.perf_counter()
        if self._chunks is None:
            self._chunks = PlainChunks(corpus)
        chunking = self._chunks.seconds
        if self._workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="policy-qa-baseline-")
            folder = self._tmp.name
        else:
            folder = str(self._workdir)
        self._store = Chroma(
            collection_name="baseline",
            # Always ours: Chroma's default embedding function would download a model.
            embedding_function=embeddings,
            persist_directory=folder,
        )
        chunks = self._chunks.chunks
        documents = [
            LCDocument(
                page_content=c.text,
                metadata={
                    "source": c.source,
                    "start_index": c.start,
                    "folder": _top_folder(c.source),
                },
            )
            for c in chunks
        ]
        batch = 64
        for i in range(0, len(documents), batch):
            self._store.add_documents(
                documents[i : i + batch],
                ids=[f"c{j}" for j in range(i, min(i + batch, len(documents)))],
            )
            if progress:
                progress(min(i + batch, len(documents)), len(documents), "baseline")
        seconds = time.perf_counter() - started + chunking
        return IndexStats(
            documents=len(self._chunks.texts),
            chunks=len(chunks),
            seconds=seconds,
            skipped=tuple(self._chunks.skipped),
        )

    def _search(self, question: str, within: str | None, k: int) -> list[Retrieved]:
        where = None
        if within is not None:
            if not within.endswith("/") or within.count("/") != 1:
                raise ConfigError(
                    f"the baseline can only scope to a top folder like 'x/', got {within!r}"
                )
            where = {"folder": within}
        found = self._store.similarity_search_with_score(question, k=k, filter=where)
        out = []
        for doc, distance in found:
            start = int(doc.metadata["start_index"])
            source = str(doc.metadata["source"])
            out.append(
                Retrieved(
                    source, start, start + len(doc.page_content), doc.page_content, -float(distance)
                )
            )
        return out

    def retrieve(
        self, question: str, history: History, within: str | None, k: int
    ) -> list[Retrieved]:
        return self._search(question, within, k)

    def ask(self, question: str, history: History, within: str | None) -> Prediction:
        top = self._search(question, within, TOP_K)
        if not top:
            return Prediction(answer="", abstained=False, confidence=None)
        best = top[0]
        return Prediction(
            answer=best.text,
            abstained=False,
            citations=(Quote(best.source, best.start, best.end, best.text),),
            confidence=best.score,
        )

    def document_text(self, source: str) -> str:
        assert self._chunks is not None
        return self._chunks.texts[source]

    def close(self) -> None:
        self._store = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


class BM25Baseline:
    """Retrieval only: bm25s over the plain chunks."""

    name = "bm25"
    answers = False

    def __init__(self, chunks: PlainChunks | None = None) -> None:
        self._chunks = chunks
        self._model: Any = None
        self._stemmer: Any = None

    def use_chunks(self, chunks: PlainChunks) -> None:
        """Share chunks already cut from the same corpus (they are identical for every baseline)."""
        self._chunks = chunks

    def index(self, corpus: Path, progress: Progress | None = None) -> IndexStats:
        import bm25s
        import Stemmer

        started = time.perf_counter()
        if self._chunks is None:
            self._chunks = PlainChunks(corpus)
        self._stemmer = Stemmer.Stemmer("english")
        tokens = bm25s.tokenize(
            [c.text for c in self._chunks.chunks],
            stopwords="en",
            stemmer=self._stemmer,
            show_progress=False,
        )
        self._model = bm25s.BM25()
        self._model.index(tokens, show_progress=False)
        return IndexStats(
            documents=len(self._chunks.texts),
            chunks=len(self._chunks.chunks),
            seconds=time.perf_counter() - started + self._chunks.seconds,
        )

    def retrieve(
        self, question: str, history: History, within: str | None, k: int
    ) -> list[Retrieved]:
        import bm25s

        assert self._chunks is not None
        chunks = self._chunks.chunks
        if not chunks:
            return []
        query = bm25s.tokenize(
            [question], stopwords="en", stemmer=self._stemmer, show_progress=False
        )
        # Query terms unknown to the corpus vocabulary would fail the lookup: keep the known.
        terms = _known_terms(query, self._model)
        if not terms:
            return []
        scores = np.asarray(self._model.get_scores(terms), dtype=float)
        mask = self._chunks.mask(within)
        if mask is not None:
            scores = np.where(mask, scores, -np.inf)
        order = [int(i) for i in np.argsort(-scores, kind="stable")[:k] if np.isfinite(scores[i])]
        return [_with_score(chunks[i], float(scores[i])) for i in order if scores[i] > 0]

    def ask(self, question: str, history: History, within: str | None) -> Prediction:
        raise NotImplementedError("bm25 is a retrieval-only baseline")

    def document_text(self, source: str) -> str:
        assert self._chunks is not None
        return self._chunks.texts[source]

    def close(self) -> None:
        self._model = None


def _known_terms(query: Any, model: Any) -> list[str]:
    id_to_term = {i: t for t, i in query.vocab.items()}
    terms = [id_to_term[i] for i in query.ids[0]]
    vocab = model.vocab_dict
    return [t for t in terms if t in vocab]


def _with_score(c: Retrieved, score: float) -> Retrieved:
    return Retrieved(c.source, c.start, c.end, c.text, score)


class DenseBaseline:
    """Retrieval only: exact cosine search over the plain chunks with one embedding model."""

    answers = False

    def __init__(
        self, model: str = "use", chunks: PlainChunks | None = None, model_cache: Path | None = None
    ) -> None:
        self.name = model
        self._model_name = model
        self._model_cache = model_cache  # Settings.model_cache: shares policy-qa's loaded model
        self._chunks = chunks
        self._vectors: np.ndarray | None = None

    def use_chunks(self, chunks: PlainChunks) -> None:
        """Share chunks already cut from the same corpus (they are identical for every baseline)."""
        self._chunks = chunks

    def index(self, corpus: Path, progress: Progress | None = None) -> IndexStats:
        model = load_embeddings(self._model_name, self._model_cache)
        model.embed_query("warm up")  # a model load is not indexing time
        started = time.perf_counter()
        if self._chunks is None:
            self._chunks = PlainChunks(corpus)
        texts = [c.text for c in self._chunks.chunks]
        parts = []
        batch = 64
        for i in range(0, len(texts), batch):
            parts.append(np.asarray(model.embed_documents(texts[i : i + batch]), dtype=np.float32))
            if progress:
                progress(min(i + batch, len(texts)), len(texts), self.name)
        dim = parts[0].shape[1] if parts else 1
        self._vectors = np.vstack(parts) if parts else np.zeros((0, dim), dtype=np.float32)
        return IndexStats(
            documents=len(self._chunks.texts),
            chunks=len(texts),
            seconds=time.perf_counter() - started + self._chunks.seconds,
        )

    def retrieve(
        self, question: str, history: History, within: str | None, k: int
    ) -> list[Retrieved]:
        assert self._chunks is not None and self._vectors is not None
        if not len(self._vectors):
            return []
        query = np.asarray(
            load_embeddings(self._model_name, self._model_cache).embed_query(question),
            dtype=np.float32,
        )
        scores = self._vectors @ query
        mask = self._chunks.mask(within)
        if mask is not None:
            scores = np.where(mask, scores, -np.inf)
        order = [int(i) for i in np.argsort(-scores, kind="stable")[:k] if np.isfinite(scores[i])]
        return [_with_score(self._chunks.chunks[i], float(scores[i])) for i in order]

    def ask(self, question: str, history: History, within: str | None) -> Prediction:
        raise NotImplementedError(f"{self.name} is a retrieval-only baseline")

    def document_text(self, source: str) -> str:
        assert self._chunks is not None
        return self._chunks.texts[source]

    def close(self) -> None:
        self._vectors = None
