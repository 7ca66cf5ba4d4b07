"""Question-set files and the public-dataset loaders, on hand-made files and the shared data."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from policy_qa.errors import ConfigError
from policy_qa.evaluation.datasets import (
    answer_sentence,
    dump_item,
    load_clapnq,
    load_korquad,
    load_named,
    load_policyqa,
    load_set,
)
from policy_qa.evaluation.metrics import answer_present, has_hangul, locate
from policy_qa.ingest.load import load_file

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("POLICY_QA_DATASETS") or REPO.parent / "shared" / "datasets")
needs_datasets = pytest.mark.skipif(
    not DATASETS.is_dir(),
    reason=f"shared datasets not found at {DATASETS} (set POLICY_QA_DATASETS)",
)


# --- the bundled set ------------------------------------------------------------------------


def test_every_turn_of_the_bundled_sets_has_its_own_row_id() -> None:
    # Journals, reports and the research scripts all name a turn by Item.row_id.
    for name in ("daedeok", "daedeok-heldout"):
        items = load_set(REPO / "eval" / f"{name}.jsonl").items
        ids = [item.row_id(i) for item in items for i in range(len(item.turns))]
        assert len(ids) == len(set(ids))
        dialogue = next(item for item in items if len(item.turns) > 1)
        single = next(item for item in items if len(item.turns) == 1)
        assert dialogue.row_id(1) == f"{dialogue.id}#2"
        assert single.row_id(0) == single.id


def test_bundled_set_meets_the_brief() -> None:
    s = load_set(REPO / "eval" / "daedeok.jsonl")
    turns = [(item, t) for item in s.items for t in item.turns]
    single = [item for item in s.items if not item.is_dialogue]
    assert s.corpus == (REPO / "corpus").resolve()
    assert len(single) >= 60
    assert sum(not t.answerable for _, t in turns) >= 15
    assert (
        sum(1 for item in s.items if item.lang == "ko" and has_hangul(item.turns[0].question)) >= 10
    )
    dialogues = [item for item in s.items if item.is_dialogue]
    assert len(dialogues) >= 8 and all(len(d.turns) >= 2 for d in dialogues)
    for kind in ("fact", "list", "definition", "multi-passage", "unanswerable"):
        assert any(item.type == kind for item in s.items), kind
    multi = [item for item in s.items if item.type == "multi-passage"]
    assert all(len(item.turns[0].evidence) >= 2 for item in multi)
    for _, t in turns:
        assert t.answerable == bool(t.answers), t.question


def test_bundled_evidence_is_verbatim_in_cleaned_and_raw_text() -> None:
    s = load_set(REPO / "eval" / "daedeok.jsonl")
    for item in s.items:
        path = s.corpus / (item.source or "")
        cleaned = load_file(path, s.corpus).text
        raw = path.read_text(encoding="utf-8")
        for turn in item.turns:
            for quote in turn.evidence:
                assert locate(quote, cleaned), (item.id, quote)
                assert locate(quote, raw), (item.id, quote)
            # Some alternative is what the article says; a computed answer is what two of its
            # figures make, which the evidence holds.
            if turn.answers and item.type != "computed":
                assert answer_present(cleaned, turn.answers), (item.id, turn.answers)
        assert item.source is not None


# --- our JSON Lines format ------------------------------------------------------------------


def _write_set(tmp_path: Path, rows: Sequence[object], corpus: bool = True) -> Path:
    if corpus:
        (tmp_path / "corpus").mkdir(exist_ok=True)
        (tmp_path / "corpus" / "a.txt").write_text("Alpha was founded in 1990.", encoding="utf-8")
    path = tmp_path / "set.jsonl"
    path.write_text(
        "\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows),
        encoding="utf-8",
    )
    return path


def test_load_set_shapes_and_defaults(tmp_path: Path) -> None:
    path = _write_set(
        tmp_path,
        [
            {"set": {"name": "mine", "description": "test"}},
            {
                "id": "q1",
                "question": "When was Alpha founded?",
                "answers": ["1990"],
                "evidence": ["Alpha was founded in 1990."],
                "source": "a.txt",
            },
            "",
            "// comments and blank lines are skipped",
            {"id": "q2", "type": "unanswerable", "question": "Who founded Alpha?"},
            {"id": "q3", "type": "list", "question": "x?", "answers": [["a", "b"], "c"]},
            {
                "id": "d1",
                "type": "dialogue",
                "turns": [
                    {"question": "What is Alpha?", "evidence": ["Alpha was founded in 1990."]},
                    {"question": "When was it founded?", "answers": ["1990"]},
                    {"question": "Who runs it?", "answerable": False},
                ],
            },
            {"id": "k1", "question": "알파는 언제 설립되었나요?", "answers": ["1990"]},
        ],
    )
    s = load_set(path)
    assert s.name == "mine" and s.corpus == (tmp_path / "corpus").resolve()
    by_id = {i.id: i for i in s.items}
    assert by_id["q1"].turns[0].answerable and by_id["q1"].source == "a.txt"
    assert not by_id["q2"].turns[0].answerable
    assert by_id["q3"].turns[0].answers == (("a", "b"), "c")
    assert [t.answerable for t in by_id["d1"].turns] == [True, True, False]
    assert by_id["d1"].is_dialogue and not by_id["q1"].is_dialogue
    assert by_id["k1"].lang == "ko" and by_id["q1"].lang == "en"
    assert s.n_questions == 7
    # what dump_item writes, load_set reads back the same
    (tmp_path / "again").mkdir()
    again = _write_set(tmp_path / "again", [dump_item(i) for i in s.items])
    assert load_set(again).items == s.items


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"id": "x", "question": "q", "answers": ["a"], "answerable": False}, "must not list"),
        ({"id": "x", "question": "q", "answerable": True}, "needs answers or evidence"),
        ({"id": "x"}, "give 'question'"),
        ({"id": "x", "question": "q", "answers": ["a"], "type": "trivia"}, "type must be"),
        ({"id": "x", "question": "q", "answers": [""]}, "must not be empty"),
        ({"id": "x", "question": "q", "answers": ["a"], "colour": "red"}, "colour"),
        ({"id": "x", "question": "q", "turns": [{"question": "q2", "answers": ["a"]}]}, "not both"),
    ],
)
def test_load_set_rejects_bad_rows_with_line_numbers(
    tmp_path: Path, row: dict[str, object], message: str
) -> None:
    path = _write_set(tmp_path, [{"id": "ok", "question": "q", "answers": ["a"]}, row])
    with pytest.raises(ConfigError, match=message) as info:
        load_set(path)
    assert f"{path}:2" in str(info.value)


def test_load_set_rejects_duplicates_bad_json_and_missing_corpus(tmp_path: Path) -> None:
    row = {"id": "a", "question": "q", "answers": ["x"]}
    with pytest.raises(ConfigError, match="duplicate id"):
        load_set(_write_set(tmp_path, [row, row]))
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_set(_write_set(tmp_path, ["{nope"]))
    with pytest.raises(ConfigError, match="no questions"):
        load_set(_write_set(tmp_path, [{"set": {"name": "empty"}}]))
    bare = tmp_path / "lone" / "bare"  # no corpus/ beside it nor beside its parent
    bare.mkdir(parents=True)
    with pytest.raises(ConfigError, match="no corpus folder"):
        load_set(_write_set(bare, [row], corpus=False))
    # ... unless one is named
    assert load_set(bare / "set.jsonl", corpus=tmp_path / "corpus").corpus.name == "corpus"


def test_sample_is_deterministic_and_keeps_order(tmp_path: Path) -> None:
    rows = [{"id": f"q{i:02d}", "question": "q", "answers": ["a"]} for i in range(30)]
    s = load_set(_write_set(tmp_path, rows))
    a, b, c = s.sample(10, seed=1), s.sample(10, seed=1), s.sample(10, seed=2)
    assert [i.id for i in a.items] == [i.id for i in b.items]
    assert [i.id for i in a.items] != [i.id for i in c.items]
    assert [i.id for i in a.items] == sorted(i.id for i in a.items)
    assert s.sample(None) is s and s.sample(100) is s


# --- SQuAD-format and CLAP NQ loaders on hand-made files ------------------------------------


def _squad(tmp_path: Path) -> Path:
    data = {
        "version": "1.1",
        "data": [
            {
                "title": "site-a.com",
                "paragraphs": [
                    {
                        "context": "We collect your email. We never sell data! Contact us.",
                        "qas": [
                            {
                                "id": "a1",
                                "question": "What is collected?",
                                "answers": [{"text": "your email", "answer_start": 11}],
                            },
                            {
                                "id": "a2",
                                "question": "Do you sell data?",
                                "answers": [
                                    {"text": "never sell data", "answer_start": 26},
                                    {"text": "never sell data", "answer_start": 26},
                                ],
                            },
                        ],
                    },
                    {
                        "context": "Cookies are used for ads.",
                        "qas": [
                            {
                                "id": "a3",
                                "question": "Why cookies?",
                                "answers": [{"text": "for ads", "answer_start": 99}],
                            }
                        ],
                    },
                ],
            },
            {
                "title": "site/b",
                "paragraphs": [
                    {
                        "context": "We keep logs for 30 days.",
                        "qas": [
                            {
                                "id": "b1",
                                "question": "How long are logs kept?",
                                "answers": [{"text": "30 days", "answer_start": 17}],
                            }
                        ],
                    }
                ],
            },
        ],
    }
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_answer_sentence() -> None:
    context = "We collect your email. We never sell data! Contact us."
    assert answer_sentence(context, 11, 21) == "We collect your email."
    assert answer_sentence(context, 26, 41) == "We never sell data!"
    assert answer_sentence("No full stop here", 3, 7) == "No full stop here"


def test_load_policyqa_writes_corpus_and_scopes(tmp_path: Path) -> None:
    s = load_policyqa(_squad(tmp_path), tmp_path / "out")
    assert [i.id for i in s.items] == ["a1", "a2", "a3", "b1"]
    a1, a2, a3, b1 = s.items
    assert a1.source == "site-a.com/p000.txt" and a1.within == "site-a.com/"
    assert a1.turns[0].answers == ("your email",)
    assert a1.turns[0].evidence == ("We collect your email.",)
    assert a2.turns[0].answers == ("never sell data",)  # duplicates dropped
    assert a3.turns[0].evidence == ("Cookies are used for ads.",)  # wrong offset: found by text
    assert b1.source == "site_b/p000.txt"  # a slash in a title cannot make a folder
    assert (s.corpus / "site-a.com" / "p001.txt").read_text() == "Cookies are used for ads."
    meta = json.loads((s.corpus / "site-a.com" / "p001.txt.meta.json").read_text())
    assert meta == {"title": "site-a.com (2)", "language": "en"}
    assert load_policyqa(_squad(tmp_path), tmp_path / "out2", scope=False).items[0].within is None
    with pytest.raises(ConfigError, match="not empty"):
        load_policyqa(_squad(tmp_path), tmp_path / "out")


def test_load_squad_sampling_is_deterministic(tmp_path: Path) -> None:
    a = load_policyqa(_squad(tmp_path), tmp_path / "a", limit=2, seed=3)
    b = load_policyqa(_squad(tmp_path), tmp_path / "b", limit=2, seed=3)
    assert [i.id for i in a.items] == [i.id for i in b.items] and len(a.items) == 2
    one = load_policyqa(_squad(tmp_path), tmp_path / "c", policies=1, seed=0)
    assert len({i.source.split("/")[0] for i in one.items if i.source}) == 1
    # only the articles of sampled questions are written
    folders = {p.name for p in one.corpus.iterdir()}
    assert len(folders) == 1


def test_load_korquad_marks_korean(tmp_path: Path) -> None:
    data = {
        "data": [
            {
                "title": "차범근",
                "paragraphs": [
                    {
                        "context": "차범근은 축구 선수이다. 독일에서 활약하였다.",
                        "qas": [
                            {
                                "id": "k1",
                                "question": "차범근이 활약한 나라는?",
                                "answers": [{"text": "독일", "answer_start": 14}],
                            }
                        ],
                    }
                ],
            }
        ]
    }
    path = tmp_path / "korquad.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    s = load_korquad(path, tmp_path / "out")
    item = s.items[0]
    assert item.lang == "ko" and item.within is None and item.source == "차범근/p000.txt"
    assert item.turns[0].evidence == ("독일에서 활약하였다.",)


def test_load_clapnq(tmp_path: Path) -> None:
    passage = {"title": "Cup", "text": "The Cup is old . It is for yachts .", "sentences": []}
    answerable = [
        {
            "id": "1",
            "input": "what is the cup",
            "passages": [passage],
            "output": [
                {"answer": "The Cup is old.", "selected_sentences": ["The Cup is old ."]},
                {"answer": "", "selected_sentences": []},
            ],
        },
        {
            "id": "2",
            "input": "skipped by annotators",
            "passages": [passage],
            "output": [{"answer": "", "selected_sentences": []}],
        },
    ]
    unanswerable = [
        {
            "id": "3",
            "input": "who won in 1900",
            "passages": [{"title": "Race", "text": "A race . Many boats .", "sentences": []}],
            "output": [{"answer": "", "selected_sentences": []}],
        }
    ]
    folder = tmp_path / "clapnq"
    folder.mkdir()
    for name, rows in (
        ("clapnq_dev_answerable.jsonl", answerable),
        ("clapnq_dev_unanswerable.jsonl", unanswerable),
    ):
        (folder / name).write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    s = load_clapnq(folder, tmp_path / "out")
    assert s.long_answers
    assert [(i.id, i.turns[0].answerable) for i in s.items] == [("1", True), ("3", False)]
    first = s.items[0]
    assert first.turns[0].answers == ("The Cup is old.",)
    assert first.turns[0].evidence == ("The Cup is old .",)
    assert (s.corpus / (first.source or "")).read_text().startswith("Cup\n\nThe Cup is old .")
    assert len(list(s.corpus.rglob("*.txt"))) == 2  # the shared passage is written once
    with pytest.raises(ConfigError, match="not found"):
        load_clapnq(tmp_path / "nowhere", tmp_path / "out3")


# --- the shared datasets themselves ---------------------------------------------------------


@needs_datasets
@pytest.mark.parametrize(("name", "groups"), [("policyqa", 2), ("korquad", 2), ("clapnq", None)])
def test_shared_dataset_samples(tmp_path: Path, name: str, groups: int | None) -> None:
    a = load_named(name, DATASETS, tmp_path / "a", limit=10, seed=7, groups=groups)
    b = load_named(name, DATASETS, tmp_path / "b", limit=10, seed=7, groups=groups)
    assert [i.id for i in a.items] == [i.id for i in b.items]
    assert 5 <= len(a.items) <= 10
    for item in a.items:
        turn = item.turns[0]
        assert item.source and (a.corpus / item.source).is_file()
        text = (a.corpus / item.source).read_text(encoding="utf-8")
        for quote in turn.evidence:
            assert locate(quote, text), (item.id, quote)
        if name == "policyqa":
            assert item.within == item.source.split("/")[0] + "/"
    if name == "clapnq":
        assert {t.answerable for i in a.items for t in i.turns} == {True, False}


def test_unknown_dataset_and_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown dataset"):
        load_named("squad2", tmp_path, tmp_path / "out")
    with pytest.raises(ConfigError, match="datasets-dir"):
        load_named("policyqa", tmp_path, tmp_path / "out")
