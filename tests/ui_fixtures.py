"""Helpers shared by the web chat tests: a private copy of the corpus index and a live app.

The session's ``corpus_index`` (conftest) is copied, not rebuilt, so each UI module can upload
and remove documents without touching what other tests read; the copy reuses the session
assistant's loaded embedding models.
"""

from __future__ import annotations

import shutil
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from policy_qa import Assistant, Settings

from .conftest import free_port

# A .txt file keeps markup verbatim in the cleaned text, so every hostile string below reaches
# the chat and the sources panel exactly as written. Each would set ``window.__pwned`` if the
# page ever treated document text as HTML or followed a Markdown link.
HOSTILE_NAME = "zephyr-levy.txt"
HOSTILE_TEXT = """Zephyr Quarry <script>window.__pwned = 1</script> Levy Notice

Levy rates

The Zephyr Quarry levy was set at 42 percent by the Tarnwick council in 2031 \
<img src=x onerror="window.__pwned = 2">.

Residents who object may [file an appeal](javascript:window.__pwned=3) within 90 days of the \
notice, says **Tarnwick** <a href="javascript:window.__pwned=4">council</a>.

The levy funds the Tarnwick river restoration programme and nothing else.
"""
HOSTILE_QUESTION = "What percent was the Zephyr Quarry levy set at?"
OFF_TOPIC = "What is the best recipe for chocolate cake?"
FIRST_QUESTION = "When was the Daedeok Research Complex established?"


def write_hostile(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / HOSTILE_NAME
    path.write_text(HOSTILE_TEXT, encoding="utf-8")
    return path


def private_assistant(corpus_index: Path, shared: Any, workdir: Path, **settings: Any) -> Assistant:
    """An assistant over a copy of the corpus index, with its own data directory."""
    index_dir = workdir / "index"
    shutil.copytree(corpus_index, index_dir)
    config = Settings(
        index_dir=index_dir,
        data_dir=workdir / "data",
        port=free_port(),
        **{"judge": "off", **settings},
    )
    return Assistant(settings=config, embeddings=shared.embeddings)


@contextmanager
def running_app(assistant: Assistant) -> Iterator[str]:
    """The real app served on 127.0.0.1 at a free port; yields its URL."""
    from policy_qa.ui import launch

    app = launch(assistant, block=False, quiet=True)
    url = f"http://127.0.0.1:{assistant.settings.port}/"
    try:
        urllib.request.urlopen(url, timeout=10).read()
        yield url
    finally:
        app.close()
