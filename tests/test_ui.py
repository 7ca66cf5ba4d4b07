"""The web chat's handlers on a real index, and the served app through ``gradio_client``."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from gradio_client import Client

from policy_qa import REFUSAL, Assistant, Settings
from policy_qa.assistant import GATED_NOTE
from policy_qa.ui import (
    API_NAME,
    API_NAMES,
    EXTRACTIVE_LABEL,
    NOT_FOUND,
    ChatUI,
    ChatView,
    escape_md,
    exposure_warning,
    history_pairs,
    plain_text,
    render_chat,
)

from .conftest import SEED_SOURCE, free_port
from .ui_fixtures import (
    FIRST_QUESTION,
    HOSTILE_NAME,
    HOSTILE_QUESTION,
    OFF_TOPIC,
    private_assistant,
    running_app,
    write_hostile,
)

pytestmark = pytest.mark.slow

# What must never reach the page from user or document text: live tags or Markdown links.
_LIVE_TAG = re.compile(r"<(script|img|a href=\"javascript)", re.IGNORECASE)
_LIVE_MARKUP = re.compile(_LIVE_TAG.pattern + r"|\]\(javascript", re.IGNORECASE)

COUNCIL = "What is the Regional Innovation Council?"
MEMBERS = "How many members will it have?"  # needs the turn before it


@pytest.fixture(scope="module")
def ui_qa(
    corpus_index: Path, qa: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Assistant]:
    assistant = private_assistant(corpus_index, qa, tmp_path_factory.mktemp("ui"), max_upload_mb=1)
    yield assistant
    assistant.close()


@pytest.fixture(scope="module")
def ui(ui_qa: Assistant) -> ChatUI:
    return ChatUI(ui_qa)


@pytest.fixture(scope="module")
def first(ui: ChatUI) -> list[ChatView]:
    """Every view the chat showed while answering the first question."""
    return list(ui.respond(FIRST_QUESTION, []))


# --- rendering --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(1)">',
        "[click](javascript:alert(1))",
        "**bold** _it_ `code` # heading\n    indented\n1. list\n> quote | pipe",
        "www.example.com http://example.com $x$",
    ],
)
def test_escape_md_leaves_no_markup(text: str) -> None:
    escaped = escape_md(text)
    bare = re.sub(r"&#\d+;", "", escaped)  # what Markdown could still read as syntax
    assert not re.search(r"[<>\[\]()*_`#|$:&.]", bare)
    assert html.unescape(escaped) == "\n".join(line.lstrip() for line in text.split("\n"))


def test_render_chat_shows_hostile_questions_as_text() -> None:
    turns = [{"question": "<b>hi</b> [x](javascript:alert(1))", "text": "", "answer": None}]
    (user, bot) = render_chat(turns)
    assert "<b>" not in user["content"] and "](" not in user["content"]
    assert "Searching" in bot["content"]


def test_citations_show_their_pages() -> None:
    def cite(n: int, page: int | None, page_end: int | None) -> dict[str, Any]:
        quote = f"Quote {n}."
        return {
            "n": n,
            "source": "a.pdf",
            "title": "Travel",
            "section": "Meals",
            "start": 0,
            "end": len(quote),
            "quote": quote,
            "page": page,
            "page_end": page_end,
        }

    answer = {
        "question": "q",
        "answer": "One [1]. Two [2]. Three [3].",
        "abstained": False,
        "citations": [cite(1, 3, 3), cite(2, 12, 13), cite(3, None, None)],
        "passages": [],
        "notes": [],
    }
    (_, bot) = render_chat([{"question": "q", "answer": answer}])
    assert "Travel § Meals, p. 3" in bot["content"]
    assert "Travel § Meals, pp. 12–13" in bot["content"]
    assert re.search(r"\[3\]</a> Travel § Meals</small>", bot["content"])  # no pages: no label
    copied = plain_text(answer)
    assert (
        "[1] Travel § Meals, p. 3 (a.pdf," in copied and "[2] Travel § Meals, pp. 12–13" in copied
    )
    del answer["citations"][0]["page"]  # an answer saved before pages existed
    assert "Travel § Meals (a.pdf" in plain_text(answer)


# --- asking -----------------------------------------------------------------------------------


def test_answer_streams_then_shows_cited_passages(first: list[ChatView], ui_qa: Assistant) -> None:
    assert len(first) >= 2  # the question appears before the answer does
    assert first[0].question == ""
    assert first[0].chat[-1]["content"].startswith("<em>Searching")
    final = first[-1]
    answer = final.turns[-1]["answer"]
    assert not answer["abstained"] and answer["citations"]
    assert "1973" in answer["answer"]
    message = final.chat[-1]["content"]
    assert '<a class="pqa-cite" href="#pqa-cite-0-1"' in message
    # Every citation offset is exact in the document, and the panel marks that very quote.
    text = ui_qa.document_text(SEED_SOURCE)
    for c in answer["citations"]:
        assert text[c["start"] : c["end"]] == c["quote"]
    c1 = answer["citations"][0]
    assert f"<mark>{c1['quote']}</mark>" in final.sources
    assert c1["title"] in final.sources and c1["section"] in final.sources
    assert f"characters {c1['start']:,}–{c1['end']:,} of {len(text):,}" in final.sources
    assert final.cites.value == "1" and len(final.cites.choices) == len(answer["citations"])
    assert final.status == ""


def test_clicking_a_marker_shows_that_quote(ui: ChatUI) -> None:
    # A question in two parts gets one cited sentence for each part.
    two_part = "In which years were Daedeok Research Complex and Daedeok Valley established?"
    turns = list(ui.respond(two_part, []))[-1].turns
    assert len(turns[0]["answer"]["citations"]) >= 2
    c2 = turns[0]["answer"]["citations"][1]
    view = ui.show_citation(turns, "#pqa-cite-0-2")
    assert view.focus == 0
    assert '<span class="pqa-badge">[2]</span>' in view.sources
    assert f"<mark>{c2['quote']}</mark>" in view.sources
    assert view.cites.value == "2"
    assert ui.pick_citation(turns, 0, "1").sources.count("<mark>") == 1


def test_follow_up_uses_the_conversation(first: list[ChatView], ui: ChatUI) -> None:
    final = list(ui.respond("When was it re-established?", first[-1].turns))[-1]
    assert len(final.turns) == 2 and len(final.chat) == 4
    answer = final.turns[-1]["answer"]
    # Read alone, "it" finds the one sentence on a re-establishment, so the earlier question
    # need not be joined (docs/decisions/074-follow-ups-by-evidence.md): 2005 either way.
    assert answer["retrieval_query"] in (
        "When was it re-established?",
        f"{FIRST_QUESTION} When was it re-established?",
    )
    assert "2005" in answer["answer"]
    assert "pqa-cite-1-1" in final.chat[-1]["content"]  # links name their own turn


def test_off_topic_question_is_refused_with_closest_passages(ui: ChatUI) -> None:
    final = list(ui.respond(OFF_TOPIC, []))[-1]
    answer = final.turns[-1]["answer"]
    assert answer["abstained"] and not answer["citations"]
    assert NOT_FOUND in final.chat[-1]["content"]
    assert NOT_FOUND in final.sources and final.sources.count('class="pqa-card"') >= 1
    assert "<mark>" not in final.sources
    assert NOT_FOUND in plain_text(answer)


@pytest.mark.parametrize(
    ("question", "message"),
    [
        ("", "Please type a question."),
        ("   \n\t ", "Please type a question."),
        ("x" * 100_000, "100,000 characters long"),
    ],
)
def test_bad_questions_get_a_clear_message(ui: ChatUI, question: str, message: str) -> None:
    views = list(ui.respond(question, []))
    final = views[-1]
    assert message in final.status and 'role="alert"' in final.status
    assert final.turns == [] and final.chat == []
    assert final.question == question  # kept so it can be fixed
    assert "Traceback" not in final.status


def test_missing_index_gets_a_clear_message(tmp_path: Path, qa: Any) -> None:
    settings = Settings(index_dir=tmp_path / "nothing", data_dir=tmp_path, judge="off")
    ui = ChatUI(Assistant(settings=settings, embeddings=qa.embeddings))
    final = list(ui.respond(FIRST_QUESTION, []))[-1]
    assert "Index documents first" in final.status and final.turns == []
    assert ui.documents_view().table == []


def test_missing_chroma_server_gets_a_clear_message(tmp_path: Path, qa: Any) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    ui = ChatUI(
        Assistant(
            settings=Settings(chroma_url=url, data_dir=tmp_path, judge="off"),
            embeddings=qa.embeddings,
        )
    )
    final = list(ui.respond(FIRST_QUESTION, []))[-1]
    assert f"Cannot reach the Chroma server at {url}" in final.status
    assert "Cannot reach the Chroma server" in ui.documents_view().status


# --- conversation controls --------------------------------------------------------------------


def test_stop_marks_the_unfinished_answer_and_new_chat_clears(
    first: list[ChatView], ui: ChatUI
) -> None:
    pending = first[0].turns  # as the page was when the stream was cancelled
    chat, turns = ui.stop(pending)
    assert turns[-1]["stopped"] and "Stopped." in chat[-1]["content"]
    cleared = ui.new_chat()
    assert cleared.chat == [] and cleared.turns == [] and cleared.plain == ""


def test_copy_text_has_the_answer_and_its_sources(first: list[ChatView]) -> None:
    text = first[-1].plain
    answer = first[-1].turns[-1]["answer"]
    assert text.startswith(answer["answer"])
    for c in answer["citations"]:
        assert f"[{c['n']}] {c['title']} § {c['section']}" in text
        assert f'"{c["quote"]}"' in text
    assert "<" not in text.replace("<", "") and "&#" not in text


def test_feedback_is_recorded_as_json_lines(
    first: list[ChatView], ui: ChatUI, ui_qa: Assistant
) -> None:
    turns = first[-1].turns
    assert "saved" in ui.feedback(turns, 1, True)
    assert "saved" in ui.feedback(turns, [1, 0], "Dislike")
    rows = [json.loads(line) for line in ui_qa.settings.feedback_path.read_text().splitlines()]
    assert [r["rating"] for r in rows[-2:]] == ["up", "down"]
    row = rows[-1]
    answer = turns[0]["answer"]
    assert row["question"] == FIRST_QUESTION and row["answer"] == answer["answer"]
    assert row["citations"] == answer["citations"]
    assert "Only a finished answer" in ui.feedback(first[0].turns, 1, True)


# --- documents --------------------------------------------------------------------------------


def test_upload_indexes_at_once_and_hostile_text_stays_inert(
    ui: ChatUI, ui_qa: Assistant, tmp_path: Path
) -> None:
    seen: list[tuple[int, int, str]] = []
    view = ui.upload([str(write_hostile(tmp_path))], progress=lambda *a: seen.append(a))
    assert "searchable now" in view.status and seen
    assert HOSTILE_NAME in [row[1] for row in view.table]
    assert (HOSTILE_NAME, HOSTILE_NAME) in view.remove_choices.choices
    assert (ui.upload_dir / HOSTILE_NAME).is_file()

    final = list(ui.respond(HOSTILE_QUESTION, []))[-1]
    answer = final.turns[-1]["answer"]
    assert "42 percent" in answer["answer"]
    assert answer["citations"][0]["source"] == HOSTILE_NAME
    assert "onerror" in answer["answer"]  # the markup is in the answer, as text
    assert not _LIVE_MARKUP.search(final.chat[-1]["content"])  # Markdown: no tags, no links
    assert not _LIVE_TAG.search(final.sources)  # HTML: no tags
    assert "&lt;img src=x onerror=" in final.sources
    assert "&lt;script&gt;" in final.sources  # the title, escaped

    removed = ui.remove(HOSTILE_NAME)
    assert "Removed" in removed.status
    assert HOSTILE_NAME not in [row[1] for row in removed.table]
    assert not (ui.upload_dir / HOSTILE_NAME).exists()
    assert "not indexed" in ui.remove(HOSTILE_NAME).status


def test_upload_refuses_wrong_types_and_oversized_files(ui: ChatUI, tmp_path: Path) -> None:
    exe = tmp_path / "tool.exe"
    exe.write_bytes(b"MZ")
    big = tmp_path / "big.txt"
    big.write_text("policy " * 200_000)  # 1.4 MB; this app's limit is 1 MB
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    status = ui.upload([str(exe), str(big), str(empty)]).status
    assert ".exe files are not supported" in status
    assert "over the 1 MB limit" in status
    assert "empty.txt" in status and 'role="alert"' in status
    assert "Choose one or more files" in ui.upload([]).status


# --- the served app ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(ui_qa: Assistant) -> Iterator[str]:
    with running_app(ui_qa) as url:
        yield url


def test_api_returns_answer_to_dict(served: str, ui_qa: Assistant) -> None:
    client = Client(served, verbose=False)
    got = client.predict(FIRST_QUESTION, [], api_name=f"/{API_NAME}")
    assert got == ui_qa.ask(FIRST_QUESTION).to_dict()
    # A follow-up that needs the turn before it (decision 074): the history reaches the answer.
    council = ui_qa.ask(COUNCIL).answer
    follow = client.predict(MEMBERS, json.dumps([[COUNCIL, council]]), api_name="/ask")
    assert COUNCIL in follow["retrieval_query"] and "20 specialists" in follow["answer"]
    api = client.view_api(print_info=False, return_format="dict")
    assert f"/{API_NAME}" in api["named_endpoints"]
    # /ask, /retrieve, /documents; the page's own events stay private
    assert list(api["named_endpoints"]) == [f"/{name}" for name in API_NAMES]


def test_api_takes_history_as_chat_messages(served: str, ui_qa: Assistant) -> None:
    client = Client(served, verbose=False)
    first = ui_qa.ask(COUNCIL).answer
    follow_up = MEMBERS
    messages = [
        {"role": "system", "content": "You answer from policy documents."},
        {"role": "user", "content": COUNCIL},
        {"role": "assistant", "content": [{"type": "text", "text": first}]},
    ]
    by_messages = client.predict(follow_up, messages, api_name="/ask")
    assert by_messages == client.predict(follow_up, [[COUNCIL, first]], api_name="/ask")
    assert COUNCIL in by_messages["retrieval_query"] and "20 specialists" in by_messages["answer"]
    with pytest.raises(Exception, match="history must be a JSON list") as caught:
        client.predict(follow_up, [{"role": "critic", "content": "x"}], api_name="/ask")
    assert "role 'critic'" in str(caught.value) and "Traceback" not in str(caught.value)


def test_api_retrieve_returns_the_passages_ask_answers_from(served: str, ui_qa: Assistant) -> None:
    client = Client(served, verbose=False)
    got = client.predict(FIRST_QUESTION, [], api_name="/retrieve")
    assert got == [p.to_dict() for p in ui_qa.retrieve(FIRST_QUESTION)]
    assert got == ui_qa.ask(FIRST_QUESTION).to_dict()["passages"]
    text = ui_qa.document_text(SEED_SOURCE)
    assert all(text[p["start"] : p["end"]] == p["text"] for p in got)

    follow_up = "When was it re-established?"
    history = [{"role": "user", "content": FIRST_QUESTION}]
    two = client.predict(follow_up, history, 2, SEED_SOURCE[:7], api_name="/retrieve")
    assert two == [p.to_dict() for p in ui_qa.retrieve(follow_up, [(FIRST_QUESTION, "")], k=2)]
    assert len(two) == 2 and "2005" in " ".join(p["text"] for p in two)
    for bad in (0, 1000, "3"):
        with pytest.raises(Exception, match="k must be a whole number from 1 to 30"):
            client.predict(FIRST_QUESTION, [], bad, api_name="/retrieve")
    with pytest.raises(Exception, match="Please type a question"):
        client.predict("  ", [], api_name="/retrieve")


def test_api_documents_lists_the_index(served: str, ui_qa: Assistant) -> None:
    docs = Client(served, verbose=False).predict(api_name="/documents")
    assert docs == [asdict(d) for d in ui_qa.documents()]
    assert SEED_SOURCE in [d["source"] for d in docs]
    assert set(docs[0]) == {"source", "title", "chunks", "indexed_at", "language"}


@pytest.mark.parametrize(
    ("history", "pairs"),
    [
        (None, []),
        ("", []),
        ([["q1", "a1"], ("q2", None)], [("q1", "a1"), ("q2", "")]),
        ('[["q1", "a1"]]', [("q1", "a1")]),
        (
            [
                {"role": "assistant", "content": "Hello! Ask me about the documents."},
                {"role": "user", "content": "q1"},
                {"role": "assistant", "content": "a1"},
                {"role": "assistant", "content": "a1, more"},
                {"role": "system", "content": "ignored"},
                {"role": "user", "content": [{"type": "text", "text": "q2"}, {"type": "image"}]},
                {"role": "user", "content": "q3"},
                {"role": "assistant", "content": "a3"},
            ],
            [("q1", "a1\n\na1, more"), ("q2", ""), ("q3", "a3")],
        ),
        ('[{"role": "user", "content": "q1"}]', [("q1", "")]),
    ],
)
def test_history_pairs_reads_pairs_and_messages(history: Any, pairs: list[Any]) -> None:
    assert history_pairs(history) == pairs


@pytest.mark.parametrize(
    ("history", "message"),
    [
        ("[[1, 2", "Expecting"),
        ({"role": "user"}, "must be a list, got dict"),
        ([["q", "a", "extra"]], "history turn 1 must be a \\[question, answer\\] pair"),
        ([{"role": "bot", "content": "x"}], "role 'bot'"),
        ([{"role": "user", "content": 3}], "content must be text"),
    ],
)
def test_history_pairs_says_what_is_wrong(history: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        history_pairs(history)


def test_api_errors_are_messages_not_tracebacks(served: str) -> None:
    client = Client(served, verbose=False)
    with pytest.raises(Exception, match="Please type a question") as caught:
        client.predict("   ", [], api_name="/ask")
    assert "Traceback" not in str(caught.value)


# --- choosing the answer backend --------------------------------------------------------------


@pytest.fixture(scope="module")
def llm_qa(
    corpus_index: Path, qa: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Assistant]:
    """An assistant configured for an OpenAI-compatible server that is not running."""
    assistant = private_assistant(
        corpus_index,
        qa,
        tmp_path_factory.mktemp("llm-ui"),
        llm="openai",
        llm_base_url=f"http://127.0.0.1:{free_port()}/v1",  # nothing listens there
        llm_timeout=5,
    )
    yield assistant
    assistant.close()


def test_answer_with_lists_the_backends(llm_qa: Assistant, ui: ChatUI) -> None:
    llm_ui = ChatUI(llm_qa)
    model = llm_qa.settings.llm_model
    assert llm_ui.backend_choices() == [
        (EXTRACTIVE_LABEL, "none"),
        (f"LLM: openai {model}", "openai"),
    ]
    selector = llm_ui.backend_selector()
    assert selector.label == "Answer with"
    assert selector.value == "openai" and selector.visible
    assert [value for _, value in selector.choices] == llm_qa.backends
    # With no LLM configured there is nothing to choose: the dropdown stays hidden.
    only = ui.backend_selector()
    assert only.choices == [(EXTRACTIVE_LABEL, "none")]
    assert only.value == "none" and not only.visible


def test_failed_llm_falls_back_to_quotes_with_a_note(llm_qa: Assistant) -> None:
    final = list(ChatUI(llm_qa).respond(FIRST_QUESTION, [], "openai"))[-1]
    answer = final.turns[-1]["answer"]
    assert answer["backend"] == "extractive"
    assert any(note.startswith("LLM failed") for note in answer["notes"])
    assert "1973" in answer["answer"] and answer["citations"]
    message = final.chat[-1]["content"]
    assert "Note: LLM failed" in message
    assert "Answered with: extractive" in message
    assert "Note: LLM failed" in final.plain
    assert final.status == ""


def test_a_question_the_documents_do_not_answer_never_reaches_the_llm(llm_qa: Assistant) -> None:
    # Nothing listens at the configured server: had the LLM been asked, the answer would carry
    # an "LLM failed" note. The calibrated refusal decided first.
    final = list(ChatUI(llm_qa).respond("What is the capital of Japan?", [], "openai"))[-1]
    answer = final.turns[-1]["answer"]
    assert answer["abstained"] and answer["citations"] == []
    assert answer["answer"] == REFUSAL
    assert GATED_NOTE in answer["notes"]
    assert not any("LLM failed" in note for note in answer["notes"])
    assert "refused before the LLM was asked" in final.chat[-1]["content"]


def test_extractive_choice_skips_the_llm(llm_qa: Assistant) -> None:
    final = list(ChatUI(llm_qa).respond(FIRST_QUESTION, [], "none"))[-1]
    answer = final.turns[-1]["answer"]
    assert answer["backend"] == "extractive" and answer["notes"] == []
    assert "1973" in answer["answer"] and answer["citations"]
    assert "LLM failed" not in final.chat[-1]["content"]
    assert "Answered with: extractive" in final.chat[-1]["content"]


def test_unknown_backend_gets_a_clear_message(llm_qa: Assistant) -> None:
    final = list(ChatUI(llm_qa).respond(FIRST_QUESTION, [], "gpt-9"))[-1]
    status = html.unescape(final.status)
    assert "Unknown answer backend 'gpt-9'" in status and "none, openai" in status
    assert final.turns == [] and final.question == FIRST_QUESTION


def test_api_takes_an_optional_backend(llm_qa: Assistant) -> None:
    with running_app(llm_qa) as url:
        client = Client(url, verbose=False)
        failed = client.predict(FIRST_QUESTION, [], "openai", api_name="/ask")
        assert failed["backend"] == "extractive" and failed["citations"]
        assert any(note.startswith("LLM failed") for note in failed["notes"])
        quotes = client.predict(FIRST_QUESTION, [], "none", api_name="/ask")
        assert quotes["notes"] == [] and quotes["citations"]
        assert quotes["answer"] == failed["answer"]
        default = client.predict(FIRST_QUESTION, [], api_name="/ask")  # the configured: openai
        assert any(note.startswith("LLM failed") for note in default["notes"])
        with pytest.raises(Exception, match="Unknown answer backend") as caught:
            client.predict(FIRST_QUESTION, [], "gpt-9", api_name="/ask")
        assert "Traceback" not in str(caught.value)
        api = client.view_api(print_info=False, return_format="dict")
        params = api["named_endpoints"]["/ask"]["parameters"]
        assert [p["parameter_name"] for p in params] == ["question", "history", "backend"]
        assert params[2]["parameter_has_default"]


def test_password_protection_from_settings(corpus_index: Path, qa: Any, tmp_path: Path) -> None:
    assistant = private_assistant(corpus_index, qa, tmp_path, auth="reader:s3cret-pass")
    with running_app(assistant) as url:
        with pytest.raises(ValueError):
            Client(url, verbose=False).predict(FIRST_QUESTION, [], api_name="/ask")
        client = Client(url, auth=("reader", "s3cret-pass"), verbose=False)
        assert client.predict(FIRST_QUESTION, [], api_name="/ask")["citations"]


@pytest.mark.parametrize(
    ("host", "auth", "warned"),
    [
        ("127.0.0.1", None, False),
        ("localhost", None, False),
        ("::1", None, False),
        ("0.0.0.0", None, True),
        ("192.168.1.20", "user:pw", True),
    ],
)
def test_binding_beyond_loopback_warns(host: str, auth: str | None, warned: bool) -> None:
    message = exposure_warning(Settings(host=host, auth=auth), share_warning=True)
    assert (message is not None) == warned
    if message:
        assert "reachable from other machines" in message
        assert ("POLICY_QA_AUTH" in message) == (auth is None)
