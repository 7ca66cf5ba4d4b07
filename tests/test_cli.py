"""The console script as a user runs it: a real subprocess, real models, real index."""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import CORPUS, SEED_SOURCE, free_port

pytestmark = pytest.mark.slow


def run(
    *args: str, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("policy-qa")
    return subprocess.run(
        [str(exe), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
        input=stdin,
    )


def test_version_from_the_script_and_from_python_m() -> None:
    want = f"policy-qa {importlib.metadata.version('policy-qa')}"
    script = run("--version")
    assert script.returncode == 0 and script.stdout.strip() == want
    module = subprocess.run(
        [sys.executable, "-m", "policy_qa", "--version"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert module.returncode == 0, module.stderr
    assert module.stdout.strip() == want


def test_ask_dash_reads_the_question_from_stdin(corpus_index: Path, tmp_path: Path) -> None:
    index = tmp_path / "idx"
    shutil.copytree(corpus_index, index)
    # Quotes, a newline and a leading dash: what a shell argument would mangle or misparse.
    piped = '-- How many businesses is each "cluster"\nmeant to attract?\n'
    asked = run("ask", "-", "--json", "--index-dir", str(index), stdin=piped)
    assert asked.returncode == 0, asked.stderr
    data = json.loads(asked.stdout)
    assert data["question"] == '-- How many businesses is each "cluster" meant to attract?'
    assert any("150 businesses" in c["quote"] for c in data["citations"])

    empty = run("ask", "-", "--index-dir", str(index), stdin="\n")
    assert empty.returncode == 1 and "Please type a question" in empty.stderr


def test_index_then_ask_json(tmp_path: Path) -> None:
    index = str(tmp_path / "idx")
    done = run("index", str(CORPUS), "--index-dir", index)
    assert done.returncode == 0, done.stderr
    assert "1 added" in done.stdout

    asked = run(
        "ask",
        "How many businesses is each cluster meant to attract?",
        "--json",
        env={"POLICY_QA_INDEX_DIR": index},
    )
    assert asked.returncode == 0, asked.stderr
    data = json.loads(asked.stdout)
    assert data["abstained"] is False
    assert any("150 businesses" in c["quote"] for c in data["citations"])
    assert data["citations"][0]["source"] == SEED_SOURCE

    plain = run("ask", "What is the capital of France?", "--index-dir", index)
    assert plain.returncode == 0
    assert "The indexed documents do not answer this." in plain.stdout
    assert "Closest passages" in plain.stdout

    docs = run("documents", "--index-dir", index)
    assert SEED_SOURCE in docs.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ask", "   "], "Please type a question"),
        (["ask", "x" * 100_000], "characters long"),
    ],
)
def test_errors_are_one_clean_line(tmp_path: Path, args: list[str], message: str) -> None:
    done = run(*args, "--index-dir", str(tmp_path / "idx"))
    assert done.returncode == 1
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_missing_index_and_missing_server(tmp_path: Path) -> None:
    missing = run("ask", "When?", "--index-dir", str(tmp_path / "none"))
    assert missing.returncode == 1
    assert "policy-qa index" in missing.stderr and "Traceback" not in missing.stderr

    url = f"http://127.0.0.1:{free_port()}"
    server = run("ask", "When?", "--chroma-url", url)
    assert server.returncode == 1
    assert "Cannot reach the Chroma server" in server.stderr
    assert "Traceback" not in server.stderr


def test_index_reports_skipped_files(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("Policy\n\nThe agency publishes a yearly report.\n")
    (folder / "b.bin").write_bytes(b"\x00\x01")
    done = run("index", str(folder), "--index-dir", str(tmp_path / "idx"), "-q")
    assert done.returncode == 0
    assert "skipped" in done.stderr and "b.bin" in done.stderr


def test_bad_files_are_skipped_in_one_line_each_and_output_is_terminal_safe(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "good.txt").write_text("Policy\n\nThe agency publishes a yearly report.\n")
    (folder / "hostile.txt").write_text(
        "Notice\n\nThe fund pays \u202e$100\u202c to each \x1b[31mcity\x1b[0m every year, "
        "and the council reviews the payments in spring.\n"
    )
    (folder / "hostile.txt.meta.json").write_text(json.dumps({"title": "Evil\x1b]0;pwned\x07"}))
    (folder / "loop.txt").symlink_to(folder / "loop.txt")
    (folder / os.fsdecode(b"caf\xe9.txt")).write_text("Named in Latin-1.")
    (folder / "random.txt").write_bytes(bytes(range(256)) * 40)
    index = str(tmp_path / "idx")

    done = run("index", str(folder), "--index-dir", index, "-q")
    assert done.returncode == 0, done.stderr
    assert "2 added" in done.stdout and "Traceback" not in done.stderr
    skipped = [line for line in done.stderr.splitlines() if line.startswith("  skipped ")]
    assert len(skipped) == 3
    assert any("loop.txt: it is a symbolic link loop" in line for line in skipped)
    assert any("caf\\xe9.txt: its name" in line for line in skipped)
    assert any("random.txt: it looks like binary data" in line for line in skipped)

    docs = run("documents", "--index-dir", index)
    assert docs.returncode == 0
    assert "\x1b" not in docs.stdout and "\u202e" not in docs.stdout
    assert "Evil]0;pwned" in docs.stdout  # the title was cleaned when it was indexed

    given = run("index", str(folder / "loop.txt"), "--index-dir", index, "-q")
    missing = run("index", str(tmp_path / "nowhere"), "--index-dir", index, "-q")
    for result in (given, missing):
        assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "symbolic link loop" in given.stderr and "file not found" in missing.stderr
