"""LexicalCache: the BM25 index follows the store, at once after our own writes and in the
background after someone else's, while questions keep the index they have."""

from __future__ import annotations

from pathlib import Path

import pytest

from policy_qa.lexical import LexicalIndex, Tokenizer
from policy_qa.lexical_cache import LexicalCache, lexical_text
from policy_qa.memory_store import InMemoryStore
from policy_qa.types import Chunk

from .tiny import store_item

WATER = ["The Water Board meets in Busan.", "The board has nine members."]
PARKS = ["City parks open at six.", "Dogs must be kept on a lead."]
HARBOUR = ["Ferries to Jeju leave the harbour at dawn."]


def filled() -> InMemoryStore:
    store = InMemoryStore()
    store.write_documents([store_item("water.txt", WATER), store_item("parks.md", PARKS)])
    return store


def test_the_index_holds_every_stored_chunk_with_its_heading() -> None:
    store = filled()
    index = LexicalCache("bigram", None).get(store)
    assert index.sources_under("") == ["parks.md", "water.txt"]
    assert index.fingerprint == store.fingerprint()
    assert index.search("nine members", 1)[0][0] in dict(store.iter_chunks())
    chunk = Chunk("a.txt", "T", "Harbour rules", 0, 5, "Ferry")
    assert lexical_text(chunk) == "Harbour rules\nFerry"
    assert lexical_text(Chunk("a.txt", "T", "", 0, 5, "Ferry")) == "Ferry"


def test_a_fresh_index_is_kept_until_the_next_check() -> None:
    store = filled()
    cache = LexicalCache("bigram", None, stale_after=3600)
    first = cache.get(store)
    store.write_documents([store_item("harbour.txt", HARBOUR)])  # someone else's write
    assert cache.get(store) is first  # not checked again yet


def test_our_own_write_is_rebuilt_at_once() -> None:
    store = filled()
    cache = LexicalCache("bigram", None, stale_after=3600)
    first = cache.get(store)
    store.write_documents([store_item("harbour.txt", HARBOUR)])
    rebuilt = cache.rebuild(store)
    assert rebuilt is not first and "harbour.txt" in rebuilt.sources_under("")
    assert cache.get(store) is rebuilt


def test_someone_elses_change_is_rebuilt_in_the_background() -> None:
    store = filled()
    cache = LexicalCache("bigram", None, stale_after=0.0)
    before = cache.get(store)
    assert cache.get(store) is before  # checked: nothing changed
    store.write_documents([store_item("harbour.txt", HARBOUR)])
    assert cache.get(store) is before  # noticed, not waited for
    cache.wait(timeout=60)
    after = cache.get(store)
    assert after is not before and "harbour.txt" in after.sources_under("")


def test_a_saved_index_is_loaded_and_nothing_is_saved_without_a_folder(tmp_path: Path) -> None:
    store = filled()
    folder = tmp_path / "lexical"
    built = LexicalCache("bigram", folder).get(store)
    assert any(folder.iterdir())
    loaded = LexicalCache("bigram", folder).get(store)
    assert loaded is not built and loaded.ids == built.ids
    assert loaded.fingerprint == store.fingerprint()
    LexicalCache("bigram", None).get(store)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lexical"]


def test_clear_forgets_the_index_in_memory() -> None:
    store = filled()
    cache = LexicalCache("bigram", None, stale_after=3600)
    first = cache.get(store)
    cache.clear()
    assert cache.get(store) is not first


def test_a_negative_check_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="stale_after"):
        LexicalCache("bigram", None, stale_after=-1)


class CountingTokenizer(Tokenizer):
    """The real bigram tokenizer, counting the texts it is given."""

    def __init__(self) -> None:
        super().__init__("bigram")
        self.texts: list[str] = []

    def __call__(self, text: str) -> list[str]:
        self.texts.append(text)
        return super().__call__(text)


def _same_index(a: LexicalIndex, b: LexicalIndex) -> None:
    """The same chunks, document frequencies, neighbours and BM25 scores, in any row order."""
    assert sorted(a.ids) == sorted(b.ids)
    assert a.doc_freq == b.doc_freq
    for query in ("water board", "parks dogs", "ferries harbour jeju", "nine members"):
        got, want = dict(a.search(query, 10)), dict(b.search(query, 10))
        assert got.keys() == want.keys()
        assert [got[k] for k in want] == pytest.approx(list(want.values()))
    for cid in a.ids:
        assert a.neighbours(cid) == b.neighbours(cid)


def test_a_change_updates_the_index_without_rebuilding_it() -> None:
    store = filled()
    cache = LexicalCache("bigram", None, stale_after=3600)
    first = cache.get(store)
    assert first.hashes == {s: m["hash"] for s, m in store.document_meta().items()}
    store.write_documents([store_item("harbour.txt", HARBOUR)])
    store.write_documents([store_item("parks.md", ["City parks open at seven.", PARKS[1]])])
    store.delete_document("water.txt")
    tokenizer = CountingTokenizer()
    updated = first.updated(
        {"parks.md", "water.txt"},
        [
            (cid, c.source, lexical_text(c))
            for cid, c in store.chunks_of(["harbour.txt", "parks.md"])
        ],
        [(c.start, c.end) for _, c in store.chunks_of(["harbour.txt", "parks.md"])],
        "after",
        {s: m["hash"] for s, m in store.document_meta().items()},
    )
    assert updated is not None
    chunks = list(store.iter_chunks())
    fresh = LexicalIndex.build(
        ((cid, c.source, lexical_text(c)) for cid, c in chunks),
        tokenizer,
        spans=[(c.start, c.end) for _, c in chunks],
    )
    _same_index(updated, fresh)
    assert "water.txt" not in updated.sources_under("") and updated.fingerprint == "after"


def test_the_cache_follows_a_change_tokenizing_only_the_changed_document() -> None:
    store = filled()
    cache = LexicalCache("bigram", None, stale_after=3600)
    cache.get(store)
    store.write_documents([store_item("harbour.txt", HARBOUR)])
    counting = CountingTokenizer()
    previous = cache.get(store)
    previous.tokenizer = counting  # the update tokenizes the new chunks with the index's own
    after = cache.rebuild(store)
    assert counting.texts == [lexical_text(c) for _, c in store.chunks_of(["harbour.txt"])]
    assert after.search("ferries jeju", 1)[0][0] in dict(store.chunks_of(["harbour.txt"]))


def test_a_saved_index_is_updated_across_restarts(tmp_path: Path) -> None:
    store = filled()
    folder = tmp_path / "lexical"
    LexicalCache("bigram", folder).get(store)
    store.write_documents([store_item("harbour.txt", HARBOUR)])
    store.delete_document("parks.md")
    restarted = LexicalCache("bigram", folder).rebuild(store)  # from the saved index's terms
    chunks = list(store.iter_chunks())
    fresh = LexicalIndex.build(
        ((cid, c.source, lexical_text(c)) for cid, c in chunks),
        Tokenizer("bigram"),
        spans=[(c.start, c.end) for _, c in chunks],
    )
    _same_index(restarted, fresh)
    assert restarted.hashes == {s: m["hash"] for s, m in store.document_meta().items()}
