"""Two clients on one ``chroma run`` server: one indexes while the other asks, and the other's
BM25 cache follows the server by updates, not rebuilds (docs/decisions/102-when-to-move-beyond-
one-chroma-server.md; docs/decisions/080-crash-consistent-indexing.md)."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from policy_qa import Assistant, Settings
from policy_qa.chroma_store import ChromaStore
from policy_qa.indexing import index_paths
from policy_qa.lexical_cache import LexicalCache

from .servers import chroma_server
from .tiny import hash_models, write_corpus

pytestmark = [pytest.mark.slow, pytest.mark.server]

# Where a write can be cut, in order; at "records" the documents are complete already.
BEFORE_COMPLETE = ("pending", "vectors:minilm", "vectors:use", "sentences")


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with chroma_server(tmp_path_factory.mktemp("chroma-shared")) as url:
        yield url


class Pause:
    """A checkpoint that holds the writer at one boundary until the test lets it go."""

    def __init__(self, boundary: str) -> None:
        self.boundary = boundary
        self.reached = threading.Event()
        self.release = threading.Event()

    def __call__(self, boundary: str) -> None:
        if boundary == self.boundary:
            self.reached.set()
            assert self.release.wait(120), "the test never released the writer"


def change(folder: Path, round_: int) -> None:
    """A new version of water.txt and a new file: what the writer indexes while paused."""
    (folder / "water.txt").write_text(
        f"Water policy\n\nThe Water Board meets in Ulsan, round {round_}. Tariffs rise.\n",
        encoding="utf-8",
    )
    (folder / f"harbour{round_}.txt").write_text(
        f"Harbour rules\n\nFerries to Jeju leave the harbour at dawn, round {round_}.\n",
        encoding="utf-8",
    )


@pytest.mark.parametrize("boundary", BEFORE_COMPLETE)
def test_a_reader_never_sees_a_document_another_client_is_writing(
    chroma_url: str, tmp_path: Path, boundary: str
) -> None:
    collection = f"shared_{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "docs"
    write_corpus(folder)
    models = hash_models()
    pause = Pause(boundary)
    writer = ChromaStore(tmp_path / "unused", chroma_url, collection, models, checkpoint=pause)
    # The first version, written in full before the reader starts.
    pause.release.set()
    index_paths(writer, models, [folder], chunk_size=700, chunk_min=200)
    pause.release.clear()
    pause.reached.clear()
    reader = Assistant(
        settings=Settings(
            data_dir=tmp_path / "reader", chroma_url=chroma_url, collection=collection, judge="off"
        ),
        embeddings=hash_models(),
    )
    before = {d.source: d.chunks for d in reader.documents()}
    assert sorted(before) == ["cluster.txt", "parks.md", "water.txt"]

    change(folder, 1)
    thread = threading.Thread(
        target=index_paths,
        args=(writer, models, [folder]),
        kwargs={"chunk_size": 700, "chunk_min": 200},
    )
    thread.start()
    try:
        assert pause.reached.wait(120), f"the writer never reached {boundary}"
        # Paused mid-write: water.txt's new version and harbour1.txt are pending. The reader
        # sees neither, nor any chunk of them, through every read it has.
        documents = {d.source for d in reader.documents()}
        assert documents == {"cluster.txt", "parks.md"}
        for question in ("When does the Water Board meet in Ulsan?", "Ferries to Jeju harbour"):
            for passage in reader.retrieve(question, k=10):
                assert passage.chunk.source in documents
                text = reader.document_text(passage.chunk.source)
                assert text[passage.chunk.start : passage.chunk.end] == passage.chunk.text
    finally:
        pause.release.set()
        thread.join(120)
    assert {d.source for d in reader.documents()} == {
        "cluster.txt",
        "harbour1.txt",
        "parks.md",
        "water.txt",
    }
    hits = reader.retrieve("Ferries to Jeju harbour", k=3)
    reader.close()
    assert hits  # dense search sees the finished write at once; BM25 within its check interval


def test_a_clients_bm25_cache_follows_the_server_by_updates(
    chroma_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    collection = f"follow_{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "docs"
    write_corpus(folder)
    models = hash_models()
    writer = ChromaStore(tmp_path / "unused", chroma_url, collection, models)
    index_paths(writer, models, [folder], chunk_size=700, chunk_min=200)
    reader_store = ChromaStore(tmp_path / "unused", chroma_url, collection, models)
    cache = LexicalCache("bigram", tmp_path / "reader-bm25", stale_after=0.0)
    first = cache.get(reader_store)
    assert sorted(first.sources_under("")) == ["cluster.txt", "parks.md", "water.txt"]

    change(folder, 2)
    index_paths(writer, models, [folder], chunk_size=700, chunk_min=200)  # the other client
    with caplog.at_level(logging.INFO, logger="policy_qa.lexical"):
        assert cache.get(reader_store) is first  # noticed; updated in the background
        cache.wait(60)
        after = cache.get(reader_store)
    assert after.search("ferries jeju", 1)[0][0] in dict(reader_store.chunks_of(["harbour2.txt"]))
    assert set(after.ids) == reader_store.chunk_ids()
    # Only the changed and the new file's chunks were read and tokenized.
    logged = [r.getMessage() for r in caplog.records if "lexical index" in r.getMessage()]
    assert logged and logged[-1].startswith("lexical index updated:"), logged
    assert ", 2 tokenized, " in logged[-1], logged
