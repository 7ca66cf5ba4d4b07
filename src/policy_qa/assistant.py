# Over 500 lines: the public methods and the answer path's wiring (translation, follow-ups,
# computed answers, the LLM fallback); each step itself lives in its own module.
"""``Assistant``: the one place that wires the stages together.

    files ─▶ ingest (load, clean, chunk) ─▶ embed ─▶ Store (Chroma, memory) + LexicalIndex (BM25)
    question (+ history) ─▶ Retriever (fuse, rerank) ─▶ answerer (extractive, or LLM + verify)

The web chat, the CLI and the eval runner all go through this class and nothing else.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from langchain_core.embeddings import Embeddings

from .answer import ExtractiveAnswerer
from .config import Settings, quiet_third_parties
from .conversation import joined, leans_on_previous, previous_question
from .embeddings import load_embeddings
from .errors import (
    ConfigError,
    DocumentError,
    DocumentNotFoundError,
    IndexNotFoundError,
    LLMError,
)
from .faults import checkpoint_for
from .indexing import Progress, index_paths
from .ingest import Limits, detect_language
from .inputs import (
    Messages,
    check_history,
    check_k,
    check_question,
    check_source,
    check_within,
)
from .judge import AnswerabilityJudge, make_judge
from .lexical import LexicalIndex
from .lexical_cache import LexicalCache
from .query import Query
from .refusals import refusal_for
from .retrieve import Retriever
from .similarity import SentenceScorer
from .store import Store
from .translate import glossary, to_english
from .types import Answer, DocumentInfo, IndexReport, Passage

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

log = logging.getLogger(__name__)

History = Sequence[tuple[str, str]]

_UNSET: Any = object()  # "not decided yet", where None is a decision (the check is off)
_LLM_PASSAGES = 4  # passages put in an LLM's prompt
CHAT_MODEL = "chat_model"  # the backend name of a chat model passed to ``Assistant``
GATED_NOTE = "refused before the LLM was asked: the documents' evidence does not answer it"


class Assistant:
    """Ask questions of indexed policy documents and get cited answers.

    >>> qa = Assistant(index_dir=".policy-qa/index")
    >>> qa.index(["corpus/"])
    >>> qa.ask("When was the Daedeok Research Complex established?").answer
    'Daedeok Research Complex was established in 1973 ... [1]'
    """

    def __init__(
        self,
        index_dir: str | Path | None = None,
        *,
        settings: Settings | None = None,
        embeddings: Mapping[str, Embeddings] | None = None,
        store: Store | None = None,
        chat_model: BaseChatModel | None = None,
    ) -> None:
        """``store``: where documents live (default: the Chroma index ``settings`` name, opened
        on first use). A store passed in keeps its BM25 index in memory only, and ``close``
        leaves it open.

        ``chat_model``: any LangChain chat model, to write answers instead of the backend
        ``settings.llm`` names (leave that "none"). Its answers go through the same refusal
        gate and verification; ``ask(..., llm="none")`` still answers extractively.
        """
        quiet_third_parties()
        settings = settings or Settings.from_env()
        if index_dir is not None:
            settings = settings.replace(index_dir=Path(index_dir))
        if chat_model is not None and settings.llm != "none":
            raise ConfigError(
                f"Pass a chat_model or set llm={settings.llm!r}, not both: unset "
                "POLICY_QA_LLM (or --llm) to answer with the chat model."
            )
        self._chat_model = chat_model
        self.settings = settings
        self._embeddings: Mapping[str, Embeddings] | None = embeddings
        self._store: Store | None = store
        self._own_store = store is None
        # The test-only fault hook (None unless settings.fault_pause_at is set).
        self._checkpoint = checkpoint_for(settings.fault_pause_at, settings.dense_models)
        self._lexical = LexicalCache(
            settings.korean_tokenizer, self._lexical_dir(), checkpoint=self._checkpoint
        )
        self._scorer: SentenceScorer | None = None
        self._llms: dict[str, Any] = {}
        self._lock = threading.RLock()
        self._cross_encoder: Any = None
        self._judge: Any = _UNSET

    # --- lazily opened parts ---------------------------------------------------------------

    @property
    def embeddings(self) -> Mapping[str, Embeddings]:
        # Under the lock: the web chat's first questions arrive together, and each would
        # otherwise load the models again (docs/decisions/051-concurrency.md).
        with self._lock:
            if self._embeddings is None:
                s = self.settings
                self._embeddings = {m: load_embeddings(m, s.model_cache) for m in s.dense_models}
            return self._embeddings

    @property
    def index_dir(self) -> Path:
        return self.settings.resolved_index_dir

    def _open(self, create: bool = False) -> Store:
        with self._lock:
            if self._store is None:
                from .chroma_store import ChromaStore, ServerAuth

                # Model names only: listing or removing documents loads no model.
                models = (
                    self.settings.dense_models if self._embeddings is None else self._embeddings
                )
                s = self.settings
                self._store = ChromaStore(
                    self.index_dir,
                    s.chroma_url,
                    s.collection,
                    models,
                    create=create,
                    checkpoint=self._checkpoint,
                    server=ServerAuth(
                        s.chroma_token, s.chroma_token_header, s.chroma_tenant, s.chroma_database
                    ),
                )
            return self._store

    def _judge_(self) -> AnswerabilityJudge | None:
        """The answerability check ``settings.judge`` asks for, made once (None when off)."""
        with self._lock:
            if self._judge is _UNSET:
                self._judge = make_judge(self.settings)
            return cast("AnswerabilityJudge | None", self._judge)

    def prepare_check(self) -> bool:
        """Set up the answerability check now (on a first run this assembles the packaged Qwen,
        ~10 s), so the first borderline question does not wait. True when the check is on."""
        judge = self._judge_()
        if judge is not None:
            judge.load()
        return judge is not None

    def _scorer_(self) -> SentenceScorer:
        with self._lock:  # one scorer, so concurrent questions share its sentence cache
            if self._scorer is None:
                self._scorer = SentenceScorer(self.embeddings)
            return self._scorer

    def _lexical_index(self) -> LexicalIndex:
        return self._lexical.get(self._open())

    def _lexical_dir(self) -> Path | None:
        if not self._own_store:
            return None  # a store passed in: its BM25 index lives in memory only
        # Server mode keeps the BM25 index as a local cache beside the data directory; it is
        # derived from Chroma's contents and rebuilt whenever they change.
        s = self.settings
        if s.chroma_url:
            # One cache per server, tenant, database and collection: each holds other chunks.
            where = [s.chroma_url, *(p for p in (s.chroma_tenant, s.chroma_database) if p)]
            safe = re.sub(r"[^A-Za-z0-9]+", "_", "_".join(where))
            return Path(s.data_dir) / "lexical" / f"{safe}_{s.collection}"
        return self.index_dir / "lexical" / self.settings.collection

    def retriever(self) -> Retriever:
        """The ``Retriever`` over the current index: what ``retrieve`` and ``ask`` search with.

        Benchmarks and research scripts time or replay its stages (``retriever.lexical``,
        ``retriever.store``, ``retriever.scorer``); a new one is made per call, over the BM25
        index that is current then.
        """
        return Retriever(
            self._open(),
            self._lexical_index(),
            self.embeddings,
            self._scorer_(),
            candidates=self.settings.candidates,
            cross_encoder=self._load_cross_encoder(),
            window_chars=self.settings.window_chars,
        )

    def _load_cross_encoder(self) -> Any:
        if self.settings.reranker_path and self._cross_encoder is None:
            from .embeddings import load_cross_encoder

            self._cross_encoder = load_cross_encoder(self.settings.reranker_path)
        return self._cross_encoder

    # --- indexing ---------------------------------------------------------------------------

    def index(self, paths: Sequence[str | Path], progress: Progress | None = None) -> IndexReport:
        """Add or update the documents at ``paths`` (files or folders, recursively).

        Unchanged files are left alone, changed files replace their old chunks, and files that
        were deleted from an indexed folder lose theirs. Unreadable, empty or unsupported
        files are reported in ``IndexReport.skipped``; the rest still index.
        """
        began = time.perf_counter()
        paths = _check_paths(paths)
        store = self._open(create=True)
        # What a writer killed mid-write left goes first: its documents are then "added" again,
        # and its ghosts never outlive their files
        # (docs/decisions/080-crash-consistent-indexing.md).
        purged = store.purge_incomplete()
        report = index_paths(
            store,
            self.embeddings,
            paths,
            chunk_size=self.settings.chunk_size,
            chunk_min=self.settings.chunk_min,
            progress=progress,
            limits=Limits.from_settings(self.settings),
        )
        if report.added or report.updated or report.removed or purged:
            self._lexical.rebuild(store)
        return replace(report, seconds=time.perf_counter() - began)

    def remove(self, source: str) -> bool:
        """Remove one document (by its ``source``); True if it was indexed.

        Chunks an interrupted write left under ``source`` go too, though it has no record.
        """
        source = check_source(source)
        store = self._open()
        recorded = source in store.document_meta()
        removed = store.delete_document(source)
        if recorded or removed:
            self._lexical.rebuild(store)
        return recorded or removed > 0

    def documents(self) -> list[DocumentInfo]:
        try:
            return self._open().documents()
        except IndexNotFoundError:
            return []

    def document_text(self, source: str) -> str:
        """The cleaned text of ``source``: what every citation's offsets refer to."""
        text = self._open().document_text(check_source(source))
        if text is None:
            raise DocumentNotFoundError(
                f"{source!r} is not indexed (`policy-qa documents` lists what is)."
            )
        return text

    # --- asking -----------------------------------------------------------------------------

    def _check_question(self, question: str) -> str:
        return check_question(question, self.settings.max_question_chars)

    def _sources_within(
        self, within: str | None, lexical: LexicalIndex | None = None
    ) -> list[str] | None:
        """The indexed sources under the prefix ``within`` (None: no restriction).

        Read from the lexical index (``lexical``: the one the search will use), which holds
        every chunk's source in memory: listing the documents from Chroma on every question
        took ~0.5 s at 8,400 documents.
        """
        if within is None:
            return None
        if lexical is None:
            lexical = self._lexical_index()
        return lexical.sources_under(within)

    def _ready(self) -> Store:
        store = self._open()
        if store.count() == 0:
            raise IndexNotFoundError(
                f"The index at {store.location} is empty. Index documents first, for example: "
                "`policy-qa index corpus/`."
            )
        return store

    def retrieve(
        self,
        question: str,
        history: History | Messages | None = None,
        *,
        within: str | None = None,
        k: int | None = None,
        rerank: bool = True,
    ) -> list[Passage]:
        """The ranked passages for a question (what ``ask`` answers from)."""
        question = self._check_question(question)
        history, within, k = check_history(history), check_within(within), check_k(k)
        self._ready()
        retriever = self.retriever()
        sources = self._sources_within(within, retriever.lexical)
        query = Query.read(question, retriever.lexical)
        if history:
            # Which reading (alone or after the previous question) is ask's decision too.
            extractive = ExtractiveAnswerer(retriever.scorer, retriever.lexical)
            query = self._in_conversation(query, history, retriever, sources, extractive)[0]
        return retriever.search(query, k or self.settings.top_k, sources, rerank=rerank)

    def ask(
        self,
        question: str,
        history: History | Messages | None = None,
        *,
        within: str | None = None,
        llm: str | None = None,
    ) -> Answer:
        """Answer ``question`` from the indexed documents, citing each claim, or refuse.

        ``llm`` overrides the configured backend for this question, one of ``backends``
        ("none" for extractive).
        """
        final: Answer | None = None
        for item in self.stream(question, history, within=within, llm=llm):
            if isinstance(item, Answer):
                final = item
        assert final is not None
        return final

    def stream(
        self,
        question: str,
        history: History | Messages | None = None,
        *,
        within: str | None = None,
        llm: str | None = None,
    ) -> Iterator[str | Answer]:
        """Yield the answer's text as it is produced, then the final ``Answer``.

        Extractive answers come whole in one piece; LLM answers come token by token, and the
        final ``Answer`` is the verified one (which may differ from the streamed draft). Whatever
        the backend, a question the calibrated refusal turns away is refused without asking an
        LLM (its notes say so).
        """
        question = self._check_question(question)
        history, within = check_history(history), check_within(within)
        self._ready()
        answerer = self._llm_answerer(llm or self.backends[-1])
        retriever = self.retriever()
        sources = self._sources_within(within, retriever.lexical)
        # The question is read once here, and every stage below reads what it holds
        # (docs/decisions/030-query-read-once.md).
        asked = Query.read(question, retriever.lexical)
        original = question
        english = self._in_english(asked, retriever, sources)
        reading = asked
        if english is not None:
            # Read in English from here on; the answer still answers the Korean question
            # (docs/decisions/075-korean-questions-translated.md).
            question = english
            reading = Query.read(english, retriever.lexical)
        extractive = ExtractiveAnswerer(
            retriever.scorer,
            retriever.lexical,
            threshold=self.settings.refusal_threshold,
            max_sentences=self.settings.max_answer_sentences,
            judge=self._judge_(),
        )
        condensed = answerer.condense(question, history) if answerer and history else None
        if condensed:
            query = reading.searching(condensed, retriever.lexical)
            passages = retriever.search(query, self.settings.top_k, sources)
        else:
            query, passages = self._in_conversation(
                reading, history, retriever, sources, extractive
            )
        # The calibrated refusal decides for every backend: the evidence scores, the
        # answerability check and the quote check were chosen on the dev sets' unanswerable
        # questions, while an LLM left to refuse by itself answered most of them
        # (docs/decisions/024-refusal-decided-before-any-llm.md). A refused question never
        # reaches the LLM.
        combined = query.computation if self.settings.computed_answers else None
        computed = None
        if combined is not None:
            # Each event of a span is looked up on its own too: one search for the whole
            # question may find only one of them (docs/decisions/073-computed-answers.md).
            parts = query.facets if combined.kind == "difference" else None
            more = [p for part in parts or () for p in retriever.search(part, 3, sources)]
            computed = extractive.computed(query, combined, [*passages, *more], parts=parts)
        extracted = computed or extractive.answer(query, passages)
        if english is not None:
            extracted = replace(
                extracted,
                question=original,
                answer=refusal_for(original, asked.language)
                if extracted.abstained
                else extracted.answer,
                notes=(*extracted.notes, f"read in English as “{english}”"),
            )
            question = original
        if within is not None and not sources:
            extracted = _with_note(extracted, f"no indexed document is under {within!r}")
        if answerer is None or extracted.abstained:
            if answerer is not None:
                extracted = _with_note(extracted, GATED_NOTE)
            yield extracted.answer
            yield extracted
            return

        fallback_note = ""
        try:
            # Prompt reading dominates a local model's time; the top passages carry the answer.
            # It reads their ranked chunks, not the windows: four windows of Korean text would
            # not fit the local model's context, and its figures were measured on chunks.
            ranked = [p.narrowed() for p in passages[:_LLM_PASSAGES]]
            for item in answerer.stream(question, history, ranked, self.document_text):
                if isinstance(item, Answer):
                    # The check that let the question through is part of why it was answered.
                    notes = (*extracted.notes, *item.notes)
                    yield replace(item, retrieval_query=query.retrieval, notes=notes)
                    return
                if item is None:
                    break
                yield item
            fallback_note = "the generated answer had no claim its passages support"
        except LLMError as exc:
            fallback_note = f"LLM failed: {exc}"
        answer = _with_note(extracted, fallback_note)
        yield "\n\n" + answer.answer
        yield answer

    def _in_english(
        self, question: Query, retriever: Retriever, sources: list[str] | None
    ) -> str | None:
        """``question`` translated, when it is Korean, the passages it finds are English and
        the model is there to translate (None otherwise, or when translation fails)."""
        if question.language != "ko":
            return None
        judge = self._judge_()
        if judge is None:
            return None
        passages = retriever.search(question, self.settings.top_k, sources)
        top = passages[:3]
        if not top or any(detect_language(p.chunk.text) != "en" for p in top):
            return None
        names = glossary([p.chunk.text for p in passages])
        try:
            return to_english(question.text, names, judge.reply)
        except LLMError as exc:
            log.warning("could not translate the question: %s", exc)
            return None

    def _in_conversation(
        self,
        question: Query,
        history: History | None,
        retriever: Retriever,
        sources: list[str] | None,
        extractive: ExtractiveAnswerer,
    ) -> tuple[Query, list[Passage]]:
        """The reading and passages for ``question``: alone, or after the question before it
        when that finds clearly stronger evidence (``conversation``). ``extractive`` weighs the
        evidence, and keeps the scoring of the reading chosen for the answer."""
        passages = retriever.search(question, self.settings.top_k, sources)
        previous = previous_question(history)
        if not previous:
            return question, passages
        query = question.searching(joined(previous, question.text), retriever.lexical)
        with_previous = retriever.search(query, self.settings.top_k, sources)
        if leans_on_previous(
            extractive.evidence(question, passages).confidence,
            extractive.evidence(query, with_previous).confidence,
        ):
            return query, with_previous
        return question, passages

    def _llm_answerer(self, backend: str) -> Any:
        """The LLM answerer for ``backend`` (None for extractive), built once per backend."""
        if backend == "none":
            return None
        with self._lock:
            if backend not in self._llms:
                from .generate import LLMAnswerer

                scorer = self._scorer_()
                model = scorer.model_for("ko")
                given = backend == CHAT_MODEL and self._chat_model is not None
                self._llms[backend] = LLMAnswerer(
                    self.settings if given else self.settings.replace(llm=backend),
                    scorer.embedder(model),
                    chat_model=self._chat_model if given else None,
                )
            return self._llms[backend]

    @property
    def backends(self) -> list[str]:
        """Answer backends this assistant can use: extractive ("none"), then the configured
        LLM (``CHAT_MODEL`` for a chat model passed in), which is the default: the last one."""
        if self._chat_model is not None:
            return ["none", CHAT_MODEL]
        return ["none"] + ([self.settings.llm] if self.settings.llm != "none" else [])

    def close(self) -> None:
        """Release the index (embedded Chroma keeps files open); a store passed in stays."""
        if self._own_store:
            self._store = None
        self._lexical.clear()

    def __enter__(self) -> Assistant:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_paths(paths: object) -> list[str | Path]:
    """``index``'s paths: one path, or a list of them, each text or a ``Path``."""
    if isinstance(paths, str | Path):
        return [paths]
    if isinstance(paths, Sequence) and all(isinstance(p, str | Path) for p in paths):
        for p in paths:
            if "\x00" in str(p):
                raise DocumentError(f"{str(p)!r} is not a path: it holds a NUL character.")
        return list(paths)
    raise DocumentError(
        f"index takes files or folders (a path, or a list of paths), got {paths!r:.60}."
    )


def _with_note(answer: Answer, note: str) -> Answer:
    if not note:
        return answer
    return replace(answer, notes=(*answer.notes, note))
