"""Starting a real server for a test: on 127.0.0.1 at a free port, stopped afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .conftest import free_port


@contextmanager
def serving(command: Sequence[str], log: Path, **env: str) -> Iterator[str]:
    """A Chroma server started as ``command --host 127.0.0.1 --port N`` (its output in
    ``log``); yields its URL once its heartbeat answers, and stops it afterwards."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            env={**os.environ, "ANONYMIZED_TELEMETRY": "False", **env},
            stdout=out,
            stderr=out,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1).read()
                    break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        tail = log.read_text(errors="replace")[-2000:]
                        raise RuntimeError(f"{command[0]} did not start:\n{tail}") from None
                    time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def page_once_said(
    server: subprocess.Popen[bytes], log: Path, port: int, said: str, timeout: float = 300
) -> bytes:
    """The page of a ``policy-qa serve`` at ``port``, once it answers and ``said`` is in its
    ``log``: the start-up model check runs beside the server's start, so either may come first.
    Fails with the log when the server exits or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    page = b""
    while not page or said not in log.read_text(errors="replace"):
        assert server.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.5)
        try:
            page = page or urllib.request.urlopen(f"http://127.0.0.1:{port}/").read()
        except OSError:
            continue
    return page


@contextmanager
def chroma_server(folder: Path) -> Iterator[str]:
    """``chroma run`` (the one beside this Python) with its data and log in ``folder``."""
    chroma = Path(sys.executable).with_name("chroma")
    with serving([str(chroma), "run", "--path", str(folder / "db")], folder / "server.log") as url:
        yield url
