"""The ``Store`` contract, held by both implementations: real Chroma in tmp_path and the
in-memory store, given the same writes, answer every read alike."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from policy_qa.chroma_store import ChromaStore
from policy_qa.memory_store import InMemoryStore
from policy_qa.store import DocumentItem, SentenceVectors, Store

from .tiny import hash_models, store_item

MODELS = ("minilm", "use")
EMBED = hash_models(*MODELS)["minilm"]


@pytest.fixture(params=["memory", "chroma"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "memory":
        yield InMemoryStore(MODELS)
    else:
        yield ChromaStore(tmp_path / "index", None, "policy_qa", hash_models(*MODELS), create=True)


def item(source: str, paragraphs: list[str]) -> DocumentItem:
    return store_item(source, paragraphs, MODELS)


def sentences_of(items: list[DocumentItem]) -> SentenceVectors:
    """One 'sentence' per chunk: its whole text."""
    chunks = [c for _, cs, _, _ in items for c in cs]
    rows = np.asarray(EMBED.embed_documents([c.text for c in chunks]), dtype=np.float32)
    return SentenceVectors(
        spans=tuple(((0, len(c.text)),) for c in chunks), vectors={m: rows for m in MODELS}
    )


WATER = ["The Water Board meets in Busan.", "The board has nine members."]
PARKS = ["City parks open at six.", "Dogs must be kept on a lead."]


def test_both_implementations_are_stores(store: Store) -> None:
    assert isinstance(store, Store)


def test_written_documents_are_read_back(store: Store) -> None:
    items = [item("water.txt", WATER), item("parks.md", PARKS)]
    store.write_documents(items, sentences_of(items))
    assert [d.source for d in store.documents()] == ["parks.md", "water.txt"]
    assert store.documents()[1].chunks == 2
    assert store.document_text("water.txt") == "\n\n".join(WATER)
    assert store.document_text("gone.txt") is None
    assert set(store.document_texts(["parks.md", "gone.txt"])) == {"parks.md"}
    meta = store.document_meta()["water.txt"]
    assert meta["hash"] == items[0][0].content_hash and meta["root"] == "/data"
    assert store.count() == 4
    chunks = dict(store.iter_chunks())
    assert {c.text for c in chunks.values()} == set(WATER + PARKS)
    some = sorted(chunks)[:2]
    assert store.get_chunks([*some, "gone"]) == {cid: chunks[cid] for cid in some}


def test_pages_are_read_back_and_chunks_without_pages_have_none(store: Store) -> None:
    doc, chunks, vectors, root = item("travel.pdf", WATER)
    paged = [replace(c, pages=((i + 1, c.start), (i + 2, c.end - 5))) for i, c in enumerate(chunks)]
    store.write_documents([(doc, paged, vectors, root), item("parks.md", PARKS)])
    read = {c.text: c for _, c in store.iter_chunks()}
    assert [read[c.text].pages for c in paged] == [c.pages for c in paged]
    assert (read[WATER[1]].page, read[WATER[1]].page_end) == (2, 3)
    assert all(read[t].pages == () and read[t].page is None for t in PARKS)


def test_search_finds_the_nearest_chunk_within_sources(store: Store) -> None:
    store.write_documents([item("water.txt", WATER), item("parks.md", PARKS)])
    query = EMBED.embed_query("nine members")
    hits = store.search("minilm", query, 2)
    assert hits[0][1].text == "The board has nine members."
    assert hits[0][2] >= hits[1][2] and -1.0 <= hits[1][2] <= 1.0 + 1e-6
    within = store.search("use", query, 4, sources=["parks.md"])
    assert {c.source for _, c, _ in within} == {"parks.md"}
    assert store.search("minilm", query, 4, sources=[]) == []


def test_a_rewrite_replaces_and_a_delete_removes_chunks_and_sentences(store: Store) -> None:
    items = [item("water.txt", WATER), item("parks.md", PARKS)]
    store.write_documents(items, sentences_of(items))
    old = {c.id: 1 for c in items[0][1]}
    assert set(store.sentence_vectors("use", old)) == set(old)

    changed = [item("water.txt", ["The Water Board meets in Ulsan."])]
    store.write_documents(changed, sentences_of(changed))
    assert store.sentence_vectors("use", old) == {}
    assert store.get_chunks(list(old)) == {}
    new = changed[0][1][0]
    rows = store.sentence_vectors("minilm", {new.id: 1})[new.id]
    assert [(s, e) for s, e, _ in rows] == [(0, len(new.text))]
    assert store.count() == 3

    assert store.delete_document("parks.md") == 2
    assert [d.source for d in store.documents()] == ["water.txt"]
    assert {c.source for _, c in store.iter_chunks()} == {"water.txt"}


def test_the_fingerprint_changes_with_every_write_and_only_then(store: Store) -> None:
    first = store.fingerprint()
    assert store.fingerprint() == first
    store.write_documents([item("water.txt", WATER)])
    second = store.fingerprint()
    store.write_documents([])
    assert store.fingerprint() == second != first
    store.delete_document("water.txt")
    assert store.fingerprint() not in (first, second)


def test_sentences_must_cover_every_chunk(store: Store) -> None:
    items = [item("water.txt", WATER)]
    short = SentenceVectors(spans=((),), vectors={m: np.zeros((0, 64)) for m in MODELS})
    with pytest.raises(ValueError, match="sentence spans for 1 of 2 chunks"):
        store.write_documents(items, short)
