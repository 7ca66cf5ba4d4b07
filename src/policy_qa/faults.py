"""A test-only pause at a named write boundary, so a test can kill the writer exactly there.

Never active by default. With ``Settings.fault_pause_at`` (environment
``POLICY_QA_FAULT_PAUSE_AT``) set to a boundary's name, the process writes
``policy-qa: paused at NAME`` to stderr when it first reaches that boundary and sleeps until
it is killed; tests/test_crash_consistency.py sends it SIGKILL there. The boundaries, in the
order one write passes them (docs/decisions/080-crash-consistent-indexing.md):

- ``pending``: the documents' records say "pending" (and the revision mark has moved);
- ``vectors:MODEL``: one dense model's chunk vectors are written (one boundary per model);
- ``sentences``: the chunks' sentence vectors are written;
- ``records``: the documents' records say "complete", the revision mark not yet moved again;
- ``revision``: the revision mark has moved; the BM25 index is not saved yet;
- ``bm25``: half of the BM25 index is saved (its arrays, not its meta.json).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence

from .errors import ConfigError

__all__ = ["BOUNDARIES", "Checkpoint", "checkpoint_for"]

Checkpoint = Callable[[str], None]  # called with a boundary's name as a write passes it

BOUNDARIES = ("pending", "vectors:MODEL", "sentences", "records", "revision", "bm25")


def checkpoint_for(pause_at: str | None, models: Sequence[str]) -> Checkpoint | None:
    """The checkpoint that pauses at ``pause_at`` (None, the default: no checkpoint at all)."""
    if not pause_at:
        return None
    names = [b for b in BOUNDARIES if b != "vectors:MODEL"] + [f"vectors:{m}" for m in models]
    if pause_at not in names:
        raise ConfigError(
            f"fault_pause_at must be one of {', '.join(names)} (a test-only setting), "
            f"got {pause_at!r}"
        )

    def checkpoint(boundary: str) -> None:
        if boundary == pause_at:
            print(f"policy-qa: paused at {boundary}", file=sys.stderr, flush=True)
            while True:  # until the test kills us
                time.sleep(3600)

    return checkpoint
