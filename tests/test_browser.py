"""The web chat in Debian's Chromium (headless, through Playwright) against the real app.

Screenshots land in ``test-artifacts/screenshots/`` at laptop (1280×800) and phone (390×844)
widths. Chromium comes from ``apt-get install chromium``; Playwright's own browser download
is never used.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from policy_qa import Assistant
from policy_qa.ui import NOT_FOUND

from .conftest import REPO
from .ui_fixtures import (
    FIRST_QUESTION,
    HOSTILE_NAME,
    HOSTILE_QUESTION,
    OFF_TOPIC,
    private_assistant,
    running_app,
    write_hostile,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 60_000
BOT = "#pqa-chat [data-testid=bot]"
DIALOGS: list[str] = []


@pytest.fixture(scope="module")
def app_qa(
    corpus_index: Path, qa: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Assistant]:
    assistant = private_assistant(corpus_index, qa, tmp_path_factory.mktemp("browser"))
    yield assistant
    assistant.close()


@pytest.fixture(scope="module")
def url(app_qa: Assistant) -> Iterator[str]:
    with running_app(app_qa) as served:
        yield served


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's Chromium is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def open_page(browser: Any, url: str, viewport: dict[str, int]) -> Any:
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)

    # Any dialog would mean script ran from document or question text.
    def on_dialog(dialog: Any) -> None:
        DIALOGS.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(url)
    page.wait_for_selector("#pqa-question textarea")
    return page


def ask(page: Any, question: str, until: str | None = None) -> Any:
    """Type a question, press Enter and wait for the answer; returns its message.

    The answer streams: its text arrives before the final render (citation links, the
    "not found" line). ``until`` waits for a text that only the final render has.
    """
    before = page.locator(BOT).count()
    page.fill("#pqa-question textarea", question)
    page.keyboard.press("Enter")
    answer = page.locator(BOT).nth(before)
    answer.wait_for()
    page.wait_for_function(
        """([sel, i, until]) => {
            const m = document.querySelectorAll(sel)[i];
            if (!m || m.innerText.includes('Searching the documents')) return false;
            return !until || m.innerText.includes(until);
        }""",
        arg=[BOT, before, until],
    )
    return answer


def shot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def test_ask_see_answer_and_click_a_citation_laptop(
    browser: Any, url: str, app_qa: Assistant
) -> None:
    expected = app_qa.ask(FIRST_QUESTION)
    page = open_page(browser, url, LAPTOP)
    assert page.get_by_text("How far is Daejeon from Seoul?").count()  # examples for newcomers
    answer = ask(page, FIRST_QUESTION)
    assert "1973" in answer.inner_text()
    assert answer.locator("a.pqa-cite").count() >= len(expected.citations)

    # Click the last marker (the panel opens on [1], so with several this shows a change).
    last = expected.citations[-1]
    answer.locator("a.pqa-cite", has_text=f"[{last.n}]").first.click()
    mark = page.locator("#pqa-sources .pqa-selected mark")
    page.wait_for_function(
        "q => document.querySelector('#pqa-sources .pqa-selected mark')?.innerText === q",
        arg=last.quote,
    )
    assert mark.count() == 1
    assert last.section in page.locator("#pqa-sources").inner_text()
    shot(page, "laptop-answer-citation")

    # A follow-up in the same conversation, then thumbs up, then a new chat.
    follow = ask(page, "When was it re-established?")
    assert "2005" in follow.inner_text()
    page.locator("#pqa-chat button[aria-label=Like]").last.click()
    path = app_qa.settings.feedback_path
    page.wait_for_function(
        "() => document.querySelector('#pqa-status')?.innerText.includes('saved')"
    )
    row = json.loads(path.read_text(encoding="utf-8").splitlines()[-1])
    assert row["rating"] == "up" and row["question"] == "When was it re-established?"
    page.get_by_role("button", name="New chat").click()
    page.wait_for_function(f"() => document.querySelectorAll('{BOT}').length === 0")
    page.context.close()


def test_a_korean_conversation_reads_in_korean(browser: Any, url: str, app_qa: Assistant) -> None:
    """Issue 20.3: a standalone Korean question after an English one is answered as if it were
    asked alone, and the page shows Korean glyphs (a CJK font: ``make test`` installs
    fonts-noto-cjk), not empty boxes."""
    fonts = subprocess.run(["fc-list", ":lang=ko"], capture_output=True, text=True, check=False)
    assert fonts.stdout.strip(), "no Korean font: apt-get install fonts-noto-cjk"
    korean = "대덕연구단지는 언제 설립되었나요?"
    alone = app_qa.ask(korean)
    page = open_page(browser, url, LAPTOP)
    ask(page, "How many businesses should each National Innovation Cluster attract?")
    answer = ask(page, korean)
    assert "1973" in answer.inner_text() and "1973" in alone.answer
    assert korean in page.locator("#pqa-chat").inner_text()
    shot(page, "laptop-korean-conversation")
    page.context.close()


def test_phone_width_citation_and_copy(browser: Any, url: str) -> None:
    page = open_page(browser, url, PHONE)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    answer = ask(page, "How far is Daejeon from Seoul?")
    assert "164 kilometers" in answer.inner_text()
    answer.locator("a.pqa-cite").first.click()
    mark = page.locator("#pqa-sources .pqa-selected mark")
    mark.wait_for()
    assert "164 kilometers" in mark.inner_text()
    page.wait_for_timeout(600)  # the panel scrolls into view
    assert mark.is_visible()
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1] + 1, f"page is wider than the phone: {width}"
    shot(page, "phone-answer-citation")

    page.get_by_role("button", name="Copy answer + sources").click()
    page.wait_for_timeout(300)
    copied = page.evaluate("navigator.clipboard.readText()")
    assert "164 kilometers" in copied and "Sources:" in copied and "<" not in copied
    page.context.close()


def test_off_topic_question_is_refused(browser: Any, url: str) -> None:
    page = open_page(browser, url, LAPTOP)
    # The refusal's text streams first; the final render adds the "not found" line.
    answer = ask(page, OFF_TOPIC, until=NOT_FOUND)
    assert NOT_FOUND in answer.inner_text()
    note = page.locator("#pqa-sources .pqa-notfound")
    note.wait_for()
    assert NOT_FOUND in note.inner_text()
    assert page.locator("#pqa-sources .pqa-card").count() >= 1
    shot(page, "laptop-refusal")
    page.context.close()


def test_bad_questions_get_messages_not_tracebacks(browser: Any, url: str) -> None:
    page = open_page(browser, url, PHONE)
    page.get_by_role("button", name="Send").click()
    page.wait_for_function(
        "() => document.querySelector('#pqa-status')?.innerText.includes('Please type a question')"
    )
    page.fill("#pqa-question textarea", "x" * 100_000)
    page.get_by_role("button", name="Send").click()
    page.wait_for_function(
        "() => document.querySelector('#pqa-status')?.innerText.includes('100,000 characters')"
    )
    assert "Traceback" not in page.locator("body").inner_text()
    assert page.locator(BOT).count() == 0
    page.context.close()


def test_upload_a_hostile_document_ask_about_it_and_it_stays_inert(
    browser: Any, url: str, tmp_path: Path
) -> None:
    page = open_page(browser, url, LAPTOP)
    page.get_by_role("tab", name="Documents").click()
    page.locator("#pqa-upload input[type=file]").set_input_files(str(write_hostile(tmp_path)))
    page.wait_for_function(
        "() => document.querySelector('#pqa-doc-status')?.innerText.includes('searchable now')"
    )
    table = page.locator("#pqa-documents")
    page.wait_for_function(
        "() => document.querySelector('#pqa-documents')?.innerText.includes('zephyr-levy.txt')"
    )
    assert "Zephyr Quarry <script>window.__pwned = 1</script> Levy Notice" in table.inner_text()
    shot(page, "laptop-documents-upload")

    # The question carries markup too; it must show as typed.
    hostile_q = HOSTILE_QUESTION + ' <img src=x onerror="window.__pwned = 5">'
    answer = ask(page, hostile_q)
    text = answer.inner_text()
    assert "42 percent" in text and '<img src=x onerror="window.__pwned = 2">' in text
    assert hostile_q in page.locator("#pqa-chat [data-testid=user]").last.inner_text()
    answer.locator("a.pqa-cite").first.click()
    mark = page.locator("#pqa-sources .pqa-selected mark")
    mark.wait_for()
    assert '<img src=x onerror="window.__pwned = 2">' in mark.inner_text()
    passage = page.locator("#pqa-sources .pqa-selected .pqa-passage").inner_text()
    assert "[file an appeal](javascript:window.__pwned=3)" in passage
    page.wait_for_timeout(500)  # give any injected handler the chance to run

    assert page.evaluate("window.__pwned") is None
    assert DIALOGS == []
    for selector in ('img[src="x"]', "script:not([src])", 'a[href^="javascript"]'):
        injected = page.locator(f"#pqa-chat {selector}, #pqa-sources {selector}")
        assert injected.count() == 0, selector
    assert page.locator("#pqa-documents script, #pqa-documents img").count() == 0
    shot(page, "laptop-hostile-document")

    # Remove it again from the documents view.
    page.get_by_role("tab", name="Documents").click()
    page.locator("#pqa-remove input").click()
    page.get_by_role("option", name=HOSTILE_NAME).click()
    page.get_by_role("button", name="Remove", exact=True).click()
    page.wait_for_function(
        "() => document.querySelector('#pqa-doc-status')?.innerText.includes('Removed')"
    )
    assert HOSTILE_NAME not in table.inner_text()
    page.context.close()


@pytest.mark.llm
def test_the_page_says_when_the_answerability_check_is_broken(
    browser: Any, corpus_index: Path, app_qa: Assistant, tmp_path: Path
) -> None:
    """The start-up model check's line: "starting" at first, then the reason it failed (a
    worker that cannot answer within judge_timeout), refreshed by the page's timer."""
    from policy_qa.doctor import ModelCheck
    from policy_qa.judge import judge_available
    from policy_qa.ui import launch

    if not judge_available():
        pytest.skip("needs policy-qa[llm]")
    qa = private_assistant(corpus_index, app_qa, tmp_path)
    check = ModelCheck(qa.settings.replace(judge="on", judge_timeout=0.001))
    app = launch(qa, block=False, quiet=True, check=check)
    try:
        page = open_page(browser, f"http://127.0.0.1:{qa.settings.port}/", LAPTOP)
        page.wait_for_function(
            "() => document.querySelector('#pqa-check')?.innerText.includes('Starting')"
        )
        check.start()
        page.wait_for_function(
            "() => document.querySelector('#pqa-check')?.innerText.includes('unavailable')"
        )
        text = page.locator("#pqa-check").inner_text()
        assert "The answerability check is unavailable: the model worker" in text
        assert "evidence scores alone" in text
        shot(page, "laptop-check-unavailable")
        page.context.close()
    finally:
        app.close()
        qa.close()
