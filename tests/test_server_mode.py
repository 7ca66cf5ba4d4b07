"""Server mode: a real ``chroma run`` on 127.0.0.1, shared by two assistants."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from policy_qa import Assistant, Settings, StoreUnavailableError
from policy_qa.chroma_store import ChromaStore

from .conftest import CORPUS, SEED_SOURCE, free_port
from .servers import chroma_server

pytestmark = [pytest.mark.slow, pytest.mark.server]


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with chroma_server(tmp_path_factory.mktemp("chroma-server")) as url:
        yield url


def test_index_and_ask_through_a_chroma_server(chroma_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    shutil.copy(CORPUS / SEED_SOURCE, folder / SEED_SOURCE)
    writer = Assistant(
        settings=Settings(data_dir=tmp_path / "a", chroma_url=chroma_url, judge="off")
    )
    report = writer.index([folder])
    assert report.added == (SEED_SOURCE,)
    assert not (tmp_path / "a" / "index").exists(), "server mode writes no local index"

    # A teammate on another data directory sees the same documents through the server.
    reader = Assistant(
        settings=Settings(data_dir=tmp_path / "b", chroma_url=chroma_url, judge="off")
    )
    assert [d.source for d in reader.documents()] == [SEED_SOURCE]
    answer = reader.ask("When was the Daedeok Research Complex established?")
    assert "1973" in answer.answer
    for c in answer.citations:
        assert reader.document_text(c.source)[c.start : c.end] == c.quote

    assert writer.index([folder]).unchanged == (SEED_SOURCE,)

    # Sentence vectors live on the server with their chunks, and go with them.
    server = ChromaStore(tmp_path / "unused", chroma_url, "policy_qa", reader.embeddings)
    assert all(server.sentence_count(m) > server.count() for m in ("minilm", "use"))
    before = server.fingerprint()
    assert writer.remove(SEED_SOURCE)
    assert [server.sentence_count(m) for m in ("minilm", "use")] == [0, 0]
    # Every client notices the change through one small read (the revision the writer left).
    assert server.fingerprint() != before


def test_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    qa = Assistant(settings=Settings(data_dir=tmp_path, chroma_url=url, judge="off"))
    with pytest.raises(StoreUnavailableError) as err:
        qa.ask("When was Daedeok established?")
    assert url in str(err.value) and "chroma run" in str(err.value)
