"""Several users at once: questions run concurrently, the model worker queues its own calls,
indexing runs beside questions, and a full queue turns users away with a message.

Real servers on 127.0.0.1, real models; no timings are asserted, only orders of events.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from gradio_client.utils import QueueError

from policy_qa import Assistant
from policy_qa.judge import AnswerabilityJudge, judge_available

from .ui_fixtures import FIRST_QUESTION, private_assistant, running_app

pytestmark = [pytest.mark.slow, pytest.mark.server]

QUESTIONS = (
    FIRST_QUESTION,
    "How far is Daejeon from Seoul?",
    "How many businesses is each cluster meant to attract?",
    "대덕연구단지는 언제 설립되었나요?",
    "What is the capital of France?",  # refused
    "What is the National Innovation Cluster?",
)
BORDERLINE = "What was Daedeok Valley meant to do?"


def test_asking_from_many_threads_gives_the_answers_asked_one_at_a_time(
    corpus_index: Path, qa: Any, tmp_path: Path
) -> None:
    crowd_qa = private_assistant(corpus_index, qa, tmp_path / "crowd")
    alone = {q: crowd_qa.ask(q) for q in QUESTIONS}
    results: dict[tuple[int, str], Any] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(9)

    def user(n: int) -> None:
        start.wait()
        for q in (*QUESTIONS[n % 3 :], *QUESTIONS[: n % 3]):
            try:
                results[(n, q)] = crowd_qa.ask(q)
            except BaseException as exc:
                errors.append(exc)

    def indexer() -> None:
        # A document on another topic is indexed while the questions run (its own group in
        # the web chat, no longer serialised with questions).
        other = tmp_path / "garden-rules.txt"
        other.write_text(
            "Garden rules\n\nHedges must be trimmed to two metres before the first of May.\n"
        )
        start.wait()
        try:
            crowd_qa.index([other])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=user, args=(n,)) for n in range(8)]
    threads.append(threading.Thread(target=indexer))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(results) == 8 * len(QUESTIONS)
    for (_, q), answer in results.items():
        assert answer.answer == alone[q].answer and answer.abstained == alone[q].abstained
        assert [c.quote for c in answer.citations] == [c.quote for c in alone[q].citations]
    assert "garden-rules.txt" in {d.source for d in crowd_qa.documents()}
    crowd_qa.close()


def test_a_full_queue_turns_users_away_with_a_message(
    corpus_index: Path, qa: Any, tmp_path: Path
) -> None:
    narrow = private_assistant(corpus_index, qa, tmp_path, chat_concurrency=1, chat_queue_size=1)
    with running_app(narrow) as url:
        client = Client(url, verbose=False)
        jobs = [client.submit(QUESTIONS[i % 4], api_name="/ask") for i in range(12)]
        outcomes: list[str] = []
        for job in jobs:
            try:
                outcomes.append("answered" if job.result(timeout=300)["answer"] else "?")
            except QueueError as exc:
                outcomes.append(str(exc))
            except AppError as exc:  # how some gradio_client versions report it
                outcomes.append(str(exc))
    assert "answered" in outcomes
    turned_away = [o for o in outcomes if o != "answered"]
    assert turned_away, outcomes
    assert all("Queue is full" in o and "try again" in o for o in turned_away)
    narrow.close()


@pytest.mark.llm
@pytest.mark.skipif(not judge_available(), reason="needs policy-qa[llm]")
def test_a_plain_question_does_not_wait_for_a_model_call(
    corpus_index: Path, qa: Any, tmp_path: Path
) -> None:
    crowd = private_assistant(corpus_index, qa, tmp_path, judge="on", judge_timeout=30.0)
    judge = crowd._judge_()
    assert isinstance(judge, AnswerabilityJudge)
    pid = judge.load()["pid"]
    os.kill(pid, signal.SIGSTOP)  # the model worker hangs: the borderline question waits
    try:
        with running_app(crowd) as url:
            client = Client(url, verbose=False)
            stuck = client.submit(BORDERLINE, api_name="/ask")
            while judge.pool.workers[0].in_flight is None and not stuck.done():
                threading.Event().wait(0.05)
            plain = client.predict(FIRST_QUESTION, api_name="/ask")
            # Answered while the borderline question still waits for the worker.
            assert not plain["abstained"] and not stuck.done()
            late = stuck.result(timeout=300)
    finally:
        if judge.pool.pids == [pid]:
            os.kill(pid, signal.SIGKILL)
    assert any("did not answer within 30 s" in n for n in late["notes"])
    crowd.close()


def test_indexing_has_its_own_group_and_questions_theirs(qa: Assistant) -> None:
    from policy_qa.ui import build_app

    app = build_app(qa)
    groups = {fn.name: (fn.concurrency_id, fn.concurrency_limit) for fn in app.fns.values()}
    assert groups["respond"] == ("ask", qa.settings.chat_concurrency)
    assert groups["ask"] == ("ask", qa.settings.chat_concurrency)  # the /ask API
    assert groups["on_upload"] == ("index", 1) and groups["remove"] == ("index", 1)
