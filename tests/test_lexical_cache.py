"""LexicalCache: the BM25 index follows the store, at once after our own writes and in the
background after someone else's, while questions keep the index they have."""

from __future__ import annotations

from pathlib import Path

import pytest

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
