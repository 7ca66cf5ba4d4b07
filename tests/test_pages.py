"""Page-level citations: a generated PDF and a Word file with page breaks, indexed through the
real pipeline (real models, real Chroma in tmp_path), cite the pages their quotes are on; the
page map never changes the cleaned text (docs/decisions/093-page-level-citations.md)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docx
import pytest
from docx.enum.text import WD_BREAK
from docx.oxml import OxmlElement
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from policy_qa import Assistant, Settings
from policy_qa.ingest import chunk_document, load_file
from policy_qa.ingest.pages import page_starts
from policy_qa.langchain import PolicyRetriever
from policy_qa.types import Chunk, Citation, Passage, page_label, page_span
from policy_qa.ui import ChatUI

HEADER = "Staff Travel Policy"
# Each page of the PDF, as lines; a running header and a page number frame every page.
PDF_PAGES = [
    [
        "Scope",
        "This policy applies to every employee who travels for work, whether in the",
        "country or abroad, and to contractors whose contracts say so.",
    ],
    [
        "Booking",
        "Flights are booked through the travel desk at least fourteen days ahead.",
        "Employees travelling for more than six hours may book business class when",
        "their manager approves it in writing before the booking is made, and the",
    ],
    [
        "approval is kept with the receipts for seven years after the journey ends.",
        "Meal allowance",
        "Employees travelling abroad receive a daily meal allowance of 85 euros.",
        "The allowance is paid with the next salary after the expense claim.",
    ],
    [
        "Insurance",
        "Every journey is covered by the company's travel insurance from door to door.",
    ],
]
SPANNING = "their manager approves it in writing before the booking is made, and the approval"
MEALS = "What is the daily meal allowance for travel abroad?"
LEAVE = "How many weeks of parental leave do parents receive?"


def write_pdf(path: Path) -> Path:
    pdf = canvas.Canvas(str(path), pagesize=A4)
    for number, lines in enumerate(PDF_PAGES, start=1):
        y = 800
        for line in [HEADER, "", *lines]:
            pdf.drawString(60, y, line)
            y -= 16
        pdf.drawString(280, 60, f"Page {number} of {len(PDF_PAGES)}")
        pdf.showPage()
    pdf.save()
    return path


def write_docx(path: Path) -> Path:
    document = docx.Document()
    document.add_heading("Family Leave Guide", 0)
    document.add_paragraph("This guide explains the kinds of leave for families.")
    document.add_paragraph().add_run().add_break(WD_BREAK.PAGE)
    document.add_heading("Parental leave", 1)
    document.add_paragraph("Parents receive 16 weeks of parental leave on full pay.")
    split = document.add_paragraph("Leave starts on the day the child is born or adopted, ")
    split.add_run().add_break(WD_BREAK.PAGE)
    split.add_run("or on a later day the parent chooses within the first year.")
    document.add_heading("Carers", 1)
    document.add_paragraph("Carers may take ten days of paid carer leave every year.")
    document.save(str(path))
    return path


@pytest.fixture(scope="module")
def qa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Assistant]:
    folder = tmp_path_factory.mktemp("paged")
    docs = folder / "docs"
    docs.mkdir()
    write_pdf(docs / "travel.pdf")
    write_docx(docs / "leave.docx")
    (docs / "notes.txt").write_text("Office notes\n\nThe office opens at eight.\n", "utf-8")
    settings = Settings(data_dir=folder / "data", index_dir=folder / "index", judge="off")
    assistant = Assistant(settings=settings)
    assistant.index([docs])
    yield assistant
    assistant.close()


# --- the page map ------------------------------------------------------------------------------


def test_page_starts_follow_cleaning_without_changing_text() -> None:
    text = "Intro text goes on\n\nacross pages. (b) Next item.\n\nLast."
    pages = ["Intro text goes on", "  across pages.\nHeader 2", "(b) Next item.", "", "Last.\n4"]
    starts = page_starts(text, pages)
    assert starts == (0, 20, text.index("(b)"), text.index("Last."), text.index("Last."))
    assert page_starts(text, []) == ()
    assert page_starts("One page only.", ["One page only."]) == (0,)


def test_page_span_and_label() -> None:
    pages = ((1, 0), (2, 100), (3, 100), (4, 250))  # page 2 had nothing left after cleaning
    assert page_span(pages, 10, 90) == (1, 1)
    assert page_span(pages, 90, 120) == (1, 3)
    assert page_span(pages, 260, 260) == (4, 4)
    assert page_span((), 0, 10) == (None, None)
    assert [page_label(3), page_label(3, 3), page_label(12, 13), page_label(None)] == [
        "p. 3",
        "p. 3",
        "pp. 12–13",
        "",
    ]


def test_pdf_pages_are_mapped_and_cleaning_is_kept(tmp_path: Path) -> None:
    doc = load_file(write_pdf(tmp_path / "travel.pdf"))
    assert HEADER not in doc.text and "Page 2 of 4" not in doc.text  # cleaning still runs
    assert SPANNING in doc.text  # the paragraph still runs on across the page break
    assert len(doc.page_starts) == 4
    for number, lines in enumerate(PDF_PAGES, start=1):
        for line in lines:
            at = doc.text.index(line[:40])
            assert page_span(doc.pages, at, at + 40) == (number, number), line
    chunks = chunk_document(doc, size=400, min_size=50)
    spanning = [c for c in chunks if SPANNING in c.text]
    assert [(c.page, c.page_end) for c in spanning] == [(2, 3)]
    for chunk in chunks:
        assert chunk.text == doc.text[chunk.start : chunk.end]


def test_docx_page_breaks_are_mapped(tmp_path: Path) -> None:
    doc = load_file(write_docx(tmp_path / "leave.docx"))
    assert len(doc.page_starts) == 3

    def page(phrase: str) -> int | None:
        at = doc.text.index(phrase)
        return page_span(doc.pages, at, at + len(phrase))[0]

    assert page("This guide explains") == 1
    assert page("Parents receive 16 weeks") == 2
    assert page("Leave starts on the day") == 2
    assert page("or on a later day") == 3
    assert page("Carers may take") == 3


def test_docx_pages_follow_words_own_marks_when_it_left_them(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_paragraph("Page one says hello.")
    document.add_paragraph().add_run().add_break(WD_BREAK.PAGE)
    for text in ("Page two says goodbye.", "Page three says thanks."):
        run = document.add_paragraph().add_run(text)
        # Where Word broke the page when it last saved: it writes one after an explicit break too.
        run._r.insert(0, OxmlElement("w:lastRenderedPageBreak"))
    document.save(str(tmp_path / "rendered.docx"))
    doc = load_file(tmp_path / "rendered.docx")
    assert doc.page_starts == (0, doc.text.index("Page two"), doc.text.index("Page three"))


def test_sources_without_pages_have_none(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# Rules\n\nDoors close at nine.\n", "utf-8")
    document = docx.Document()
    document.add_paragraph("A Word file with no page breaks at all.")
    document.save(str(tmp_path / "b.docx"))
    for name in ("a.md", "b.docx"):
        doc = load_file(tmp_path / name)
        assert doc.page_starts == ()
        assert all(c.page is None and c.pages == () for c in chunk_document(doc))


# --- through the real pipeline -----------------------------------------------------------------


def test_pdf_answer_cites_its_page(qa: Assistant) -> None:
    answer = qa.ask(MEALS)
    assert not answer.abstained
    cited = [c for c in answer.citations if "85 euros" in c.quote]
    assert cited and (cited[0].page, cited[0].page_end) == (3, 3)
    for c in answer.citations:
        assert qa.document_text(c.source)[c.start : c.end] == c.quote  # quotes stay verbatim
    row = answer.to_dict()["citations"][answer.citations.index(cited[0])]
    assert (row["page"], row["page_end"]) == (3, 3)


def test_a_passage_across_a_page_break_has_both_pages(qa: Assistant) -> None:
    passages = qa.retrieve("Who approves business class flights, and where is approval kept?")
    top = passages[0]
    assert SPANNING in top.focus_text
    assert (top.narrowed().page, top.narrowed().page_end) == (2, 3)
    assert top.page is not None and top.page <= 2 and top.page_end is not None
    assert top.page_end >= 3  # a window holds its neighbours' pages too
    for p in passages:
        if p.chunk.source == "travel.pdf":
            assert p.to_dict()["page"] == p.page is not None
            assert p.to_dict()["page_end"] == p.page_end


def test_docx_answer_cites_its_page(qa: Assistant) -> None:
    answer = qa.ask(LEAVE)
    assert not answer.abstained
    assert any("16 weeks" in c.quote and c.page == 2 for c in answer.citations)


def test_a_source_without_pages_cites_none(qa: Assistant) -> None:
    answer = qa.ask("When does the office open?")
    assert answer.citations and answer.citations[0].source == "notes.txt"
    assert answer.citations[0].to_dict()["page"] is None
    assert all(p.page is None for p in qa.retrieve("When does the office open?", within="notes"))


def test_web_api_and_langchain_carry_pages(qa: Assistant) -> None:
    ui = ChatUI(qa)
    asked = ui.api_ask(MEALS)
    assert any(c["page"] == 3 for c in asked["citations"] if "85 euros" in c["quote"])
    retrieved = ui.api_retrieve(MEALS, k=2)
    assert retrieved[0]["source"] == "travel.pdf" and retrieved[0]["page"] is not None
    docs = PolicyRetriever(assistant=qa, k=2).invoke(MEALS)
    assert docs[0].metadata["page"] == retrieved[0]["page"]
    assert docs[0].metadata["page_end"] == retrieved[0]["page_end"]


def test_citation_pages_come_from_its_own_span() -> None:
    chunk = Chunk("a.pdf", "A", "", 90, 160, "x" * 70, pages=((1, 0), (2, 120)))
    passage = Passage(chunk, 1.0)
    assert (passage.page, passage.page_end) == (1, 2)
    assert Citation.quoting(1, chunk, 125, 150, "x" * 25).page == 2
    assert Citation.quoting(1, chunk, 95, 110, "x" * 15).to_dict()["page_end"] == 1
