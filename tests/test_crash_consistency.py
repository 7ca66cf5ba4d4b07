"""Crash-consistent indexing (issue 24.1, docs/decisions/080-crash-consistent-indexing.md).

A write cut short at any boundary leaves no chunk that reads return, ``purge_incomplete``
removes what it left, and indexing again converges to exactly the clean index.

- Fast: every boundary on both stores, the write cut by an exception from the checkpoint.
- Slow: the real indexer (``policy-qa index``) paused at each boundary by the test-only hook
  and killed with SIGKILL; a second process asks while it is paused; then indexing again must
  give the clean index's chunk ids, documents and BM25 ids.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from policy_qa import Assistant, Settings
from policy_qa.chroma_store import ChromaStore
from policy_qa.errors import ConfigError
from policy_qa.faults import checkpoint_for
from policy_qa.indexing import index_paths
from policy_qa.lexical_cache import LexicalCache
from policy_qa.memory_store import InMemoryStore
from policy_qa.store import Store
from policy_qa.types import Chunk, Document

from .conftest import CORPUS
from .tiny import document, hash_models, store_item, write_corpus

MODELS = ("minilm", "use")
STORE_BOUNDARIES = ("pending", "vectors:minilm", "vectors:use", "sentences", "records", "revision")
WATER = ["The Water Board meets in Busan.", "The board has nine members."]
WATER_2 = ["The Water Board meets in Ulsan now.", "The board has eleven members."]
PARKS = ["City parks open at six.", "Dogs must be kept on a lead."]
HARBOUR = ["Ferries to Jeju leave the harbour at dawn."]


class Cut(Exception):
    """The write was cut short here (what a kill does, minus the process)."""


class Cutter:
    """A checkpoint that raises ``Cut`` at ``at`` (None: never), after calling ``during``
    (another process's work while the writer is paused there) if it is set."""

    def __init__(self) -> None:
        self.at: str | None = None
        self.during: Callable[[], object] | None = None

    def __call__(self, boundary: str) -> None:
        if boundary == self.at:
            if self.during is not None:
                self.during()
            raise Cut(boundary)


def cold_lexical(store: Store, folder: Path) -> tuple[list[str], bool]:
    """The ids of the BM25 index a new process gets from ``folder``, and whether it had to
    build and save it again (the saved one was not the store's)."""
    before = (folder / "meta.json").stat().st_ino
    index = LexicalCache("bigram", folder).get(store)
    return sorted(index.ids), (folder / "meta.json").stat().st_ino != before  # saved anew


@pytest.fixture(params=["memory", "chroma"])
def cut_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, Cutter]]:
    cutter = Cutter()
    if request.param == "memory":
        yield InMemoryStore(MODELS, checkpoint=cutter), cutter
    else:
        yield ChromaStore(tmp_path / "idx", None, "policy_qa", MODELS, True, cutter), cutter


def snapshot(store: Store) -> dict[str, Any]:
    """What must be equal between a recovered and a clean store."""
    return {
        "documents": {d.source: d.chunks for d in store.documents()},
        "hashes": {s: m["hash"] for s, m in store.document_meta().items()},
        "chunks": sorted(store.chunk_ids()),
        "iter": sorted(cid for cid, _ in store.iter_chunks()),
        "count": store.count(),
    }


@pytest.mark.parametrize("boundary", STORE_BOUNDARIES)
def test_a_write_cut_short_is_never_read_and_is_purged(
    cut_store: tuple[Store, Cutter], boundary: str
) -> None:
    store, cutter = cut_store
    store.write_documents([store_item("water.txt", WATER), store_item("parks.md", PARKS)])
    before = store.fingerprint()
    cutter.at = boundary
    with pytest.raises(Cut):
        store.write_documents(
            [store_item("water.txt", WATER_2), store_item("harbour.txt", HARBOUR)]
        )
    cutter.at = None
    finished = boundary in ("records", "revision")
    listed = {d.source for d in store.documents()}
    assert listed == ({"harbour.txt", "parks.md", "water.txt"} if finished else {"parks.md"})
    assert store.fingerprint() != before, "the revision mark moves before any chunk is written"
    # No read returns a chunk of a document that is not complete.
    vector = np.asarray(hash_models("minilm")["minilm"].embed_query("harbour water board"))
    for model in MODELS:
        assert {c.source for _, c, _ in store.search(model, vector.tolist(), 10)} <= listed
    assert {c.source for _, c in store.iter_chunks()} == listed
    every = sorted(store.chunk_ids())
    assert {c.source for c in store.get_chunks(every).values()} == listed
    assert store.document_text("harbour.txt") == (HARBOUR[0] if finished else None)

    purged = store.purge_incomplete()
    assert purged == ([] if finished else ["harbour.txt", "water.txt"])
    assert store.count() == sum(d.chunks for d in store.documents())
    store.write_documents([store_item("water.txt", WATER_2), store_item("harbour.txt", HARBOUR)])
    clean = InMemoryStore(MODELS)
    clean.write_documents([store_item("parks.md", PARKS)])
    clean.write_documents([store_item("water.txt", WATER_2), store_item("harbour.txt", HARBOUR)])
    assert snapshot(store) == snapshot(clean)


def test_remove_takes_the_chunks_a_cut_write_left(cut_store: tuple[Store, Cutter]) -> None:
    store, cutter = cut_store
    store.write_documents([store_item("parks.md", PARKS)])
    cutter.at = "sentences"
    with pytest.raises(Cut):
        store.write_documents([store_item("harbour.txt", HARBOUR)])
    cutter.at = None
    assert "harbour.txt" not in store.document_meta()
    assert store.delete_document("harbour.txt") == 1
    assert store.count() == 2 and store.delete_document("harbour.txt") == 0


def test_assistant_remove_and_index_clean_up_after_a_cut_write(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    write_corpus(folder)
    cutter = Cutter()
    store = InMemoryStore(MODELS, checkpoint=cutter)
    qa = Assistant(settings=Settings(judge="off"), store=store, embeddings=hash_models(*MODELS))
    qa.index([folder])
    (folder / "harbour.txt").write_text("Harbour\n\n" + HARBOUR[0] + "\n", encoding="utf-8")
    cutter.at = "vectors:use"
    with pytest.raises(Cut):
        qa.index([folder])
    cutter.at = None
    assert qa.remove("harbour.txt"), "chunks with no complete record are still removable"
    assert "harbour.txt" not in {c.source for _, c in store.iter_chunks()}

    # Cut again, then delete the file before indexing again: its ghosts must go for good.
    cutter.at = "pending"
    with pytest.raises(Cut):
        qa.index([folder])
    cutter.at = None
    (folder / "harbour.txt").unlink()
    again = qa.index([folder])
    assert again.added == () and again.unchanged == ("cluster.txt", "parks.md", "water.txt")
    assert store.count() == sum(d.chunks for d in store.documents())
    assert store.purge_incomplete() == [] and "harbour.txt" not in store.document_meta()


def test_the_lexical_cache_checks_chunk_ids_not_only_the_revision(tmp_path: Path) -> None:
    store = InMemoryStore(MODELS)
    store.write_documents([store_item("water.txt", WATER), store_item("parks.md", PARKS)])
    folder = tmp_path / "lexical"
    saved = LexicalCache("bigram", folder).get(store)
    assert len(saved) == 4
    # A save that went missing (a writer killed before it) under an unchanged revision mark:
    # the saved index is stale though its fingerprint matches.
    store.write_documents([store_item("harbour.txt", HARBOUR)])
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    meta["fingerprint"] = store.fingerprint()
    (folder / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    loaded = LexicalCache("bigram", folder).get(store)
    assert sorted(loaded.ids) == sorted(store.chunk_ids())

    # The count is compared at every check too, so a change that left the mark alone is seen.
    cache = LexicalCache("bigram", None, stale_after=0.0)
    first = cache.get(store)
    store._chunks.pop(next(iter(store._chunks)))  # a chunk gone behind the mark's back
    assert cache.get(store, force_check=True) is not first


@pytest.mark.parametrize("boundary", (*STORE_BOUNDARIES, "bm25"))
def test_every_cut_write_ends_with_the_exact_lexical_index(
    cut_store: tuple[Store, Cutter], tmp_path: Path, boundary: str
) -> None:
    """A write cut at any boundary, while another process builds and saves the BM25 index in
    the middle of it (what left 10 of 40 chunks once): a new process's index holds exactly
    the complete documents' chunks; after purging and writing again, exactly the clean
    index's, loaded as it was saved."""
    store, cutter = cut_store
    folder = tmp_path / "lexical"
    store.write_documents([store_item("water.txt", WATER), store_item("parks.md", PARKS)])
    LexicalCache("bigram", folder).get(store)
    writer = LexicalCache("bigram", folder, checkpoint=cutter)
    cutter.at = boundary
    if boundary != "bm25":  # there the writer holds the BM25 folder a reader would save into
        cutter.during = lambda: LexicalCache("bigram", folder).get(store)
    with pytest.raises(Cut):
        store.write_documents(
            [store_item("water.txt", WATER_2), store_item("harbour.txt", HARBOUR)]
        )
        writer.rebuild(store)
    cutter.at = cutter.during = None
    ids, rebuilt = cold_lexical(store, folder)
    assert ids == sorted(cid for cid, _ in store.iter_chunks())
    # Unfinished, the store holds chunks of pending documents (until the next purge) and the
    # saved index never does; at "bm25" the writer's save was cut short.
    assert rebuilt == (boundary not in ("records", "revision"))

    store.purge_incomplete()
    store.write_documents([store_item("water.txt", WATER_2), store_item("harbour.txt", HARBOUR)])
    LexicalCache("bigram", folder).rebuild(store)  # what `policy-qa index` does after writing
    clean = InMemoryStore(MODELS)
    clean.write_documents([store_item("parks.md", PARKS)])
    clean.write_documents([store_item("water.txt", WATER_2), store_item("harbour.txt", HARBOUR)])
    assert cold_lexical(store, folder) == (sorted(clean.chunk_ids()), False)


def rechunked(source: str, paragraphs: list[str]) -> tuple[Document, list[Chunk]]:
    """The document ``tiny.document`` makes, chunked elsewhere: as many chunks, other ids."""
    doc, chunks = document(source, paragraphs)
    first, second = chunks
    cut = first.end - 6  # the first chunk's last word moves to the second
    return doc, [
        Chunk(source, source, "S", first.start, cut, doc.text[first.start : cut]),
        Chunk(source, source, "S", cut, second.end, doc.text[cut : second.end]),
    ]


def test_a_document_indexed_again_with_other_chunks_is_repaired_though_its_hash_is_the_same(
    cut_store: tuple[Store, Cutter], tmp_path: Path
) -> None:
    """What the content hash cannot tell: removed (its BM25 save cut short), then indexed again
    with other chunking settings, a document keeps its hash and its chunk count but has other
    chunk ids. The update from the old saved index kept the old rows; the id check saw it and
    rebuilt by the same update, to the same rows, at every start. Now the rows the store no
    longer holds mark their document as changed. A ghost in place of one chunk likewise."""
    store, _ = cut_store
    folder = tmp_path / "lexical"
    store.write_documents([store_item("water.txt", WATER), store_item("parks.md", PARKS)])
    LexicalCache("bigram", folder).get(store)
    old_ids = {cid for cid, c in store.iter_chunks() if c.source == "water.txt"}
    store.delete_document("water.txt")  # `remove`, killed before its BM25 index was saved
    doc, chunks = rechunked("water.txt", WATER)
    assert doc.content_hash == store_item("water.txt", WATER)[0].content_hash
    assert {c.id for c in chunks}.isdisjoint(old_ids) and len(chunks) == len(old_ids)
    store.write_documents([(doc, chunks, store_item("water.txt", WATER)[2], "/data")])
    # The writer's own update, from the old saved index, reads the document again: its
    # index in memory (what a server that indexed answers from) and the saved one are right.
    writer = LexicalCache("bigram", folder)
    assert sorted(writer.rebuild(store).ids) == sorted(store.chunk_ids())
    assert cold_lexical(store, folder) == (sorted(store.chunk_ids()), False)

    # A ghost in place of one chunk: the same sources, hashes and count, one id not stored.
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    meta["ids"][meta["sources"].index("water.txt")] = "0" * 32
    (folder / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    assert cold_lexical(store, folder) == (sorted(store.chunk_ids()), True)
    assert cold_lexical(store, folder) == (sorted(store.chunk_ids()), False)


def test_the_fault_hook_is_off_unless_set_and_refuses_unknown_boundaries() -> None:
    assert Settings().fault_pause_at is None
    assert checkpoint_for(None, MODELS) is None
    assert checkpoint_for("vectors:use", MODELS) is not None
    with pytest.raises(ConfigError, match="vectors:minilm"):
        checkpoint_for("vectors:bogus", MODELS)


def test_indexing_into_a_folder_store_converges_after_a_cut(tmp_path: Path) -> None:
    """The same on real Chroma through ``index_paths``: ids of every collection."""
    folder = tmp_path / "docs"
    write_corpus(folder)
    cutter = Cutter()
    models = hash_models(*MODELS)
    cut = ChromaStore(tmp_path / "cut", None, "policy_qa", MODELS, True, cutter)
    clean = ChromaStore(tmp_path / "clean", None, "policy_qa", MODELS, True)
    for store in (cut, clean):
        index_paths(store, models, [folder], chunk_size=700, chunk_min=200)
    (folder / "water.txt").write_text("Water\n\n" + WATER_2[0] + "\n", encoding="utf-8")
    cutter.at = "vectors:minilm"
    with pytest.raises(Cut):
        index_paths(cut, models, [folder], chunk_size=700, chunk_min=200)
    cutter.at = None
    assert cut.purge_incomplete() == ["water.txt"]
    for store in (cut, clean):
        index_paths(store, models, [folder], chunk_size=700, chunk_min=200)
    assert cut.stored_ids() == clean.stored_ids()


# --- the real indexer, killed -----------------------------------------------------------------

KILL_BOUNDARIES = (*STORE_BOUNDARIES, "bm25")
HARBOUR_QUESTION = "When do the ferries to Jeju leave the harbour?"
WATER_QUESTION = "How many members does the Water Board have?"


def settings_for(index_dir: Path, data_dir: Path) -> Settings:
    return Settings(index_dir=index_dir, data_dir=data_dir, judge="off")


def index_state(index_dir: Path) -> dict[str, Any]:
    """Everything re-indexing must reproduce: every collection's ids, the documents, and the
    saved BM25 index (its ids, and that it belongs to the store's current revision)."""
    store = ChromaStore(index_dir, None, "policy_qa", MODELS)
    meta = json.loads((index_dir / "lexical" / "policy_qa" / "meta.json").read_text("utf-8"))
    return {
        "ids": store.stored_ids(),
        "documents": {s: (m["hash"], m["chunks"]) for s, m in store.document_meta().items()},
        "bm25": sorted(meta["ids"]),
        "bm25 current": meta["fingerprint"] == LexicalCache("kiwi", None).get(store).fingerprint,
    }


def assert_cites_only_complete_documents(qa: Assistant) -> None:
    listed = {d.source for d in qa.documents()}
    for question in (HARBOUR_QUESTION, WATER_QUESTION):
        answer = qa.ask(question)
        assert {c.source for c in answer.citations} <= listed
        assert {p.chunk.source for p in answer.passages} <= listed


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory, qa: Any) -> dict[str, Any]:
    """The folder after its change, the index of it before (to copy), and the clean result."""
    work = tmp_path_factory.mktemp("crash")
    folder = work / "docs"
    write_corpus(folder)
    shutil.copy(CORPUS / "daedeok-and-national-innovation-cluster.txt", folder)
    base = work / "base"
    Assistant(settings=settings_for(base, work / "data"), embeddings=qa.embeddings).index([folder])
    # The change the killed indexer is writing: one file updated, one added, one deleted.
    (folder / "water.txt").write_text(
        "Water policy\n\nThe Water Board meets every first Monday in Ulsan. The board has "
        "eleven members, and each serves two years.\n",
        encoding="utf-8",
    )
    (folder / "harbour.txt").write_text(
        "Harbour rules\n\nFerries to Jeju leave the harbour at dawn every day, and the last one "
        "returns at nine in the evening.\n",
        encoding="utf-8",
    )
    (folder / "parks.md").unlink()
    clean = work / "clean"
    shutil.copytree(base, clean)
    report = Assistant(settings=settings_for(clean, work / "data"), embeddings=qa.embeddings).index(
        [folder]
    )
    assert report.added == ("harbour.txt",) and report.removed == ("parks.md",)
    return {"work": work, "folder": folder, "base": base, "clean": index_state(clean)}


def paused_indexer(folder: Path, index_dir: Path, boundary: str) -> subprocess.Popen[str]:
    """``policy-qa index`` paused at ``boundary`` (returns once it says so)."""
    exe = Path(sys.executable).with_name("policy-qa")
    env = {**os.environ, "POLICY_QA_FAULT_PAUSE_AT": boundary, "POLICY_QA_JUDGE": "off"}
    proc = subprocess.Popen(
        [str(exe), "index", str(folder), "--index-dir", str(index_dir), "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:  # ends when the process does: then it never paused
        lines.append(line)
        if line.startswith(f"policy-qa: paused at {boundary}"):
            return proc
    proc.wait()
    raise AssertionError(f"the indexer never paused at {boundary}: {''.join(lines)[-2000:]}")


@pytest.mark.slow
@pytest.mark.parametrize("boundary", KILL_BOUNDARIES)
def test_an_indexer_killed_at_any_boundary_converges_to_the_clean_index(
    bench: dict[str, Any], qa: Any, boundary: str
) -> None:
    work: Path = bench["work"]
    index_dir = work / f"idx-{boundary.replace(':', '-')}"
    shutil.copytree(bench["base"], index_dir)
    proc = paused_indexer(bench["folder"], index_dir, boundary)
    try:
        if boundary != "bm25":  # at "bm25" the writer holds the BM25 folder a reader would save
            # Another process asks while the write is half done: it must not see it.
            reader = Assistant(
                settings=settings_for(index_dir, work / "reader"), embeddings=qa.embeddings
            )
            assert_cites_only_complete_documents(reader)
            reader.close()
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL

    after = Assistant(settings=settings_for(index_dir, work / "after"), embeddings=qa.embeddings)
    assert_cites_only_complete_documents(after)
    after.index([bench["folder"]])
    after.close()
    assert index_state(index_dir) == bench["clean"]
