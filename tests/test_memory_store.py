"""InMemoryStore: an Assistant over it indexes, retrieves, answers and removes documents with
no database and no files; this is what fast unit tests build on."""

from __future__ import annotations

from pathlib import Path

import pytest

from policy_qa import Assistant, IndexNotFoundError, Settings
from policy_qa.memory_store import InMemoryStore

from .tiny import hash_models, write_corpus


def make(tmp_path: Path) -> tuple[Assistant, InMemoryStore]:
    store = InMemoryStore()
    settings = Settings(data_dir=tmp_path / "data", korean_tokenizer="bigram", judge="off")
    return Assistant(settings=settings, store=store, embeddings=hash_models()), store


def test_an_assistant_over_memory_indexes_and_answers_without_files(tmp_path: Path) -> None:
    write_corpus(tmp_path / "docs")
    qa, store = make(tmp_path)
    report = qa.index([tmp_path / "docs"])
    assert report.added == ("cluster.txt", "parks.md", "water.txt")
    assert report.chunks == store.count() > 0
    assert [d.source for d in qa.documents()] == ["cluster.txt", "parks.md", "water.txt"]
    passages = qa.retrieve("How many members does the Water Board have?", k=2)
    assert passages[0].chunk.source == "water.txt"
    answer = qa.ask("How many members does the board have?")
    for c in answer.citations:
        assert qa.document_text(c.source)[c.start : c.end] == c.quote
    assert not (tmp_path / "data").exists(), "an in-memory store writes no files"


def test_removal_and_close_keep_a_store_that_was_passed_in(tmp_path: Path) -> None:
    write_corpus(tmp_path / "docs")
    qa, store = make(tmp_path)
    qa.index([tmp_path / "docs"])
    assert qa.remove("parks.md") and not qa.remove("parks.md")
    assert all(p.chunk.source != "parks.md" for p in qa.retrieve("dogs on a lead", k=3))
    qa.close()
    assert [d.source for d in qa.documents()] == ["cluster.txt", "water.txt"]
    assert store.sentence_count("minilm") > 0


def test_an_empty_memory_store_says_how_to_index(tmp_path: Path) -> None:
    qa, _ = make(tmp_path)
    with pytest.raises(IndexNotFoundError, match=":memory: is empty"):
        qa.ask("Who chairs the board?")


def test_it_needs_a_model_name() -> None:
    with pytest.raises(ValueError, match="at least one dense model"):
        InMemoryStore(())
