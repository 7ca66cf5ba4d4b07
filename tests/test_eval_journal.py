"""A run that stops goes on: answers written as they come, read back by ``--resume``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policy_qa.config import Settings
from policy_qa.errors import ConfigError
from policy_qa.evaluation.journal import Journal, fingerprint
from policy_qa.evaluation.runner import RunOptions, SetSpec, run


def test_a_journal_gives_back_what_was_written(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    with Journal(path, "abc", resume=False) as journal:
        journal.add("q1", "Who?", {"answer": "Them", "correct": True})
    with Journal(path, "abc", resume=True) as journal:
        assert journal.get("q1", "Who?") == {"answer": "Them", "correct": True}
        # The same id with another question is another question: a set edited in place.
        assert journal.get("q1", "Who else?") is None
        assert journal.resumed == 1


def test_a_journal_without_resume_starts_over(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    with Journal(path, "abc", resume=False) as journal:
        journal.add("q1", "Who?", {"answer": "Them"})
    with Journal(path, "abc", resume=False) as journal:
        assert journal.get("q1", "Who?") is None


def test_a_journal_of_other_settings_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    with Journal(path, fingerprint({"judge": "on"}), resume=False) as journal:
        journal.add("q1", "Who?", {"answer": "Them"})
    with pytest.raises(ConfigError, match=r"other settings.*empty folder"):
        Journal(path, fingerprint({"judge": "off"}), resume=True)


def test_the_fingerprint_ignores_the_clock() -> None:
    assert fingerprint({"judge": "on", "created": "today"}) == fingerprint(
        {"judge": "on", "created": "yesterday", "seconds": 3.0}
    )


def test_half_a_line_left_by_a_killed_run_is_asked_again(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    with Journal(path, "abc", resume=False) as journal:
        journal.add("q1", "Who?", {"answer": "Them"})
    with path.open("a", encoding="utf-8") as f:
        f.write('{"id": "q2", "question": "Wh')  # the process died here
    with Journal(path, "abc", resume=True) as journal:
        assert journal.get("q2", "Wh") is None
        journal.add("q2", "When?", {"answer": "Then"})
    with Journal(path, "abc", resume=True) as journal:
        assert journal.get("q1", "Who?") == {"answer": "Them"}
        assert journal.get("q2", "When?") == {"answer": "Then"}


def test_a_cut_inside_a_korean_character_is_asked_again(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    with Journal(path, "abc", resume=False) as journal:
        journal.add("q1", "대덕은?", {"answer": "연구단지"})
        journal.add("q2", "언제?", {"answer": "1973년"})
    path.write_bytes(path.read_bytes()[:-6])  # the process died inside a character
    with Journal(path, "abc", resume=True) as journal:
        assert journal.get("q1", "대덕은?") == {"answer": "연구단지"}
        assert journal.get("q2", "언제?") is None


@pytest.mark.slow
def test_a_killed_run_goes_on_where_it_stopped(tmp_path: Path) -> None:
    """Real models and Chroma: the second run asks only what the first did not answer."""
    corpus = tmp_path / "docs"
    corpus.mkdir()
    (corpus / "privacy.txt").write_text(
        "Privacy Policy\n\nWe keep your order history for five years. "
        "We share your address with the courier that delivers your parcel.\n\n"
        "Cookies\n\nWe use cookies to remember the contents of your basket.\n",
        encoding="utf-8",
    )
    rows = [
        {"set": {"name": "mine", "corpus": "docs"}},
        {"id": "keep", "question": "How long is the order history kept?", "answers": ["five"]},
        {
            "id": "talk",
            "type": "dialogue",
            "turns": [
                {"question": "What do you use cookies for?", "answers": ["basket"]},
                {"question": "And who gets my address?", "answers": ["courier"]},
            ],
        },
    ]
    path = tmp_path / "mine.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    options = RunOptions(systems=("policy-qa", "bm25"), progress=False)
    settings = Settings(data_dir=tmp_path / "data", judge="off")
    work = tmp_path / "work"
    first = run([SetSpec(str(path))], options, settings, workdir=work)

    # The first run is "killed" after its first answer: its journal keeps one line.
    journal = work / "00-mine" / "journal-policy-qa.jsonl"
    lines = journal.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1 + 3  # the fingerprint, then one line per question
    journal.write_text("\n".join(lines[:2]) + "\n", encoding="utf-8")

    with pytest.raises(ConfigError, match="--resume"):
        run([SetSpec(str(path))], options, settings, workdir=work)
    # Other settings are refused before the set's folder is touched.
    index = work / "00-mine" / "policy-qa-index"
    before = sorted(p.name for p in index.iterdir())
    with pytest.raises(ConfigError, match="other settings"):
        run(
            [SetSpec(str(path))],
            options,
            Settings(data_dir=tmp_path / "data"),
            workdir=work,
            resume=True,
        )
    assert sorted(p.name for p in index.iterdir()) == before
    again = run([SetSpec(str(path))], options, settings, workdir=work, resume=True)
    figures = again["sets"]["mine"]["figures"]
    assert figures["policy-qa"]["resumed"] == 1 and figures["bm25"]["resumed"] == 3
    assert len(journal.read_text(encoding="utf-8").splitlines()) == 1 + 3

    def answers(results: dict[str, object]) -> list[tuple[str, object, object]]:
        rows = results["sets"]["mine"]["rows"]  # type: ignore[index]
        return [
            (r["id"], r["systems"]["policy-qa"]["answer"], r["systems"]["policy-qa"]["correct"])
            for r in rows
        ]

    # The follow-up's history came from the journal, so it reads the same as before.
    assert answers(again) == answers(first)
