"""A run's answers written down as they come, so that a long run can stop and go on.

Every question a system answers is appended, scored, to a JSON Lines file in the set's work
folder, and flushed. ``policy-qa eval --workdir DIR --resume`` reads it back and asks only the
questions it does not hold: a whole public set through the answerability check takes hours on
two cores, and a killed run (a closed laptop, a CI time limit) keeps what it did
(docs/decisions/110-eval-runs-that-resume.md).

The first line is the run's fingerprint (its settings, systems and set); a journal written
under another fingerprint is refused, never mixed into this run's figures.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..errors import ConfigError

__all__ = ["Journal", "check", "fingerprint", "journal_path"]


def fingerprint(config: dict[str, Any]) -> str:
    """A digest of what decides the answers: the run's config without its clock."""
    stable = {k: v for k, v in config.items() if k not in ("created", "seconds")}
    return hashlib.sha256(json.dumps(stable, sort_keys=True, default=str).encode()).hexdigest()


def journal_path(folder: Path, system: str) -> Path:
    """Where ``system``'s journal of a set lives in the set's work folder."""
    return folder / f"journal-{system}.jsonl"


def _key(row_id: str, question: str) -> str:
    # The question's text is in the key: a set whose file changed under the same ids asks again.
    return f"{row_id}\n{question}"


class Journal:
    """One system's answers on one set, appended one line per question."""

    def __init__(self, path: Path, digest: str, *, resume: bool) -> None:
        self.path = path
        self._done: dict[str, dict[str, Any]] = {}
        if resume and path.exists():
            self._done = _read(path, digest)
            with path.open("rb+") as f:  # a killed run may have left half a line
                if f.seek(0, 2) and (f.seek(-1, 2), f.read(1))[1] != b"\n":
                    f.write(b"\n")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"fingerprint": digest}) + "\n", encoding="utf-8")
        self.resumed = 0
        self._file = path.open("a", encoding="utf-8")

    def get(self, row_id: str, question: str) -> dict[str, Any] | None:
        """The scored row written for this question by an earlier run, if any."""
        row = self._done.get(_key(row_id, question))
        if row is not None:
            self.resumed += 1
        return row

    def add(self, row_id: str, question: str, row: dict[str, Any]) -> None:
        line = {"id": row_id, "question": question, "row": row}
        self._file.write(json.dumps(line, ensure_ascii=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check(path: Path, digest: str) -> None:
    """A ``ConfigError`` unless the journal at ``path`` (if any) was written under ``digest``:
    checked before a resumed run touches the set's folder."""
    if path.exists() and _lines(path)[:1] != [json.dumps({"fingerprint": digest})]:
        raise ConfigError(
            f"{path} was written by a run with other settings, systems or sets: resume it with "
            "the same command, or give --workdir an empty folder"
        )


def _lines(path: Path) -> list[str]:
    # A run killed mid-write can leave half a character at the end: that line is dropped.
    return path.read_bytes().decode("utf-8", errors="replace").splitlines()


def _read(path: Path, digest: str) -> dict[str, dict[str, Any]]:
    check(path, digest)
    lines = _lines(path)
    done: dict[str, dict[str, Any]] = {}
    for line in lines[1:]:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            # The line a killed run was writing: that question is asked again.
            continue
        done[_key(entry["id"], entry["question"])] = entry["row"]
    return done
