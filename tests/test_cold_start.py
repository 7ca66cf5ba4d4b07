"""A cold ``policy-qa ask`` imports only what answering needs (docs/decisions/103-cold-start.md).

Each check runs in a fresh interpreter and reads ``sys.modules`` at the end: the heavy
libraries below cost seconds to import, and none of them is needed to answer a question
extractively with the check off.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# torch + sentence-transformers (+ transformers, scikit-learn): ~4.7 s of CPU; langchain_chroma
# (and the LangChain runnables it brings): ~0.6 s; the others belong to other commands.
HEAVY = (
    "torch",
    "sentence_transformers",
    "transformers",
    "sklearn",
    "langchain_chroma",
    "langchain_core.runnables.base",
    "langchain_core.vectorstores",
    "gradio",
    "llama_cpp",
    "langchain_openai",
    "matplotlib",
)


def _loaded_after(code: str) -> tuple[list[str], str]:
    probe = (
        f"{code}\nimport sys, json\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "POLICY_QA_JUDGE": "off"},
    )
    assert done.returncode == 0, done.stderr
    *output, last = done.stdout.strip().splitlines()
    return json.loads(last), "\n".join(output)


def test_importing_policy_qa_loads_no_heavy_library() -> None:
    loaded, _ = _loaded_after("import policy_qa")
    assert loaded == []


@pytest.mark.slow
def test_ask_from_the_command_line_loads_no_library_it_does_not_need(
    corpus_index: Path, tmp_path: Path
) -> None:
    index = tmp_path / "idx"
    shutil.copytree(corpus_index, index)
    ask = ["ask", "When was Daedeok Research Complex established?", "--index-dir", str(index)]
    loaded, output = _loaded_after(f"from policy_qa.cli import main\nmain({ask!r})")
    assert "1973" in output  # answered, from the index
    assert loaded == []
