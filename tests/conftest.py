"""Shared fixtures: a real index of the bundled corpus, built once per test session."""

from __future__ import annotations

import os
import shutil
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


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The packaged models are joined into a session folder, never the user's cache folder.

    Set in the environment, so ``Settings()``, ``Settings.from_env()`` and the subprocesses the
    tests start all find it. The joined Qwen (1 GB) is removed at the end.
    """
    folder = tmp_path_factory.mktemp("model-cache")
    previous = os.environ.get("POLICY_QA_MODEL_CACHE_DIR")
    os.environ["POLICY_QA_MODEL_CACHE_DIR"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("POLICY_QA_MODEL_CACHE_DIR", None)
    else:
        os.environ["POLICY_QA_MODEL_CACHE_DIR"] = previous
    from policy_qa.supervisor import close_all

    close_all()  # workers map the model file: end them before it goes
    shutil.rmtree(folder, ignore_errors=True)


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
