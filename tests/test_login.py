"""Login (issue 24.6): no empty credentials, and failed logins throttled per client address,
checked on the throttle itself (a fake clock) and on the real server (two client addresses)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import httpx
import pytest
from gradio_client import Client

from policy_qa import ConfigError, Settings
from policy_qa.login import (
    FIRST_LOCKOUT_SECONDS,
    FREE_FAILURES,
    MAX_LOCKOUT_SECONDS,
    LoginThrottle,
)

from .ui_fixtures import FIRST_QUESTION, private_assistant, running_app


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("auth", "says"),
    [
        (":", "empty user name"),
        (":secret", "empty user name"),
        ("   :secret", "empty user name"),
        ("reader:", "empty password"),
        ("reader", "no ':'"),
        (" reader:secret", "spaces"),
    ],
)
def test_empty_or_unusable_credentials_are_refused(auth: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says) as caught:
        Settings(auth=auth)
    assert "POLICY_QA_AUTH" in str(caught.value)
    with pytest.raises(ConfigError, match=says):
        Settings.from_env({"POLICY_QA_AUTH": auth})


def test_good_credentials_are_kept() -> None:
    assert Settings(auth="reader:pa:ss").auth == "reader:pa:ss"  # a password may hold ':'
    assert Settings.from_env({"POLICY_QA_AUTH": ""}).auth is None  # empty: no login


def test_lockouts_grow_after_the_free_failures_and_a_success_clears_them() -> None:
    clock = Clock()
    throttle = LoginThrottle(clock)
    lockouts = [throttle.failed("a") for _ in range(FREE_FAILURES + 10)]
    assert lockouts[: FREE_FAILURES - 1] == [0.0] * (FREE_FAILURES - 1)
    growing = lockouts[FREE_FAILURES - 1 :]
    assert growing[0] == FIRST_LOCKOUT_SECONDS
    assert all(b >= a for a, b in itertools.pairwise(growing))
    assert growing[1] == 2 * growing[0] and growing[-1] == MAX_LOCKOUT_SECONDS
    assert throttle.retry_after("a") == MAX_LOCKOUT_SECONDS
    assert throttle.retry_after("b") == 0.0, "other clients are not affected"
    clock.now += MAX_LOCKOUT_SECONDS
    assert throttle.retry_after("a") == 0.0
    throttle.succeeded("a")
    assert throttle.failed("a") == 0.0, "a success starts the count afresh"


def test_a_client_quiet_for_an_hour_starts_afresh() -> None:
    clock = Clock()
    throttle = LoginThrottle(clock)
    for _ in range(FREE_FAILURES):
        throttle.failed("a")
    assert throttle.retry_after("a") > 0
    clock.now += 3601
    assert throttle.retry_after("a") == 0.0 and throttle.failed("a") == 0.0


@pytest.mark.slow
@pytest.mark.server
def test_failed_logins_are_throttled_per_client_on_the_server(
    corpus_index: Path, qa: Any, tmp_path: Path
) -> None:
    assistant = private_assistant(corpus_index, qa, tmp_path, auth="reader:s3cret-pass")
    with running_app(assistant) as url:
        login = f"{url}login"
        guesser = httpx.Client(timeout=30)
        for n in range(FREE_FAILURES):
            wrong = guesser.post(login, data={"username": "reader", "password": f"guess{n}"})
            assert wrong.status_code == 400
        # Locked out: even the right password is refused, at once and saying why.
        locked = guesser.post(login, data={"username": "reader", "password": "s3cret-pass"})
        assert locked.status_code == 429
        assert int(locked.headers["retry-after"]) >= 1
        assert "Too many failed logins" in locked.json()["detail"]
        with pytest.raises(ValueError):
            Client(url, auth=("reader", "s3cret-pass"), verbose=False)

        # Another client address (all of 127.0.0.0/8 is this machine) is not locked out.
        other = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=30)
        right = other.post(login, data={"username": "reader", "password": "s3cret-pass"})
        assert right.status_code == 200
        # Its session cookie (kept by the client) opens the API.
        answer = other.post(f"{url}gradio_api/call/ask", json={"data": [FIRST_QUESTION, [], None]})
        assert answer.status_code == 200 and "event_id" in answer.json()
