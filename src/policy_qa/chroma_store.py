"""``ChromaStore``: the ``Store`` in Chroma, embedded (a persistent folder) or a ``chroma run``
server. The only module that imports ``chromadb`` (and ``langchain_chroma`` for searches).

Layout inside one Chroma database, for a logical collection ``NAME``:

- ``NAME__docs``: one record per document; the record's text is the document's *cleaned* text
  (the text every offset refers to), metadata holds title, language, root, hash and chunk count.
  Keeping it in Chroma means a team sharing a server also shares the texts citations point into.
- ``NAME__<model>``: one record per chunk for each dense model (``minilm``, ``use``), written
  with vectors we compute ourselves and searched through ``langchain_chroma.Chroma``.
- ``NAME__<model>__sentences``: one record per sentence of each chunk (id ``CHUNKID:i``), its
  vector and where it sits in ``chunk.text``. Only fetched by chunk, never searched: the
  reranker reads them instead of embedding every candidate's sentences at question time.
  They are written and deleted together with their chunk, so they cannot outlive it.

It must not decide what to index or how to rank: it stores and fetches.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import chromadb
import numpy as np
from chromadb.config import DEFAULT_DATABASE, DEFAULT_TENANT
from chromadb.config import Settings as ChromaSettings
from chromadb.errors import ChromaAuthError, NotFoundError
from langchain_chroma import Chroma
from langchain_core.embeddings import Embeddings

from .errors import IndexNotFoundError, StoreUnavailableError
from .store import DocumentItem, SentenceVectors, document_info, document_record
from .types import Chunk, DocumentInfo, content_id

__all__ = ["ChromaStore", "ServerAuth"]

log = logging.getLogger(__name__)

_BATCH = 1000  # well under Chroma's max batch size, and keeps each request small
_DOC_VECTOR = [1.0]  # the docs collection is looked up by id/metadata, never by similarity
_TOKEN_PROVIDER = "chromadb.auth.token_authn.TokenAuthClientProvider"


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
    if not create and not (index_dir / "chroma.sqlite3").exists():
        raise IndexNotFoundError(
            f"No index found at {index_dir}. Index documents first, for example: "
            f"`policy-qa index corpus/ --index-dir {index_dir}`."
        )
    index_dir.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(index_dir), settings=settings)


def _chunk_metadata(chunk: Chunk, doc_id: str) -> dict[str, Any]:
    return {
        "source": chunk.source,
        "title": chunk.title,
        "section": chunk.section,
        "start": chunk.start,
        "end": chunk.end,
        "language": chunk.language,
        "doc_id": doc_id,
    }


def _chunk_from(text: str, meta: Mapping[str, Any]) -> Chunk:
    return Chunk(
        source=str(meta["source"]),
        title=str(meta.get("title", "")),
        section=str(meta.get("section", "")),
        start=int(meta["start"]),
        end=int(meta["end"]),
        text=text,
        language=str(meta.get("language", "en")),
    )


class ChromaStore:
    """Documents and chunk vectors in Chroma (a ``store.Store``).

    >>> store = ChromaStore(Path("/tmp/idx"), None, "policy_qa", {"minilm": emb}, create=True)
    >>> store.write_documents([(doc, chunks, {"minilm": vectors}, "/data")])
    """

    def __init__(
        self,
        index_dir: Path,
        chroma_url: str | None,
        name: str,
        embeddings: Mapping[str, Embeddings],
        create: bool = False,
        server: ServerAuth | None = None,
    ) -> None:
        """``server``: the token, tenant and database for ``chroma_url`` (embedded: unused)."""
        if not embeddings:
            raise ValueError("ChromaStore needs at least one embedding model")
        self.location = chroma_url or str(index_dir)
        self._client = _client(Path(index_dir), chroma_url, create, server or ServerAuth())
        self._name = name
        try:
            self._docs = self._client.get_or_create_collection(
                f"{name}__docs", embedding_function=None
            )
            self._collections = self._per_model(embeddings, "")
            self._sentences = self._per_model(embeddings, "__sentences")
        except Exception as exc:
            raise StoreUnavailableError(
                f"Chroma at {self.location} failed to open its collections: {exc}"
            ) from exc
        # Searches go through LangChain's vector store interface over the same collections.
        self._vectorstores = {
            model: Chroma(
                collection_name=f"{name}__{model}",
                embedding_function=embeddings[model],
                client=self._client,
                collection_metadata={"hnsw:space": "cosine"},
            )
            for model in embeddings
        }

    # --- documents ------------------------------------------------------------------------

    def documents(self) -> list[DocumentInfo]:
        got = self._docs.get(include=["metadatas"])
        rows = [document_info(m) for m in got["metadatas"] or []]
        return sorted(rows, key=lambda d: d.source)

    def document_meta(self) -> dict[str, dict[str, Any]]:
        """source -> metadata (hash, root, ...) of every stored document."""
        got = self._docs.get(include=["metadatas"])
        return {str(m["source"]): dict(m) for m in got["metadatas"] or []}

    def document_text(self, source: str) -> str | None:
        return self.document_texts([source]).get(source)

    def document_texts(self, sources: Sequence[str]) -> dict[str, str]:
        """The cleaned text of several documents in one call (sources that are gone are absent)."""
        if not sources:
            return {}
        ids = {content_id("doc", source): source for source in sources}
        try:
            got = self._docs.get(ids=list(ids), include=["documents"])
        except Exception as exc:
            raise StoreUnavailableError(f"Chroma get failed at {self.location}: {exc}") from exc
        return {
            ids[str(i)]: str(d) for i, d in zip(got["ids"], got["documents"] or [], strict=True)
        }

    def write_documents(
        self, items: Sequence[DocumentItem], sentences: SentenceVectors | None = None
    ) -> None:
        """Write many documents at once: one delete and a few upserts per collection.

        Each Chroma call commits, so writing a thousand one-chunk files one by one costs
        minutes; batching them costs seconds. ``sentences``, if given, covers every chunk of
        ``items`` in order.
        """
        if not items:
            return
        existing = self._docs.get(ids=[doc.id for doc, _, _, _ in items], include=["metadatas"])
        stale = [str(m["source"]) for m in existing["metadatas"] or []]
        if stale:
            self._delete_chunks(stale)
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
        if sentences is not None:
            self._write_sentences([c for _, chunks, _, _ in items for c in chunks], sentences)
        # Document records go last: their presence means "fully indexed".
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
        self._touch()

    def _per_model(self, embeddings: Mapping[str, Embeddings], suffix: str) -> dict[str, Any]:
        """``NAME__<model><suffix>`` for every model: vectors we compute, cosine space."""
        return {
            model: self._client.get_or_create_collection(
                f"{self._name}__{model}{suffix}",
                embedding_function=None,
                metadata={"hnsw:space": "cosine"},
            )
            for model in embeddings
        }

    def _write_sentences(self, chunks: Sequence[Chunk], sentences: SentenceVectors) -> None:
        if len(sentences.spans) != len(chunks):
            raise ValueError(f"sentence spans for {len(sentences.spans)} of {len(chunks)} chunks")
        ids: list[str] = []
        metas: list[dict[str, Any]] = []
        for chunk, spans in zip(chunks, sentences.spans, strict=True):
            cid = chunk.id
            for i, (start, end) in enumerate(spans):
                ids.append(f"{cid}:{i}")
                metas.append({"source": chunk.source, "chunk": cid, "start": start, "end": end})
        for model, collection in self._sentences.items():
            matrix = np.asarray(sentences.vectors[model])
            if len(matrix) != len(ids):
                raise ValueError(f"{model}: {len(matrix)} sentence vectors for {len(ids)} spans")
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

    def delete_document(self, source: str) -> int:
        """Remove a document and its chunks; returns how many chunks went."""
        removed = self._delete_chunks([source])
        self._docs.delete(ids=[content_id("doc", source)])
        self._touch()
        return removed

    # --- chunks ---------------------------------------------------------------------------

    def count(self) -> int:
        first = next(iter(self._collections.values()))
        return int(first.count())

    def sentence_count(self, model: str) -> int:
        """How many sentence vectors of ``model`` are stored (0 for an index made without)."""
        return int(self._sentences[model].count())

    def _touch(self) -> None:
        """Mark the documents as changed, for every reader's ``fingerprint``."""
        self._docs.modify(metadata={"revision": uuid.uuid4().hex})

    def fingerprint(self) -> str:
        """Changes whenever any document is added, changed or removed (by anyone).

        Every write leaves a new random revision in the documents collection's metadata, so a
        check reads one small record (~1 ms embedded) whatever the corpus size; hashing every
        document's metadata took 0.6 s at 8,400 documents, paid on a question every 30 s. An
        index no writer has touched since revisions came falls back to that hash.
        """
        try:
            collection = self._client.get_collection(f"{self._name}__docs", embedding_function=None)
        except Exception as exc:
            raise StoreUnavailableError(f"Chroma at {self.location} failed: {exc}") from exc
        revision = (collection.metadata or {}).get("revision")
        if revision:
            return content_id("revision", str(revision))
        meta = self.document_meta()
        parts = sorted(f"{s}:{m.get('hash', '')}" for s, m in meta.items())
        return content_id("fingerprint", *parts)

    def iter_chunks(self) -> Iterable[tuple[str, Chunk]]:
        """Every stored chunk with its id, in pages (for rebuilding the lexical index)."""
        first = next(iter(self._collections.values()))
        total = int(first.count())
        page = 5000
        for offset in range(0, total, page):
            got = first.get(include=["documents", "metadatas"], limit=page, offset=offset)
            for cid, text, meta in zip(
                got["ids"], got["documents"] or [], got["metadatas"] or [], strict=True
            ):
                yield cid, _chunk_from(str(text), meta)

    def get_chunks(self, ids: Sequence[str]) -> dict[str, Chunk]:
        """Chunks by id (ids that are gone are simply absent from the result)."""
        if not ids:
            return {}
        first = next(iter(self._collections.values()))
        got = first.get(ids=list(ids), include=["documents", "metadatas"])
        return {
            str(cid): _chunk_from(str(text), meta)
            for cid, text, meta in zip(
                got["ids"], got["documents"] or [], got["metadatas"] or [], strict=True
            )
        }

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
        try:
            got = collection.get(ids=ids, include=["embeddings", "metadatas"])
        except Exception as exc:
            raise StoreUnavailableError(f"Chroma get failed at {self.location}: {exc}") from exc
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

    def search(
        self,
        model: str,
        query_vector: Sequence[float],
        k: int,
        sources: Sequence[str] | None = None,
    ) -> list[tuple[str, Chunk, float]]:
        """Nearest chunks to ``query_vector`` as (id, chunk, cosine similarity), best first."""
        if sources is not None and not sources:
            return []
        where: dict[str, Any] | None = None
        if sources is not None:
            where = {"source": {"$in": list(sources)}}
        store = self._vectorstores[model]
        try:
            hits = store.similarity_search_by_vector_with_relevance_scores(
                list(query_vector), k=k, filter=where
            )
        except Exception as exc:
            raise StoreUnavailableError(f"Chroma search failed at {self.location}: {exc}") from exc
        out = []
        for doc, distance in hits:
            chunk = _chunk_from(doc.page_content, doc.metadata)
            out.append((str(doc.id or chunk.id), chunk, 1.0 - float(distance)))
        return out
