"""Indexing into a store: incremental by content hash, following the folder, every chunk's
sentences embedded once and stored beside it. Fast: an in-memory store and hashed vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from policy_qa.indexing import (
    EMBED_BATCH,
    Progress,
    embed_sentences,
    embedding_text,
    index_paths,
)
from policy_qa.ingest import split_sentences
from policy_qa.memory_store import InMemoryStore
from policy_qa.text import LATIN_RUN
from policy_qa.types import Chunk, IndexReport

from .tiny import HashEmbeddings, hash_models, write_corpus


def index(store: InMemoryStore, *paths: Path, progress: Progress | None = None) -> IndexReport:
    return index_paths(
        store, hash_models(), list(paths), chunk_size=700, chunk_min=200, progress=progress
    )


def test_indexing_again_changes_only_what_changed(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    write_corpus(folder)
    (folder / "data.xyz").write_text("unsupported", encoding="utf-8")
    store = InMemoryStore()
    first = index(store, folder)
    assert first.added == ("cluster.txt", "parks.md", "water.txt")
    assert first.chunks == store.count() > 0
    assert [Path(s.path).name for s in first.skipped] == ["data.xyz"]
    meta = store.document_meta()["water.txt"]
    assert meta["root"] == str(folder.resolve()) and meta["chunks"] > 0
    fingerprint = store.fingerprint()

    again = index(store, folder)
    assert again.unchanged == ("cluster.txt", "parks.md", "water.txt") and again.chunks == 0
    assert store.fingerprint() == fingerprint, "nothing was written"

    (folder / "parks.md").write_text("# Parks\n\nParks now open at seven.\n", encoding="utf-8")
    (folder / "water.txt").unlink()
    changed = index(store, folder)
    assert changed.updated == ("parks.md",) and changed.removed == ("water.txt",)
    assert [d.source for d in store.documents()] == ["cluster.txt", "parks.md"]
    assert "seven" in (store.document_text("parks.md") or "")


def test_a_file_indexed_alone_is_not_removed_by_indexing_its_folder_elsewhere(
    tmp_path: Path,
) -> None:
    write_corpus(tmp_path / "a")
    write_corpus(tmp_path / "b")
    store = InMemoryStore()
    index(store, tmp_path / "a" / "water.txt")
    assert store.document_meta()["water.txt"]["root"] == str((tmp_path / "a").resolve())
    (tmp_path / "b" / "water.txt").unlink()
    report = index(store, tmp_path / "b")
    assert report.added == ("cluster.txt", "parks.md") and report.removed == ()


def test_every_chunk_has_its_sentences_stored(tmp_path: Path) -> None:
    # MiniLM's sentence vectors are kept for English chunks only (decision 100): a Korean
    # chunk's are embedded if an English question ever reranks it.
    write_corpus(tmp_path / "docs")
    store = InMemoryStore()
    index(store, tmp_path / "docs")
    chunks = dict(store.iter_chunks())
    assert {c.language for c in chunks.values()} == {"en", "ko"}
    for model in ("minilm", "use"):
        stored = store.sentence_vectors(
            model, {cid: len(split_sentences(c.text)) for cid, c in chunks.items()}
        )
        assert {cid: [(s, e) for s, e, _ in rows] for cid, rows in stored.items()} == {
            cid: split_sentences(c.text)
            for cid, c in chunks.items()
            if model == "use" or c.language == "en"
        }


def test_progress_names_the_stage_and_the_file(tmp_path: Path) -> None:
    write_corpus(tmp_path / "docs")
    seen: list[tuple[int, int, str]] = []
    index(InMemoryStore(), tmp_path / "docs", progress=lambda d, t, n: seen.append((d, t, n)))
    assert any(name.startswith("reading ") for _, _, name in seen)
    embedding = [(d, t) for d, t, name in seen if name.startswith("embedding ")]
    assert embedding and embedding[-1][0] == embedding[-1][1]


def test_many_small_files_are_written_in_batches(tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(EMBED_BATCH + 5):
        (folder / f"f{i:03}.txt").write_text(f"Note {i}\n\nRule number {i} applies.\n")
    seen: list[tuple[int, str]] = []
    store = InMemoryStore()
    report = index(store, folder, progress=lambda d, t, n: seen.append((d, n)))
    written = [d for d, n in seen if n.startswith("embedding ")]
    assert len(report.added) == EMBED_BATCH + 5 == store.count()
    assert len(written) == 2 and written[-1] == store.count()


def test_repeated_sentences_are_embedded_once() -> None:
    models = {"use": HashEmbeddings()}
    chunks = [
        Chunk("a.txt", "T", "", 0, 30, "Contact us. The board meets."),
        Chunk("b.txt", "T", "", 0, 30, "Contact us. Parks open."),
    ]
    got = embed_sentences(models, chunks)
    assert got.spans == tuple(tuple(split_sentences(c.text)) for c in chunks)
    assert got.vectors["use"].shape == (4, 64)
    assert sorted(models["use"].seen) == ["Contact us.", "Parks open.", "The board meets."]
    assert np.allclose(got.vectors["use"][0], got.vectors["use"][2])


def test_the_heading_is_embedded_when_the_text_does_not_repeat_it() -> None:
    chunk = Chunk("a.txt", "T", "Regional Innovation Council", 0, 9, "It will have 20 members.")
    assert embedding_text(chunk) == "Regional Innovation Council\nIt will have 20 members."
    repeated = Chunk("a.txt", "T", "Parks", 0, 9, "Parks open at six.")
    assert embedding_text(repeated) == "Parks open at six."
    assert embedding_text(Chunk("a.txt", "T", "", 0, 4, "Text")) == "Text"


def test_a_large_document_is_embedded_in_slices_with_progress(tmp_path: Path) -> None:
    """Issue 24: one large file showed no progress until all of it was embedded."""
    folder = tmp_path / "big"
    folder.mkdir()
    paragraphs = [
        f"Rule {i} says that district {i} reviews its budget in month {i % 12 + 1}."
        for i in range(1500)
    ]
    (folder / "big.txt").write_text("Rules\n\n" + "\n\n".join(paragraphs) + "\n")
    seen: list[tuple[int, int]] = []
    store = InMemoryStore()
    report = index(
        store,
        folder,
        progress=lambda d, t, n: seen.append((d, t)) if n == "embedding big.txt" else None,
    )
    assert report.added == ("big.txt",) and report.chunks > 2 * EMBED_BATCH
    assert [d for d, _ in seen] == [
        *range(EMBED_BATCH, report.chunks, EMBED_BATCH),
        report.chunks,
    ]
    assert store.count() == report.chunks
    chunks = dict(store.iter_chunks())
    every = store.sentence_vectors(
        "minilm", {cid: len(split_sentences(c.text)) for cid, c in chunks.items()}
    )
    assert {cid: len(rows) for cid, rows in every.items()} == {
        cid: len(split_sentences(c.text)) for cid, c in chunks.items()
    }


SIZES = {"chunk_size": 700, "chunk_min": 200}


class _Twinned(HashEmbeddings):
    """Hashed vectors with a twin, as MiniLM has: what each instance embedded, and on which
    thread, shows how indexing split the work."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.threads: set[str] = set()
        self.fail = fail
        self._twin: _Twinned | None = None

    def twin(self) -> _Twinned:
        if self._twin is None:
            self._twin = _Twinned(self.fail)
        return self._twin

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        import threading

        if self.fail and texts:
            raise RuntimeError("lane failed")
        self.threads.add(threading.current_thread().name)
        return super().embed_documents(texts)


def test_a_model_with_a_twin_embeds_its_two_passes_beside_each_other(tmp_path: Path) -> None:
    # A model's sentence pass runs on its twin beside its chunk pass (decision 100).
    write_corpus(tmp_path / "docs")
    minilm = _Twinned()
    store = InMemoryStore()
    index_paths(store, {"minilm": minilm, "use": HashEmbeddings()}, [tmp_path / "docs"], **SIZES)
    plain = InMemoryStore()
    index_paths(plain, hash_models(), [tmp_path / "docs"], **SIZES)
    chunks = dict(store.iter_chunks())
    assert chunks == dict(plain.iter_chunks())
    english = [embedding_text(c) for c in chunks.values() if c.language == "en"]
    sentences = {
        c.text[s:e]
        for c in chunks.values()
        if c.language == "en"
        for s, e in split_sentences(c.text)
    }
    twin = minilm.twin()
    assert set(english) <= set(minilm.seen) and sentences <= set(twin.seen)
    assert not sentences & set(minilm.seen) - set(english)  # the model embedded no sentence
    assert twin is not minilm and minilm.threads and twin.threads  # two jobs, two instances
    for model in ("minilm", "use"):
        want = {cid: len(split_sentences(c.text)) for cid, c in chunks.items()}
        got, expected = store.sentence_vectors(model, want), plain.sentence_vectors(model, want)
        assert got.keys() == expected.keys()
        for cid, rows in got.items():
            assert [(s, e) for s, e, _ in rows] == [(s, e) for s, e, _ in expected[cid]]
            assert all(np.allclose(a[2], b[2]) for a, b in zip(rows, expected[cid], strict=True))


def test_minilm_embeds_only_the_latin_runs_of_a_korean_chunk(tmp_path: Path) -> None:
    # MiniLM, an English model, reads of Korean text only its Latin and digit runs: those are
    # what it embeds of a Korean chunk, in one job on the model (no sentences to embed, so no
    # twin), and every chunk still has a vector in every model (decision 100, sixth session).
    folder = tmp_path / "ko"
    folder.mkdir()
    for i in range(6):
        (folder / f"k{i}.txt").write_text(
            f"대덕연구단지 {i}번 문서입니다. KAIST와 ETRI가 1973년에 모였습니다.\n\n" * 3,
            encoding="utf-8",
        )
    (folder / "none.txt").write_text("한글만 있는 문서입니다. 숫자도 없습니다.\n", encoding="utf-8")
    minilm, use = _Twinned(), HashEmbeddings()
    store = InMemoryStore()
    report = index_paths(store, {"minilm": minilm, "use": use}, [folder], **SIZES)
    chunks = dict(store.iter_chunks())
    assert {c.language for c in chunks.values()} == {"ko"} and report.chunks == len(chunks)
    assert sorted(minilm.seen) == sorted(
        " ".join(LATIN_RUN.findall(embedding_text(c))) for c in chunks.values()
    )
    assert "" in minilm.seen and any("KAIST ETRI 1973" in t for t in minilm.seen)
    assert not minilm.twin().seen, "no sentence pass, so no twin"
    assert sorted(use.seen[: len(chunks)]) == sorted(embedding_text(c) for c in chunks.values())
    for model in ("minilm", "use"):
        found = store.search(model, np.ones(64, dtype=np.float32).tolist(), k=100)
        assert {cid for cid, _, _ in found} == set(chunks), model


def test_what_each_model_embeds_of_a_chunk() -> None:
    korean = Chunk(
        "k.txt", "T", "", 0, 40, "대덕연구단지는 1973년에 KAIST와 (DNA-2, 3.5%) 설립", language="ko"
    )
    assert embedding_text(korean) == embedding_text(korean, "use") == korean.text
    assert embedding_text(korean, "minilm") == "1973 KAIST (DNA-2, 3.5%)"
    hangul_only = Chunk("k.txt", "T", "", 0, 9, "한글만 있는 글.", language="ko")
    assert embedding_text(hangul_only, "minilm") == ""
    english = Chunk("a.txt", "T", "Council", 0, 30, "It has 20 members, 대덕 says.")
    assert (
        embedding_text(english, "minilm")
        == embedding_text(english)
        == ("Council\nIt has 20 members, 대덕 says.")
    )


def test_an_error_in_one_lane_stops_indexing(tmp_path: Path) -> None:
    import pytest

    write_corpus(tmp_path / "docs")
    with pytest.raises(RuntimeError, match="lane failed"):
        index_paths(
            InMemoryStore(),
            {"minilm": _Twinned(fail=True), "use": HashEmbeddings()},
            [tmp_path / "docs"],
            **SIZES,
        )
