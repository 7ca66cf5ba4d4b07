"""Shared fixtures: a real index of the bundled corpus, built once per test session."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from policy_qa.config import quiet_third_parties

# Tests are an entry point: keep libraries offline and quiet before anything loads a model.
quiet_third_parties()
# The answerability check reads ~200 tokens with Qwen (~2.5 s) for every borderline question;
# most tests are about other things. tests/test_judge.py and the regression gate turn it on.
os.environ.setdefault("POLICY_QA_JUDGE", "off")

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "corpus"
SEED_SOURCE = "daedeok-and-national-innovation-cluster.txt"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def corpus_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An index folder holding the bundled corpus (real models, real Chroma)."""
    from policy_qa import Assistant

    index_dir = tmp_path_factory.mktemp("corpus-index")
    qa = Assistant(index_dir=index_dir)
    qa.index([CORPUS])
    qa.close()
    return index_dir


@pytest.fixture(scope="session")
def qa(corpus_index: Path) -> Iterator[object]:
    """An ``Assistant`` over the bundled corpus, shared by read-only tests."""
    from policy_qa import Assistant

    assistant = Assistant(index_dir=corpus_index)
    yield assistant
    assistant.close()
