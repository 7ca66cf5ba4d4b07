"""``policy-qa doctor`` and the start-up model check: real models, a real worker, real index."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from policy_qa import Settings
from policy_qa.doctor import FAIL, OFF, OK, Check, ModelCheck, passed, run_checks, summary
from policy_qa.judge import judge_available
from policy_qa.ui import ChatUI

from .conftest import free_port
from .servers import page_once_said

pytestmark = pytest.mark.slow

needs_judge = pytest.mark.skipif(
    not judge_available(), reason="needs policy-qa[llm] (llama-cpp-python and the Qwen parts)"
)


def _by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


@needs_judge
@pytest.mark.llm
def test_every_configured_model_is_loaded_and_used_once(corpus_index: Path) -> None:
    settings = Settings.from_env(index_dir=corpus_index, judge="auto")
    checks = _by_name(run_checks(settings))
    assert passed(list(checks.values()))
    assert (
        checks["embeddings minilm"].status == OK and "384-d" in checks["embeddings minilm"].detail
    )
    assert checks["embeddings use"].status == OK and "512-d" in checks["embeddings use"].detail
    assert checks["index"].status == OK and "1 documents" in checks["index"].detail
    assert checks["llama-cpp-python"].status == OK
    qwen = checks["Qwen model"]
    assert qwen.status == OK and str(settings.model_cache) in qwen.detail
    build = checks["llama.cpp build"]
    assert build.status == OK and "AVX2" in build.detail
    probe = checks["answerability check"]
    assert probe.status == OK and "P(yes)=" in probe.detail and "worker pid" in probe.detail
    assert summary(list(checks.values())) is None  # nothing for the page to say


def test_an_unreachable_chroma_server_fails_with_its_fix(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, chroma_url=f"http://127.0.0.1:{free_port()}", judge="off"
    )
    checks = run_checks(settings)
    index = _by_name(checks)["index"]
    assert index.status == FAIL and index.fix
    assert not passed(checks)
    off = _by_name(checks)["answerability check"]
    assert off.status == OFF and not off.required
    assert "fix: POLICY_QA_JUDGE=auto" in off.line()


def test_an_empty_index_is_no_failure(tmp_path: Path) -> None:
    checks = run_checks(Settings(index_dir=tmp_path / "none", judge="off"))
    index = _by_name(checks)["index"]
    assert index.status == OFF and "nothing indexed yet" in index.detail
    assert passed(checks)


def test_the_page_says_when_the_check_is_off(qa: object) -> None:
    check = ModelCheck(Settings(judge="off")).start()
    assert check.wait(60) is not None and check.settled
    kind, message = check.page_status() or ("", "")
    assert kind == "info" and message.startswith("The answerability check is off")
    assert "evidence scores alone" in message
    line, timer = ChatUI(qa, check).check_line()  # type: ignore[arg-type]
    assert "The answerability check is off" in line and 'class="pqa-status pqa-info"' in line
    assert timer.active is False  # settled: the page stops asking
    assert ChatUI(qa).check_line()[0] == ""  # no check, no line


@needs_judge
@pytest.mark.llm
def test_the_page_says_when_the_check_is_broken(qa: object) -> None:
    # A worker that cannot answer within the timeout is broken for the page's purposes.
    settings = Settings.from_env(judge="on", judge_timeout=0.001)
    reported: list[list[Check]] = []
    check = ModelCheck(settings, on_done=reported.append)
    assert check.page_status() == (
        "info",
        "Starting the answerability check (loading the local model)…",
    )
    check.start().wait(300)
    assert reported and reported[0] == check.checks
    kind, message = check.page_status() or ("", "")
    assert kind == "error"
    assert message.startswith("The answerability check is unavailable: the model worker")
    assert message.endswith("Borderline questions are decided on evidence scores alone.")
    line, _ = ChatUI(qa, check).check_line()  # type: ignore[arg-type]
    assert 'role="alert"' in line


@needs_judge
@pytest.mark.llm
def test_policy_qa_doctor_prints_one_line_per_check(corpus_index: Path) -> None:
    exe = Path(sys.executable).with_name("policy-qa")
    env = {**os.environ, "POLICY_QA_INDEX_DIR": str(corpus_index), "POLICY_QA_JUDGE": "auto"}
    done = subprocess.run(
        [str(exe), "doctor"], capture_output=True, text=True, timeout=600, env=env
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    for name in ("embeddings minilm", "embeddings use", "index", "Qwen model"):
        assert any(line.startswith("ok") and name in line for line in lines), done.stdout
    assert any(line.startswith("ok") and "answerability check" in line for line in lines)
    assert lines[-1] == "All required checks passed."
    broken = subprocess.run(
        [str(exe), "doctor", "--chroma-url", f"http://127.0.0.1:{free_port()}"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**env, "POLICY_QA_JUDGE": "off"},
    )
    assert broken.returncode == 1
    assert any(line.startswith("FAIL  index") for line in broken.stdout.splitlines())
    assert "fix:" in broken.stdout


@pytest.mark.server
@pytest.mark.parametrize(
    ("judge", "said"),
    [
        ("off", "Answerability check: off: the judge setting is off. Borderline questions"),
        ("auto", "Answerability check: on: P(yes)="),
    ],
)
def test_policy_qa_serve_says_how_the_check_started(
    corpus_index: Path, tmp_path: Path, judge: str, said: str
) -> None:
    if judge == "auto" and not judge_available():
        pytest.skip("needs policy-qa[llm]")
    exe = Path(sys.executable).with_name("policy-qa")
    port = free_port()
    env = {
        **os.environ,
        "POLICY_QA_INDEX_DIR": str(corpus_index),
        "POLICY_QA_DATA_DIR": str(tmp_path),
        "POLICY_QA_JUDGE": judge,
        "POLICY_QA_PORT": str(port),
    }
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen([str(exe), "serve"], env=env, stdout=out, stderr=out)
    try:
        assert b"policy-qa" in page_once_said(server, log, port, said)
    finally:
        server.terminate()
        server.wait(timeout=30)
