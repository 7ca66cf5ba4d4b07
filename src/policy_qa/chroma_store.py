# Over 500 lines: one Chroma layout (documents, chunks per model, sentence vectors, revision mark)
# and the crash-consistent write order across its collections (decision 080).
"""``ChromaStore``: the ``Store`` in Chroma, embedded (a persistent folder) or a ``chroma run``
server. The only module that imports ``chromadb``.

Layout inside one Chroma database, for a logical collection ``NAME``:

- ``NAME__docs``: one record per document; the record's text is the document's *cleaned* text
  (the text every offset refers to), metadata holds title, language, root, hash and chunk count.
  Keeping it in Chroma means a team sharing a server also shares the texts citations point into.
- ``NAME__<model>``: one record per chunk for each dense model (``minilm``, ``use``), written
  with vectors we compute ourselves and searched with the collection's own ``query`` (not
  ``langchain_chroma.Chroma``, whose import cost a cold ``policy-qa ask`` ~0.6 s of CPU for
  the same call: docs/decisions/103-cold-start.md).
- ``NAME__<model>__sentences``: one record per sentence of each chunk (id ``CHUNKID:i``), its
  vector and where it sits in ``chunk.text``. Only fetched by chunk, never searched: the
  reranker reads them instead of embedding every candidate's sentences at question time.
  They are written and deleted together with their chunk, so they cannot outlive it.

A document's record is written twice: "pending" before its chunks, "complete" after them, so
a writer killed in between leaves a pending record, and reads skip its chunks until the next
writer (or opening the index) purges them (docs/decisions/080-crash-consistent-indexing.md).
An embedded index is opened and written under a ``FolderLock``, one writer at a time
(docs/decisions/081-one-writer-at-a-time.md). Every Chroma failure becomes a ``PolicyQAError``
that names the index; a damaged database is reported with the command that rebuilds it and is
never replaced (docs/decisions/082-damaged-and-misplaced-indexes.md).

It must not decide what to index or how to rank: it stores and fetches.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

import chromadb
import numpy as np
from chromadb.api.shared_system_client import SharedSystemClient
from chromadb.config import DEFAULT_DATABASE, DEFAULT_TENANT
from chromadb.config import Settings as ChromaSettings
from chromadb.errors import ChromaAuthError, NotFoundError

from .errors import (
    ConfigError,
    IndexDamagedError,
    IndexNotFoundError,
    PolicyQAError,
    StoreUnavailableError,
)
from .faults import Checkpoint
from .folder_lock import OPEN_LOCK, FolderLock
from .store import (
    PENDING,
    DocumentItem,
    SentenceVectors,
    document_info,
    document_record,
    is_complete,
    pending_record,
)
from .types import Chunk, DocumentInfo, Pages, content_id

__all__ = ["ChromaStore", "ServerAuth"]

log = logging.getLogger(__name__)

_BATCH = 1000  # well under Chroma's max batch size, and keeps each request small
_DOC_VECTOR = [1.0]  # the docs collection is looked up by id/metadata, never by similarity
_TOKEN_PROVIDER = "chromadb.auth.token_authn.TokenAuthClientProvider"
_DATABASE = "chroma.sqlite3"
# A pending record older than this on a Chroma server is a dead writer's: one write of a batch
# of documents takes seconds, and no file lock reaches another machine (decision 080).
PENDING_GRACE_SECONDS = 600.0
# The docs collection's metadata says the index was checked for chunks with no record at all
# (left by versions that wrote chunks before any record); then the scan is not repeated.
_LAYOUT = 2
# What SQLite and Chroma say about a database file that is not a sound database.
_DAMAGED = re.compile(
    r"malformed|not a database|file is encrypted|corrupt|disk image|no such table", re.I
)
_PAGE = 5000  # records per get when reading a whole collection
_T = TypeVar("_T")


def _damaged(location: str, server: bool, detail: str) -> IndexDamagedError:
    detail = detail.split("error returned from database: ")[-1].strip()
    if server:
        return IndexDamagedError(
            f"The Chroma server at {location} reports a damaged database ({detail}). Nothing "
            "was changed. Restore its data folder from a backup, or rebuild the index on a "
            f"fresh server: `policy-qa index YOUR-DOCUMENTS --chroma-url {location}`."
        )
    return IndexDamagedError(
        f"The index at {location} is damaged: {Path(location) / _DATABASE} cannot be read "
        f"({detail}). Nothing was changed. Rebuild it: move the folder aside "
        f"(`mv {location} {location}.damaged`), then run "
        f"`policy-qa index YOUR-DOCUMENTS --index-dir {location}`."
    )


def _is_ours(exc: BaseException) -> bool:
    """Whether ``exc`` is Chroma's, SQLite's or the network's (not a bug of ours)."""
    top = type(exc).__module__.split(".")[0]
    return isinstance(exc, OSError | sqlite3.Error) or top in ("chromadb", "httpx", "httpcore")


def _check_folder(index_dir: Path, create: bool) -> None:
    """Reasons an embedded index folder cannot be used, before Chroma touches it."""
    if index_dir.exists() and not index_dir.is_dir():
        raise ConfigError(
            f"The index folder {index_dir} is a file, not a folder. Give --index-dir (or "
            "POLICY_QA_INDEX_DIR) a folder: one that does not exist yet is created."
        )
    database = index_dir / _DATABASE
    if not create and not database.exists():
        raise IndexNotFoundError(
            f"No index found at {index_dir}. Index documents first, for example: "
            f"`policy-qa index corpus/ --index-dir {index_dir}`."
        )
    if create:
        try:
            index_dir.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise ConfigError(
                f"Cannot create the index folder {index_dir}: part of its path is a file. Give "
                "--index-dir (or POLICY_QA_INDEX_DIR) a folder."
            ) from None
        except PermissionError:
            raise ConfigError(
                f"Cannot create the index folder {index_dir}: permission denied. Give "
                "--index-dir (or POLICY_QA_INDEX_DIR) a folder you may write to."
            ) from None


def _check_database(index_dir: Path) -> None:
    """Under the open lock (a creator's new database is empty only while it holds it)."""
    database = index_dir / _DATABASE
    if database.exists() and database.stat().st_size == 0:
        # Chroma would quietly make a new, empty database of it: whatever was indexed there
        # would look gone (the "0-byte chroma.sqlite3").
        raise _damaged(str(index_dir), False, "the file is empty, 0 bytes")


@dataclass(frozen=True)
class ServerAuth:
    """Who a Chroma server is asked as: the token (``repr`` leaves it out) and where it goes,
    the tenant and the database (None: the server's defaults)."""

    token: str | None = field(default=None, repr=False)
    token_header: str = "Authorization"
    tenant: str | None = None
    database: str | None = None


def _client(index_dir: Path, chroma_url: str | None, create: bool, server: ServerAuth) -> Any:
    auth: dict[str, Any] = {}
    if chroma_url and server.token:
        # chromadb's own token provider; the token lives in these settings only, which nothing
        # logs (docs/decisions/092-chroma-server-auth.md).
        auth = {
            "chroma_client_auth_provider": _TOKEN_PROVIDER,
            "chroma_client_auth_credentials": server.token,
            "chroma_auth_token_transport_header": server.token_header,
        }
    settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False, **auth)
    if chroma_url:
        parsed = urlparse(chroma_url)
        try:
            client = chromadb.HttpClient(
                host=parsed.hostname or "127.0.0.1",
                port=parsed.port or (443 if parsed.scheme == "https" else 8000),
                ssl=parsed.scheme == "https",
                settings=settings,
                tenant=server.tenant or DEFAULT_TENANT,
                database=server.database or DEFAULT_DATABASE,
            )
            client.heartbeat()
        except ChromaAuthError:
            said = (
                f"refused the token in POLICY_QA_CHROMA_TOKEN (sent as {server.token_header}): "
                "set it to one the server accepts"
                if server.token
                else "asks for a token: set POLICY_QA_CHROMA_TOKEN"
            )
            raise StoreUnavailableError(
                f"The Chroma server at {chroma_url} {said} (and "
                "POLICY_QA_CHROMA_TOKEN_HEADER=X-Chroma-Token if the server reads that header)."
            ) from None
        except NotFoundError as exc:
            raise StoreUnavailableError(
                f"The Chroma server at {chroma_url} says: {exc}. Create it there "
                "(chromadb.AdminClient: create_tenant, create_database), or set "
                "POLICY_QA_CHROMA_TENANT and POLICY_QA_CHROMA_DATABASE to ones that exist."
            ) from None
        except Exception as exc:
            raise StoreUnavailableError(
                f"Cannot reach the Chroma server at {chroma_url} ({type(exc).__name__}). "
                "Start one with `chroma run --path DIR --host 127.0.0.1 --port 8000`, "
                "or unset POLICY_QA_CHROMA_URL to use the local index."
            ) from None
        return client
    _check_database(index_dir)
    try:
        return chromadb.PersistentClient(path=str(index_dir), settings=settings)
    except Exception:
        _forget_failed_system(str(index_dir))
        raise


def _forget_failed_system(identifier: str) -> None:
    """Drop the system Chroma cached for a folder it then failed to open (no client holds it).

    Chroma caches one system per folder before starting it, and keeps it when starting fails
    (a damaged database): every later open in this process then failed with "'RustBindingsAPI'
    object has no attribute 'bindings'" instead of the real reason.
    """
    if SharedSystemClient._identifier_to_refcount.get(identifier, 0) == 0:
        SharedSystemClient._identifier_to_system.pop(identifier, None)


def _chunk_metadata(chunk: Chunk, doc_id: str) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "source": chunk.source,
        "title": chunk.title,
        "section": chunk.section,
        "start": chunk.start,
        "end": chunk.end,
        "language": chunk.language,
        "doc_id": doc_id,
    }
    if chunk.pages:
        # page/page_end for a reader or a ``where`` filter; "pages" ("12:0 13:5120", page and
        # start offset) places each quote inside the chunk (decision 093). Chroma metadata
        # holds scalars only, and a source without pages stores none of the three.
        meta["page"], meta["page_end"] = chunk.page, chunk.page_end
        meta["pages"] = " ".join(f"{page}:{offset}" for page, offset in chunk.pages)
    return meta


def _chunks_in(got: Mapping[str, Any]) -> list[tuple[str, Chunk]]:
    """(id, chunk) of each record a collection's ``get`` returned with documents and metadata."""
    return [
        (str(cid), _chunk_from(str(text), meta))
        for cid, text, meta in zip(
            got["ids"], got["documents"] or [], got["metadatas"] or [], strict=True
        )
    ]


def _chunk_from(text: str, meta: Mapping[str, Any]) -> Chunk:
    return Chunk(
        source=str(meta["source"]),
        title=str(meta.get("title", "")),
        section=str(meta.get("section", "")),
        start=int(meta["start"]),
        end=int(meta["end"]),
        text=text,
        language=str(meta.get("language", "en")),
        pages=_pages_from(meta.get("pages")),
    )


def _pages_from(stored: object) -> Pages:
    """``Chunk.pages`` from its stored form; () for a chunk indexed before pages were kept."""
    if not isinstance(stored, str) or not stored:
        return ()
    pairs = (mark.split(":") for mark in stored.split())
    return tuple((int(page), int(offset)) for page, offset in pairs)


def _guarded(action: str) -> Callable[[Callable[..., _T]], Callable[..., _T]]:
    """Turn Chroma's (and SQLite's) failures in a method into errors that name the index."""

    def wrap(method: Callable[..., _T]) -> Callable[..., _T]:
        @functools.wraps(method)
        def guarded(self: ChromaStore, *args: Any, **kwargs: Any) -> _T:
            try:
                return method(self, *args, **kwargs)
            except PolicyQAError:
                raise
            except Exception as exc:
                if not _is_ours(exc):
                    raise
                raise self._failure(exc, action) from None

        return guarded

    return wrap


class ChromaStore:
    """Documents and chunk vectors in Chroma (a ``store.Store``).

    ``models`` names the dense models (a mapping's keys will do); the store keeps the vectors
    it is given and needs no model itself. ``checkpoint`` is the test-only fault hook
    (``faults``); writes call it at each boundary.

    >>> store = ChromaStore(Path("/tmp/idx"), None, "policy_qa", ["minilm"], create=True)
    >>> store.write_documents([(doc, chunks, {"minilm": vectors}, "/data")])
    """

    def __init__(
        self,
        index_dir: Path,
        chroma_url: str | None,
        name: str,
        models: Iterable[str],
        create: bool = False,
        checkpoint: Checkpoint | None = None,
        server: ServerAuth | None = None,
    ) -> None:
        models = list(models)
        if not models:
            raise ValueError("ChromaStore needs at least one embedding model")
        self.location = chroma_url or str(index_dir)
        self._folder = None if chroma_url else Path(index_dir)
        self._server = server or ServerAuth()  # the token, tenant and database (server only)
        self._name = name
        self._checkpoint = checkpoint or (lambda boundary: None)
        if self._folder is not None:
            _check_folder(self._folder, create)
        with self._opening():
            try:
                self._client = _client(Path(index_dir), chroma_url, create, self._server)
                self._docs = self._client.get_or_create_collection(
                    f"{name}__docs", embedding_function=None
                )
                self._collections = self._per_model(models, "")
                self._sentences = self._per_model(models, "__sentences")
            except PolicyQAError:
                raise
            except Exception as exc:
                if not _is_ours(exc):
                    raise
                raise self._failure(exc, "opening its collections") from None
        self._purge_on_open()

    def _failure(self, exc: BaseException, action: str) -> PolicyQAError:
        if _DAMAGED.search(str(exc)):
            return _damaged(self.location, self._folder is None, str(exc))
        if self._folder is None:
            return StoreUnavailableError(
                f"The Chroma server at {self.location} failed while {action}: {exc}. Check that "
                "it is running (`chroma run --path DIR --host 127.0.0.1 --port 8000`)."
            )
        return StoreUnavailableError(
            f"The index at {self.location} failed while {action}: {exc}. Nothing was changed."
        )

    def _writing(self) -> contextlib.AbstractContextManager[Any]:
        """One writer at a time: the folder's lock (embedded), nothing for a server."""
        if self._folder is None:
            return contextlib.nullcontext()
        return FolderLock(self._folder)

    def _opening(self) -> contextlib.AbstractContextManager[Any]:
        """One opener at a time, so two processes never create one database together."""
        if self._folder is None:
            return contextlib.nullcontext()
        return FolderLock(self._folder, OPEN_LOCK)

    @_guarded("removing what an interrupted write left")
    def _purge_on_open(self) -> None:
        """Purge now if no write is running (embedded: the writer's lock is free); else leave
        it to the next writer, and let reads skip the pending chunks meanwhile."""
        if self._folder is None:
            self._purge(full=False)
            return
        lock = FolderLock(self._folder)
        if not lock.acquire(wait=False) or not lock.held:
            return  # a write is running, or the folder is read-only
        try:
            self._purge(full=False)
        finally:
            lock.release()

    # --- documents ------------------------------------------------------------------------

    @_guarded("listing documents")
    def documents(self) -> list[DocumentInfo]:
        rows = [document_info(m) for m in self.document_meta().values()]
        return sorted(rows, key=lambda d: d.source)

    @_guarded("reading document records")
    def document_meta(self) -> dict[str, dict[str, Any]]:
        """source -> metadata (hash, root, ...) of every complete document."""
        got = self._docs.get(include=["metadatas"])
        return {str(m["source"]): dict(m) for m in got["metadatas"] or [] if is_complete(m)}

    def document_text(self, source: str) -> str | None:
        return self.document_texts([source]).get(source)

    @_guarded("reading document texts")
    def document_texts(self, sources: Sequence[str]) -> dict[str, str]:
        """The cleaned text of several documents in one call (sources that are gone are absent)."""
        if not sources:
            return {}
        ids = {content_id("doc", source): source for source in sources}
        got = self._docs.get(ids=list(ids), include=["documents", "metadatas"])
        return {
            ids[str(i)]: str(d)
            for i, d, m in zip(
                got["ids"], got["documents"] or [], got["metadatas"] or [], strict=True
            )
            if is_complete(m)
        }

    def _complete(self, sources: Iterable[str]) -> set[str]:
        """Which of ``sources`` have a complete record: whose chunks reads may return."""
        wanted = sorted(set(sources))
        if not wanted:
            return set()
        got = self._docs.get(ids=[content_id("doc", s) for s in wanted], include=["metadatas"])
        return {str(m["source"]) for m in got["metadatas"] or [] if is_complete(m)}

    @_guarded("writing documents")
    def write_documents(
        self, items: Sequence[DocumentItem], sentences: SentenceVectors | None = None
    ) -> None:
        """Write many documents at once: a few upserts per collection.

        Each Chroma call commits, so writing a thousand one-chunk files one by one costs
        minutes; batching them costs seconds. ``sentences``, if given, covers every chunk of
        ``items`` in order. The records go pending first and complete last, and the revision
        mark moves with each, so a write cut short anywhere leaves no chunk that reads return
        and no lexical index that looks current (decision 080).
        """
        if not items:
            return
        with self._writing():
            self._write(items, sentences)

    def _write(self, items: Sequence[DocumentItem], sentences: SentenceVectors | None) -> None:
        sources = [doc.source for doc, _, _, _ in items]
        self._mark_pending(sources)
        self._touch()
        self._checkpoint("pending")
        self._delete_chunks(sources)  # the old version's chunks, and any a dead writer left
        ids: list[str] = []
        metas: list[dict[str, Any]] = []
        texts: list[str] = []
        for doc, chunks, _, _ in items:
            ids.extend(c.id for c in chunks)
            metas.extend(_chunk_metadata(c, doc.id) for c in chunks)
            texts.extend(c.text for c in chunks)
        for model, collection in self._collections.items():
            matrix = np.vstack(
                [np.asarray(v[model]).reshape(len(c), -1) for _, c, v, _ in items if len(c)]
                or [np.zeros((0, 1))]
            )
            for i in range(0, len(ids), _BATCH):
                collection.upsert(
                    ids=ids[i : i + _BATCH],
                    embeddings=matrix[i : i + _BATCH].tolist(),
                    documents=texts[i : i + _BATCH],
                    metadatas=metas[i : i + _BATCH],
                )
            self._checkpoint(f"vectors:{model}")
        if sentences is not None:
            self._write_sentences([c for _, chunks, _, _ in items for c in chunks], sentences)
        self._checkpoint("sentences")
        # Complete records go last: their presence means "fully indexed".
        now = datetime.now(UTC).isoformat(timespec="seconds")
        for i in range(0, len(items), _BATCH):
            part = items[i : i + _BATCH]
            self._docs.upsert(
                ids=[doc.id for doc, _, _, _ in part],
                embeddings=[_DOC_VECTOR for _ in part],
                documents=[doc.text for doc, _, _, _ in part],
                metadatas=[
                    document_record(doc, len(chunks), root, now) for doc, chunks, _, root in part
                ],
            )
        self._checkpoint("records")
        self._touch()
        self._checkpoint("revision")

    def _mark_pending(self, sources: Sequence[str]) -> None:
        since = time.time()
        for i in range(0, len(sources), _BATCH):
            part = sources[i : i + _BATCH]
            self._docs.upsert(
                ids=[content_id("doc", s) for s in part],
                embeddings=[_DOC_VECTOR for _ in part],
                documents=["" for _ in part],
                metadatas=[pending_record(s, since) for s in part],
            )

    def _per_model(self, models: Sequence[str], suffix: str) -> dict[str, Any]:
        """``NAME__<model><suffix>`` for every model: vectors we compute, cosine space."""
        return {
            model: self._client.get_or_create_collection(
                f"{self._name}__{model}{suffix}",
                embedding_function=None,
                metadata={"hnsw:space": "cosine"},
            )
            for model in models
        }

    def _write_sentences(self, chunks: Sequence[Chunk], sentences: SentenceVectors) -> None:
        for model, collection in self._sentences.items():
            rows = sentences.rows(model, chunks)
            ids = [sid for sid, _, _, _ in rows]
            metas = [
                {"source": c.source, "chunk": c.id, "start": start, "end": end}
                for _, c, start, end in rows
            ]
            matrix = np.asarray(sentences.vectors[model])
            for i in range(0, len(ids), _BATCH):
                collection.upsert(
                    ids=ids[i : i + _BATCH],
                    embeddings=matrix[i : i + _BATCH].tolist(),
                    metadatas=metas[i : i + _BATCH],
                )

    def _delete_chunks(self, sources: Sequence[str]) -> int:
        removed = 0
        for collection in self._collections.values():
            removed = max(removed, self._delete_where_source(collection, sources))
        # A chunk's sentences go with it, so a changed or removed document leaves none behind.
        for collection in self._sentences.values():
            self._delete_where_source(collection, sources)
        return removed

    @staticmethod
    def _delete_where_source(collection: Any, sources: Sequence[str]) -> int:
        removed = 0
        for i in range(0, len(sources), _BATCH):
            where = {"source": {"$in": list(sources[i : i + _BATCH])}}
            got = collection.get(where=where, include=[])
            removed += len(got["ids"])
            if got["ids"]:
                collection.delete(ids=got["ids"])
        return removed

    @_guarded("removing a document")
    def delete_document(self, source: str) -> int:
        """Remove a document and its chunks, with or without a complete record (chunks a dead
        writer left go too); returns how many chunks went."""
        with self._writing():
            return self._delete_sources([source])

    def _delete_sources(self, sources: Sequence[str]) -> int:
        """Pending first, then the chunks, then the records: cut short, it is purged later."""
        known = self._docs.get(ids=[content_id("doc", s) for s in sources], include=[])["ids"]
        if known:
            self._mark_pending(sources)
        removed = self._delete_chunks(sources)
        if known:
            self._docs.delete(ids=known)
        if known or removed:
            self._touch()
        return removed

    @_guarded("removing what an interrupted write left")
    def purge_incomplete(self) -> list[str]:
        """Remove the chunks and records of documents a dead writer left pending; returns their
        sources. Also run when the store is opened."""
        with self._writing():
            return self._purge(full=True)

    def _purge(self, full: bool) -> list[str]:
        """The purge, inside the writer's lock. ``full`` also looks, once per index, for chunks
        with no record at all (what versions before pending records left: decision 080).

        Embedded, the lock means no write is running, so every pending record is a dead
        writer's. On a server, another machine may be writing: only records pending for
        longer than ``PENDING_GRACE_SECONDS`` are taken as dead.
        """
        got = self._docs.get(where={"state": PENDING}, include=["metadatas"])
        now = time.time()
        doomed = {
            str(m["source"])
            for m in got["metadatas"] or []
            if self._folder is not None
            or now - float(m.get("pending_since", 0.0)) > PENDING_GRACE_SECONDS
        }
        layout = (self._docs_metadata() or {}).get("layout")
        if full and layout != _LAYOUT:
            recorded = {
                str(m["source"]) for m in self._docs.get(include=["metadatas"])["metadatas"] or []
            }
            doomed |= self._chunk_sources() - recorded
        if doomed:
            log.warning(
                "removing %d document(s) an interrupted write left incomplete: %s",
                len(doomed),
                ", ".join(sorted(doomed)[:5]) + (" ..." if len(doomed) > 5 else ""),
            )
            self._delete_sources(sorted(doomed))
        if full and layout != _LAYOUT:
            self._touch()
        return sorted(doomed)

    def _chunk_sources(self) -> set[str]:
        first = next(iter(self._collections.values()))
        sources: set[str] = set()
        total = int(first.count())
        for offset in range(0, total, _PAGE):
            got = first.get(include=["metadatas"], limit=_PAGE, offset=offset)
            sources.update(str(m["source"]) for m in got["metadatas"] or [])
        return sources

    # --- chunks ---------------------------------------------------------------------------

    @_guarded("counting chunks")
    def count(self) -> int:
        first = next(iter(self._collections.values()))
        return int(first.count())

    @_guarded("listing chunk ids")
    def chunk_ids(self) -> set[str]:
        """Every stored chunk's id, in one ``get``: ids alone are ~40 bytes a chunk, and pages
        cost more with each offset (SQLite skips the rows before it). In pages of 5,000 they
        took 3.1 s of a cold `ask` at 100,000 chunks, and 1.1 s of CPU against 0.26 s in one
        call at 72,000 (docs/decisions/104-scale.md)."""
        first = next(iter(self._collections.values()))
        return {str(i) for i in first.get(include=[])["ids"]}

    @_guarded("counting sentences")
    def sentence_count(self, model: str) -> int:
        """How many sentence vectors of ``model`` are stored (0 for an index made without)."""
        return int(self._sentences[model].count())

    def stored_ids(self) -> dict[str, list[str]]:
        """Every collection's record ids, sorted (what a crash test compares, whatever the
        states say)."""
        collections = {
            "docs": self._docs,
            **{f"chunks:{m}": c for m, c in self._collections.items()},
            **{f"sentences:{m}": c for m, c in self._sentences.items()},
        }
        out = {}
        for name, collection in collections.items():
            total = int(collection.count())
            ids: list[str] = []
            for offset in range(0, total, _PAGE):
                ids.extend(
                    str(i) for i in collection.get(include=[], limit=_PAGE, offset=offset)["ids"]
                )
            out[name] = sorted(ids)
        return out

    def _touch(self) -> None:
        """Mark the documents as changed, for every reader's ``fingerprint``."""
        self._docs.modify(metadata={"revision": uuid.uuid4().hex, "layout": _LAYOUT})

    def _docs_metadata(self) -> dict[str, Any] | None:
        # A fresh handle: the one we hold caches the metadata it was opened with.
        collection = self._client.get_collection(f"{self._name}__docs", embedding_function=None)
        return collection.metadata

    @_guarded("checking for changes")
    def fingerprint(self) -> str:
        """Changes whenever any document is added, changed or removed (by anyone).

        Every write leaves a new random revision in the documents collection's metadata, so a
        check reads one small record (~1 ms embedded) whatever the corpus size; hashing every
        document's metadata took 0.6 s at 8,400 documents, paid on a question every 30 s. An
        index no writer has touched since revisions came falls back to that hash.
        """
        revision = (self._docs_metadata() or {}).get("revision")
        if revision:
            return content_id("revision", str(revision))
        meta = self.document_meta()
        parts = sorted(f"{s}:{m.get('hash', '')}" for s, m in meta.items())
        return content_id("fingerprint", *parts)

    @_guarded("reading chunks")
    def iter_chunks(self) -> Iterable[tuple[str, Chunk]]:
        """Every chunk of a complete document with its id (for rebuilding the lexical index)."""
        complete = set(self.document_meta())
        first = next(iter(self._collections.values()))
        total = int(first.count())
        out = []
        for offset in range(0, total, _PAGE):
            got = first.get(include=["documents", "metadatas"], limit=_PAGE, offset=offset)
            out += [(cid, c) for cid, c in _chunks_in(got) if c.source in complete]
        return out

    @_guarded("reading chunks")
    def get_chunks(self, ids: Sequence[str]) -> dict[str, Chunk]:
        """Chunks by id (ids that are gone, or whose document is incomplete, are absent)."""
        if not ids:
            return {}
        first = next(iter(self._collections.values()))
        got = first.get(ids=list(ids), include=["documents", "metadatas"])
        found = dict(_chunks_in(got))
        complete = self._complete(c.source for c in found.values())
        return {cid: c for cid, c in found.items() if c.source in complete}

    @_guarded("reading chunks")
    def chunks_of(self, sources: Sequence[str]) -> list[tuple[str, Chunk]]:
        """The chunks of some complete documents with their ids, read by source: an update of
        the lexical index reads these instead of every chunk (decision 101)."""
        complete = self._complete(sources)
        wanted = sorted(complete)
        first = next(iter(self._collections.values()))
        out: list[tuple[str, Chunk]] = []
        for i in range(0, len(wanted), _BATCH):
            got = first.get(
                where={"source": {"$in": wanted[i : i + _BATCH]}},
                include=["documents", "metadatas"],
            )
            out += _chunks_in(got)
        return out

    @_guarded("reading sentence vectors")
    def sentence_vectors(
        self, model: str, chunks: Mapping[str, int]
    ) -> dict[str, list[tuple[int, int, np.ndarray]]]:
        """Stored sentences of some chunks: chunk id -> [(start, end, vector)] in text order.

        ``chunks`` maps each chunk id to how many sentences it has now; records are fetched by
        id, which takes half the time of filtering the collection by chunk. Offsets are into
        ``chunk.text`` and come from the record, so a sentence split differently since indexing
        is simply not found. Chunks stored without sentence vectors (an index made before they
        existed) are absent; the caller embeds their sentences itself.
        """
        collection = self._sentences.get(model)
        ids = [f"{cid}:{i}" for cid, n in chunks.items() for i in range(n)]
        if collection is None or not ids:
            return {}
        got = collection.get(ids=ids, include=["embeddings", "metadatas"])
        out: dict[str, list[tuple[int, int, np.ndarray]]] = {}
        embeddings = got["embeddings"]
        vectors = np.asarray([] if embeddings is None else embeddings, dtype=np.float32)
        for meta, vector in zip(got["metadatas"] or [], vectors, strict=True):
            out.setdefault(str(meta["chunk"]), []).append(
                (int(meta["start"]), int(meta["end"]), vector)
            )
        for spans in out.values():
            spans.sort(key=lambda row: row[0])
        return out

    @_guarded("searching")
    def search(
        self,
        model: str,
        query_vector: Sequence[float],
        k: int,
        sources: Sequence[str] | None = None,
    ) -> list[tuple[str, Chunk, float]]:
        """Nearest chunks of complete documents to ``query_vector`` as (id, chunk, cosine
        similarity), best first.

        Chunks of a pending document (a write running now, or one a dead writer left before
        the next purge) are dropped after the search, and the search is asked for more until
        ``k`` remain or nothing more is stored: such chunks are rare, so the usual cost is one
        lookup of the hits' few records.
        """
        if sources is not None and not sources:
            return []
        where: dict[str, Any] | None = None
        if sources is not None:
            where = {"source": {"$in": list(sources)}}
        collection = self._collections[model]
        wanted = k
        while True:
            got = collection.query(
                query_embeddings=[list(query_vector)],
                n_results=wanted,
                where=where,
                include=["documents", "metadatas", "distances"],
            )
            hits = [
                (cid, text, meta or {}, distance)
                for cid, text, meta, distance in zip(
                    got["ids"][0],
                    (got["documents"] or [[]])[0],
                    (got["metadatas"] or [[]])[0],
                    (got["distances"] or [[]])[0],
                    strict=True,
                )
                if text is not None
            ]
            found = [(_chunk_from(text, meta), cid, d) for cid, text, meta, d in hits]
            complete = self._complete(chunk.source for chunk, _, _ in found)
            kept = [
                (str(cid), chunk, 1.0 - float(distance))
                for chunk, cid, distance in found
                if chunk.source in complete
            ]
            if len(kept) >= k or len(hits) < wanted:
                return kept[:k]
            wanted *= 2
