"""``FolderLock``: one writer at a time in a folder, across processes and threads.

An embedded Chroma index and the saved BM25 index are folders that several processes may open
at once (the web chat and ``policy-qa index``, two indexers started together). Chroma's own
SQLite locking does not cover creating a fresh database (two creators both died with "table
collections already exists" or "database is locked") nor our multi-step writes. So a writer
holds an exclusive ``flock`` on a lock file in the folder for the length of one write; the
kernel releases it when the process dies, so a crash never leaves a stale lock behind.
Opening (which may create the database) takes a second lock, ``OPEN_LOCK``, held only while
the database opens, so a reader never waits behind a long write.
docs/decisions/081-one-writer-at-a-time.md

Standard library only; it decides nothing about what is written.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import time
from pathlib import Path
from types import TracebackType

from .errors import StoreUnavailableError

__all__ = ["LOCK_NAME", "LOCK_TIMEOUT_SECONDS", "OPEN_LOCK", "FolderLock"]

log = logging.getLogger(__name__)

LOCK_NAME = "policy-qa.lock"  # held by a writer for one write
OPEN_LOCK = "policy-qa-open.lock"  # held while the database is opened (and maybe created)
# A write holds the lock for one batch of documents (seconds); two minutes of waiting means
# something is wrong, and saying so beats hanging.
LOCK_TIMEOUT_SECONDS = 120.0
_POLL_SECONDS = 0.05


class FolderLock:
    """An exclusive lock on ``folder`` (the file ``folder / name``), as a context manager.

    ``acquire(wait=False)`` tries once: it returns False when another writer holds the lock.
    A folder this process may not write to cannot be locked; the lock is then skipped (a
    read-only index has no writers to fear), and ``held`` says so.

    >>> with FolderLock(Path(".policy-qa/index")):
    ...     write()
    """

    def __init__(
        self, folder: Path, name: str = LOCK_NAME, timeout: float = LOCK_TIMEOUT_SECONDS
    ) -> None:
        self.folder = Path(folder)
        self.name = name
        self.timeout = timeout
        self._fd: int | None = None
        self.held = False

    @property
    def path(self) -> Path:
        return self.folder / self.name

    def acquire(self, wait: bool = True) -> bool:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
                log.debug("cannot lock %s (%s): a read-only folder, going on", self.path, exc)
                return True
            raise
        deadline = time.monotonic() + self.timeout
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not wait:
                    os.close(fd)
                    return False
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise StoreUnavailableError(
                        f"The index at {self.folder} is busy: another process has been writing "
                        f"to it for {self.timeout:.0f} s (it holds {self.path}). Try again when "
                        "it finishes."
                    ) from None
                if not told:
                    log.info("waiting for another process writing to %s", self.folder)
                    told = True
                time.sleep(_POLL_SECONDS)
                continue
            self._fd, self.held = fd, True
            return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
        self._fd, self.held = None, False

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
