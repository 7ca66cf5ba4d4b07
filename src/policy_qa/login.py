"""Failed logins are throttled per client: growing lockouts after a few failures in a row.

Before, 100 wrong passwords took 0.57 s. Now, after ``FREE_FAILURES`` failures in a row from one
address, that address must wait ``FIRST_LOCKOUT_SECONDS`` before its next try, and the wait
doubles with every further failure up to ``MAX_LOCKOUT_SECONDS``; a try during the wait is
refused at once (HTTP 429 with ``Retry-After``) without checking the password. A success
clears the address's count. Other addresses are not affected, so a guesser cannot lock
everyone out (docs/decisions/084-login.md).

``LoginThrottle`` is the policy (pure, with an injectable clock); ``ThrottledLogin`` is the
ASGI middleware the web chat puts in front of Gradio's ``POST /login``: Gradio's ``auth``
callable is given only the user name and password, never the client's address. Standard
library only.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FIRST_LOCKOUT_SECONDS",
    "FREE_FAILURES",
    "MAX_LOCKOUT_SECONDS",
    "LoginThrottle",
    "ThrottledLogin",
]

FREE_FAILURES = 5  # a person mistyping a password a few times never waits
FIRST_LOCKOUT_SECONDS = 1.0
MAX_LOCKOUT_SECONDS = 300.0
FORGET_AFTER_SECONDS = 3600.0  # an address quiet this long starts afresh
MAX_CLIENTS = 10_000  # addresses remembered at once (the oldest are forgotten first)


@dataclass
class _Record:
    failures: int = 0
    locked_until: float = 0.0
    last: float = 0.0


class LoginThrottle:
    """Failure counts and lockouts per client address.

    >>> throttle = LoginThrottle()
    >>> throttle.retry_after("203.0.113.7")  # 0.0: may try now
    >>> throttle.failed("203.0.113.7")
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._records: OrderedDict[str, _Record] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> float:
        """Seconds ``client`` must wait before its next try (0.0: it may try now)."""
        with self._lock:
            record = self._current(client)
            return max(0.0, record.locked_until - self._clock()) if record else 0.0

    def failed(self, client: str) -> float:
        """Count a failed login; returns the lockout it starts (0.0 within the free tries)."""
        with self._lock:
            now = self._clock()
            record = self._current(client) or _Record()
            record.failures += 1
            record.last = now
            extra = record.failures - FREE_FAILURES
            lockout = 0.0
            if extra >= 0:
                lockout = min(FIRST_LOCKOUT_SECONDS * 2.0 ** min(extra, 30), MAX_LOCKOUT_SECONDS)
            record.locked_until = now + lockout
            self._records[client] = record
            self._records.move_to_end(client)
            while len(self._records) > MAX_CLIENTS:
                self._records.popitem(last=False)
            return lockout

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._records.pop(client, None)

    def _current(self, client: str) -> _Record | None:
        record = self._records.get(client)
        if record is not None and self._clock() - record.last > FORGET_AFTER_SECONDS:
            del self._records[client]
            return None
        return record


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ThrottledLogin:
    """ASGI middleware: ``POST /login`` goes through ``throttle`` (other requests pass by).

    A 200 from the app clears the client's count, a 400 or 401 (wrong credentials) adds to
    it, and a client that must wait gets a 429 with ``Retry-After`` without reaching the app.
    """

    def __init__(self, app: ASGIApp, throttle: LoginThrottle, path: str = "/login") -> None:
        self.app = app
        self.throttle = throttle
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        is_login = (
            scope.get("type") == "http"
            and scope.get("method") == "POST"
            and str(scope.get("path", "")).rstrip("/") == self.path
        )
        if not is_login:
            await self.app(scope, receive, send)
            return
        client = str((scope.get("client") or ("unknown", 0))[0])
        wait = self.throttle.retry_after(client)
        if wait > 0:
            await _too_many(send, client, wait)
            return
        status: dict[str, int] = {}

        async def watch(message: Message) -> None:
            if message.get("type") == "http.response.start":
                status["code"] = int(message.get("status", 0))
            await send(message)

        await self.app(scope, receive, watch)
        if status.get("code") == 200:
            self.throttle.succeeded(client)
        elif status.get("code") in (400, 401):
            self.throttle.failed(client)


async def _too_many(send: Send, client: str, wait: float) -> None:
    seconds = max(1, math.ceil(wait))
    body = json.dumps(
        {"detail": f"Too many failed logins from {client}: try again in {seconds} s."}
    ).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(seconds).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
