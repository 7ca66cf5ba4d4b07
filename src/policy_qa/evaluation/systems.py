"""What the runner needs from a system under evaluation, and the adapter for policy-qa itself.

A ``System`` indexes a corpus folder, ranks passages for a question and (unless it is
retrieval-only) answers it. Offsets a system reports refer to *its own* text of each source,
which ``document_text`` returns, so gold evidence is located in each system's own text and
one scoring rule serves every system.

This module must not score anything (``metrics`` does) nor build corpora (``datasets`` does).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..config import Settings
from ..types import Progress

History = Sequence[tuple[str, str]]


@dataclass(frozen=True)
class Retrieved:
    """One ranked passage, as offsets into the system's text of ``source``."""

    source: str
    start: int
    end: int
    text: str
    score: float = 0.0


@dataclass(frozen=True)
class Quote:
    """One citation: ``text`` is what the system quoted from ``source[start:end]``."""

    source: str
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Prediction:
    answer: str
    abstained: bool
    citations: tuple[Quote, ...] = ()
    confidence: float | None = None
    notes: tuple[str, ...] = ()
    retrieval_query: str = ""


@dataclass(frozen=True)
class IndexStats:
    documents: int
    chunks: int
    seconds: float
    skipped: tuple[str, ...] = field(default=())


class System(Protocol):
    name: str
    answers: bool  # False for retrieval-only baselines

    def index(self, corpus: Path, progress: Progress | None = None) -> IndexStats: ...

    def retrieve(
        self, question: str, history: History, within: str | None, k: int
    ) -> list[Retrieved]: ...

    def ask(self, question: str, history: History, within: str | None) -> Prediction: ...

    def document_text(self, source: str) -> str: ...

    def close(self) -> None: ...


class PolicyQASystem:
    """policy-qa's ``Assistant``, indexed into its own folder."""

    name = "policy-qa"
    answers = True

    def __init__(self, index_dir: Path, settings: Settings) -> None:
        self._index_dir = Path(index_dir)
        self._settings = settings
        self._assistant: Any = None
        self._texts: dict[str, str] = {}

    @property
    def refusal_threshold(self) -> float:
        return float(self._settings.refusal_threshold)

    def index(self, corpus: Path, progress: Progress | None = None) -> IndexStats:
        # Imported here so that scoring and loading never pay for the models.
        from ..assistant import Assistant
        from ..embeddings import load_embeddings

        # Load the models before the clock starts: throughput should measure indexing, not
        # a one-off model load (which the first set of a run would otherwise pay alone).
        for model in self._settings.dense_models:
            load_embeddings(model, self._settings.model_cache).embed_query("warm up")
        self._assistant = Assistant(index_dir=self._index_dir, settings=self._settings)
        started = time.perf_counter()
        report = self._assistant.index([corpus], progress=progress)
        seconds = time.perf_counter() - started
        documents = len(report.added) + len(report.updated) + len(report.unchanged)
        skipped = tuple(f"{s.path}: {s.reason}" for s in report.skipped)
        return IndexStats(
            documents=documents, chunks=report.chunks, seconds=seconds, skipped=skipped
        )

    def retrieve(
        self, question: str, history: History, within: str | None, k: int
    ) -> list[Retrieved]:
        passages = self._assistant.retrieve(question, history=list(history), within=within, k=k)
        return [
            Retrieved(p.chunk.source, p.chunk.start, p.chunk.end, p.chunk.text, float(p.score))
            for p in passages
        ]

    def ask(self, question: str, history: History, within: str | None) -> Prediction:
        answer = self._assistant.ask(question, history=list(history), within=within)
        return Prediction(
            answer=answer.answer,
            abstained=bool(answer.abstained),
            citations=tuple(Quote(c.source, c.start, c.end, c.quote) for c in answer.citations),
            confidence=float(getattr(answer, "confidence", 0.0)),
            notes=tuple(answer.notes),
            retrieval_query=answer.retrieval_query,
        )

    def document_text(self, source: str) -> str:
        if source not in self._texts:
            self._texts[source] = self._assistant.document_text(source)
        return self._texts[source]

    def close(self) -> None:
        if self._assistant is not None:
            self._assistant.close()
            self._assistant = None
