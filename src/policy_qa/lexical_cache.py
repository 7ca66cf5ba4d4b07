"""``LexicalCache``: the BM25 index of a store, kept in step with the store's contents.

The lexical index is derived from the store (every chunk's text), saved beside it, and rebuilt
when the store's ``fingerprint`` changes: at once after this process's own writes, and on a
background thread when a periodic check notices someone else's (a shared Chroma server), while
questions keep the index they have. It owns that staleness check and the rebuild; it does not
search (``lexical.LexicalIndex`` does) nor write to the store.

The revision mark alone is not trusted: a writer killed before moving it once left BM25 with 10
of 40 chunks for good. So a saved index is loaded only if its chunk ids are the store's, and
every check also compares the store's chunk count with the one the index was built at
(docs/decisions/080-crash-consistent-indexing.md).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from pathlib import Path
from typing import Any

from .faults import Checkpoint
from .folder_lock import FolderLock
from .lexical import LexicalIndex, Tokenizer
from .store import Store
from .types import Chunk

__all__ = ["STALE_CHECK_SECONDS", "LexicalCache", "lexical_text"]

log = logging.getLogger(__name__)

# How often to notice documents indexed by someone else (server mode): the check reads one
# revision mark (~1 ms); a rebuild at 100,000 chunks takes 15-30 s.
# docs/decisions/012-lexical-index-persisted-and-rebuilt-incrementally.md
STALE_CHECK_SECONDS = 30.0


def lexical_text(chunk: Chunk) -> str:
    """What BM25 indexes for a chunk: its section heading, then its text."""
    return f"{chunk.section}\n{chunk.text}" if chunk.section else chunk.text


class LexicalCache:
    """The BM25 index of one store, loaded from ``folder`` or built, and rebuilt on change.

    ``folder`` None keeps it in memory only (a store that does not outlive the process).

    >>> cache = LexicalCache("kiwi", Path(".policy-qa/index/lexical/policy_qa"))
    >>> cache.get(store).search("research complex", 5)
    """

    def __init__(
        self,
        korean_tokenizer: str,
        folder: Path | None,
        *,
        stale_after: float = STALE_CHECK_SECONDS,
        checkpoint: Checkpoint | None = None,
    ) -> None:
        if stale_after < 0:
            raise ValueError(f"stale_after must be >= 0 seconds, got {stale_after}")
        self.korean_tokenizer = korean_tokenizer
        self.folder = folder
        self.stale_after = stale_after
        self._checkpoint = checkpoint
        self._index: LexicalIndex | None = None
        self._previous: LexicalIndex | None = None  # the index ``rebuild`` is replacing
        self._count = -1  # the store's chunk count when ``_index`` was built
        self._lock = threading.RLock()
        self._build_lock = threading.Lock()
        self._rebuilding: threading.Thread | None = None
        self._checked_at = 0.0

    def get(self, store: Store, *, force_check: bool = False) -> LexicalIndex:
        """The BM25 index, rebuilt when the stored documents changed (by us or anyone).

        After this process's own writes (``force_check``) it is rebuilt at once. A change the
        periodic check notices (someone else's writes, in server mode) is rebuilt on a
        background thread while questions keep the index they have: at 100,000 chunks a
        rebuild takes 15-30 s, which the next question would otherwise wait for.
        """
        with self._lock:
            now = time.monotonic()
            fresh = now - self._checked_at < self.stale_after
            current = self._index
            if current is not None and fresh and not force_check:
                return current
            fingerprint = store.fingerprint()
            count = store.count()
            self._checked_at = now
            if current is not None and (current.fingerprint, self._count) == (fingerprint, count):
                return current
            if current is not None and not force_check:
                self._rebuild_later(store, fingerprint, current)
                return current
            built, self._count = self._build(store, fingerprint)
            self._index = built
            return built

    def rebuild(self, store: Store) -> LexicalIndex:
        """The index after this process changed the store: rebuilt now, from the saved one's
        chunk terms (only new chunks are tokenized)."""
        with self._lock:
            # Kept aside, not thrown away: the update starts from it (decision 101).
            self._previous, self._index = self._index, None
        try:
            return self.get(store, force_check=True)
        finally:
            with self._lock:
                self._previous = None

    def clear(self) -> None:
        """Forget the index in memory (the saved one stays)."""
        with self._lock:
            self._index = None

    def wait(self, timeout: float | None = None) -> None:
        """Wait for a background rebuild, if one is running (tests, orderly shutdown)."""
        thread = self._rebuilding
        if thread is not None:
            thread.join(timeout)

    def _build(self, store: Store, fingerprint: str) -> tuple[LexicalIndex, int]:
        """Load the saved BM25 index for ``fingerprint``, or build (and save) it; with the
        store's chunk count it stands for."""
        # One build at a time, here and in other processes: builds write the same folder.
        with self._build_lock, self._folder_lock():
            folder = self.folder
            tokenizer = Tokenizer(korean=self.korean_tokenizer)
            count = store.count()
            loaded = LexicalIndex.load(folder, tokenizer, fingerprint) if folder else None
            stored: set[str] | None = None
            if loaded is not None:
                stored = store.chunk_ids()
                if set(loaded.ids) == stored:
                    return loaded, count
                log.warning(
                    "the saved lexical index's chunk ids are not the store's (%d of its %d "
                    "are stored; the store holds %d); updating it",
                    len(set(loaded.ids) & stored),
                    len(loaded.ids),
                    len(stored),
                )
            # The index before the change (in memory, or saved) lends its chunks' terms:
            # only new chunks are tokenized.
            previous = next(
                (i for i in (self._index, self._previous, loaded) if i is not None), None
            )
            if previous is None and folder:
                previous = LexicalIndex.load(folder, tokenizer, None)
            if stored is None and previous is not None:
                # An update from an index this process holds (or a saved one of another
                # fingerprint) must see rows the store no longer holds too (decision 080).
                stored = store.chunk_ids()
            # The records first: a document changed after this read is seen as changed by
            # the next update, never recorded as current with old chunks.
            meta = store.document_meta()
            hashes = {source: str(m.get("hash", "")) for source, m in meta.items()}
            built = self._updated(store, previous, meta, hashes, fingerprint, stored)
            if built is None:
                log.info("building the lexical index")
                chunks = list(store.iter_chunks())
                built = LexicalIndex.build(
                    ((cid, c.source, lexical_text(c)) for cid, c in chunks),
                    tokenizer,
                    fingerprint,
                    previous,
                    spans=[(c.start, c.end) for _, c in chunks],
                    hashes=hashes,
                )
            if folder:
                built.save(folder, self._checkpoint)
            return built, count

    @staticmethod
    def _updated(
        store: Store,
        previous: LexicalIndex | None,
        meta: dict[str, dict[str, Any]],
        hashes: dict[str, str],
        fingerprint: str,
        stored: set[str] | None = None,
    ) -> LexicalIndex | None:
        """``previous`` brought up to date by the documents whose records changed since it was
        made: their old rows dropped, their chunks read and tokenized, the BM25 matrix
        recomputed from term ids (docs/decisions/101-incremental-bm25.md). None when it cannot
        be trusted to match the store (no record of what it was made from, or chunk counts
        that disagree with the records, as while another client writes): build in full.

        ``stored``, the store's chunk ids when they were listed, also marks as changed the
        documents with rows the store no longer holds under an unchanged hash: a document
        indexed again with other chunking settings keeps its hash, and may keep its chunk
        count (docs/decisions/080-crash-consistent-indexing.md, amended 2026-12-05).
        """
        if previous is None or previous.hashes is None:
            return None
        old = previous.hashes
        gone: set[str] = set()
        if stored is not None:
            gone = {
                s
                for cid, s in zip(previous.ids, previous.sources, strict=True)
                if cid not in stored
            }
        changed = sorted(s for s, h in hashes.items() if old.get(s) != h or s in gone)
        drop = set(changed) | (set(old) - set(hashes))
        chunks = store.chunks_of(changed) if changed else []
        kept = sum(1 for source in previous.sources if source not in drop)
        expected = sum(int(m.get("chunks", -1)) for m in meta.values())
        if kept + len(chunks) != expected:
            log.info(
                "lexical index: %d chunks after an update, the records say %d; rebuilding",
                kept + len(chunks),
                expected,
            )
            return None
        return previous.updated(
            drop,
            [(cid, c.source, lexical_text(c)) for cid, c in chunks],
            [(c.start, c.end) for _, c in chunks],
            fingerprint,
            hashes,
        )

    def _folder_lock(self) -> contextlib.AbstractContextManager[Any]:
        if self.folder is None:
            return contextlib.nullcontext()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            return contextlib.nullcontext()  # cannot save here either; nothing to guard
        return FolderLock(self.folder)

    def _rebuild_later(self, store: Store, fingerprint: str, current: LexicalIndex) -> None:
        """Build the index for ``fingerprint`` on a thread; install it if nothing newer came."""
        if self._rebuilding is not None and self._rebuilding.is_alive():
            return  # the check after it finishes will notice anything newer

        def run() -> None:
            try:
                built, count = self._build(store, fingerprint)
            except Exception as exc:  # the next periodic check tries again
                log.warning("background rebuild of the lexical index failed: %s", exc)
                with self._lock:
                    self._checked_at = 0.0
                return
            with self._lock:
                # A rebuild after our own write (or clear()) replaced ``current`` meanwhile:
                # that index is at least as new as this one.
                if self._index is current:
                    self._index, self._count = built, count

        self._rebuilding = threading.Thread(target=run, name="policy-qa-bm25", daemon=True)
        self._rebuilding.start()
