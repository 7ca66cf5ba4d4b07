"""Ingestion: real files of every supported format in ``tmp_path``, and offset invariants."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import docx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

import policy_qa.ingest as ingest
from policy_qa.errors import DocumentError
from policy_qa.ingest import (
    SUPPORTED_SUFFIXES,
    chunk_document,
    clean_text,
    detect_language,
    load_file,
    load_paths,
    split_sentences,
)
from policy_qa.ingest.clean import assemble, plain_blocks
from policy_qa.text import HANGUL_LETTER
from policy_qa.types import Chunk, Document

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
SEED = CORPUS / "daedeok-and-national-innovation-cluster.txt"


# --- helpers -----------------------------------------------------------------------------------


def write_pdf(path: Path, pages: list[list[str]], title: str | None = None) -> Path:
    pdf = canvas.Canvas(str(path), pagesize=A4)
    if title:
        pdf.setTitle(title)
    for lines in pages:
        y = 800
        for line in lines:
            pdf.drawString(60, y, line)
            y -= 16
        pdf.showPage()
    pdf.save()
    return path


def write_docx(path: Path) -> Path:
    document = docx.Document()
    document.core_properties.title = "Regional Policy Memo"
    document.add_heading("Regional Policy Memo", 0)
    document.add_paragraph("This memo explains the regional development investment agreement.")
    document.add_heading("Budget", 1)
    document.add_paragraph("Local governments subsidise budgets for several years.")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text = "Region"
    table.cell(0, 1).text = "Industry"
    table.cell(1, 0).text = "Daejeon"
    table.cell(1, 1).text = "Biotechnology"
    document.add_paragraph("Funding follows the agreement.", style="List Bullet")
    document.save(str(path))
    return path


HTML = """<!DOCTYPE html>
<html><head><title>Cluster News</title><script>var token = "SECRET-TOKEN";</script>
<style>.x { color: red }</style></head>
<body><nav>Home | About | Contact</nav><header>Site header text</header>
<main>
<h1>Innovation Cluster</h1>
<p>The cluster <a href="javascript:alert(1)">connects</a> key regional
   entities.<img src="x" onerror="alert('XSS')"></p>
<div>Second <b>paragraph</b> here.<br>On a new line.</div>
<!-- a comment that is not text -->
<h2>Details</h2>
<ul><li>First item</li><li>Second item</li></ul>
<table><tr><th>Name</th><th>Value</th></tr><tr><td>Cities</td><td>14</td></tr></table>
<p hidden>hidden text</p><p style="display: none">also hidden</p>
<form><input value="search box"></form>
</main>
<aside>Related sidebar</aside><footer>Copyright footer</footer>
<script>alert("tail script")</script></body></html>
"""

MARKDOWN = """# Markdown **Policy** Guide

Some *emphasis*, a [link text](https://example.org/page) and a [bad link](javascript:alert(1))
on a soft-wrapped line with `code` in it.

## Section Two

- item one
- item [two](http://example.org/two)

| a | b |
|---|---|
| 1 | 2 |

<script>alert("markdown script")</script>
Final paragraph with an autolink <javascript:alert(2)> removed.
"""


def assert_offsets(doc: Document, chunks: list[Chunk]) -> None:
    """Every invariant that citations rely on."""
    text = doc.text
    previous_end = 0
    for chunk in chunks:
        assert 0 <= previous_end <= chunk.start < chunk.end <= len(text)
        assert chunk.text == text[chunk.start : chunk.end]
        assert chunk.text == chunk.text.strip()
        assert (chunk.source, chunk.title, chunk.language) == (doc.source, doc.title, doc.language)
        previous_end = chunk.end
    covered = {i for c in chunks for i in range(c.start, c.end)}
    assert all(ch.isspace() for i, ch in enumerate(text) if i not in covered)
    for section in doc.sections:
        assert 0 <= section.start < section.end <= len(text)
        assert text[section.start :].startswith(section.title)


def assert_within_sections(doc: Document, chunks: list[Chunk]) -> None:
    """A chunk lies inside the section it names and crosses no heading, except the heading
    of a sub-section glued to its parent heading (which has no text of its own)."""
    heading_starts = {s.start for s in doc.sections}
    for chunk in chunks:
        owners = [s for s in doc.sections if s.start <= chunk.start and chunk.end <= s.end]
        if chunk.section:
            assert any(s.title == chunk.section for s in owners)
        else:
            assert not owners
        for start in heading_starts:
            if chunk.start < start < chunk.end:
                before = doc.text[chunk.start : start].split("\n")
                lines = [line for line in before if line.strip()]
                offsets = [doc.text.index(line, chunk.start) for line in lines]
                assert all(o in heading_starts for o in offsets), (chunk, start)


def assert_min_size(doc: Document, chunks: list[Chunk], min_size: int) -> None:
    """A short chunk is alone between the headings around it (a whole short section)."""
    starts = sorted({0, *(s.start for s in doc.sections), len(doc.text)})
    for chunk in chunks:
        if len(chunk.text) >= min_size:
            continue
        low = max(s for s in starts if s <= chunk.start)
        high = min(s for s in starts if s >= chunk.end)
        neighbours = [c for c in chunks if c is not chunk and c.start < high and c.end > low]
        assert not neighbours, (chunk, neighbours)


# --- public surface ----------------------------------------------------------------------------


def test_public_api_is_pinned() -> None:
    assert sorted(ingest.__all__) == sorted(
        [
            "Limits",
            "SUPPORTED_SUFFIXES",
            "chunk_document",
            "clean_text",
            "decode_bytes",
            "detect_language",
            "iter_files",
            "load_file",
            "load_paths",
            "split_sentences",
        ]
    )
    assert SUPPORTED_SUFFIXES == (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx")


# --- the seed: a scraped web article -----------------------------------------------------------


def test_seed_is_cleaned_of_web_furniture() -> None:
    before = hashlib.sha256(SEED.read_bytes()).hexdigest()
    doc = load_file(SEED, CORPUS)
    text = doc.text

    assert "go rss" not in text and "•" not in text
    for label in ("Date", "Sort", "Views"):
        assert f"{label} :" not in text and f"{label}\u00a0:" not in text
    assert "Nation- al" not in text
    assert "(National Innovation Convergence Complex)" in text
    assert "Pyeongtaek" not in text and "Incheon Works to Tackle Unemployment" not in text
    assert text.startswith("Reaching True Innovation through the National Innovation Cluster\n\n")
    assert text.endswith("the potential of various regions in South Korea")
    assert "\n\n\n" not in text and " \n" not in text and "  " not in text
    assert text == clean_text(SEED.read_text(encoding="utf-8"))
    # Loading must never touch the corpus file.
    assert hashlib.sha256(SEED.read_bytes()).hexdigest() == before


def test_seed_metadata_sections_and_chunks() -> None:
    doc = load_file(SEED, CORPUS)
    assert doc.source == "daedeok-and-national-innovation-cluster.txt"
    assert doc.title == "Reaching True Innovation through the National Innovation Cluster"
    assert doc.language == "en"
    assert Path(doc.path).is_absolute()
    assert [s.title for s in doc.sections] == [
        "Reaching True Innovation through the National Innovation Cluster",
        "Daedeok Special Zone for Research and Development",
        "The National Innovation Cluster (National Innovation Convergence Complex)",
    ]
    chunks = chunk_document(doc, size=700, min_size=200)
    assert_offsets(doc, chunks)
    assert_within_sections(doc, chunks)
    assert all(200 <= len(c.text) <= 700 for c in chunks)
    daedeok = [c for c in chunks if c.section.startswith("Daedeok")]
    # The heading travels with the paragraph it heads.
    assert daedeok[0].text.startswith("Daedeok Special Zone for Research and Development\n\n")
    assert "Seoul" in daedeok[0].text


def test_seed_sidecar_is_valid_json() -> None:
    meta = json.loads((CORPUS / (SEED.name + ".meta.json")).read_text(encoding="utf-8"))
    assert meta == {
        "title": "Reaching True Innovation through the National Innovation Cluster",
        "source_kind": "web article",
        "language": "en",
    }


# --- cleaning rules ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("The Nation- al plan.", "The National plan."),
        ("The Nation-\nal plan.", "The National plan."),
        ("pre- and post-war years.", "pre- and post-war years."),
        ("full- or part-time work.", "full- or part-time work."),
        ("a well- known rule.", "a well-known rule."),
        ("the Seoul- Busan line.", "the Seoul- Busan line."),
        ("A  b\u00a0c \t d.  ", "A b c d."),
        ("One.\n\n\n\n\nTwo.", "One.\n\nTwo."),
        ("zero\u200bwidth soft\u00adhyphen.", "zerowidth softhyphen."),
        ("Cafe\u0301 opens.", "Café opens."),
        ("Windows\r\nline\r\n\r\nends.", "Windows line\n\nends."),
        ("Bell\x07 escape\x1b[31m red\x7f.", "Bell escape[31m red."),
        ("C1 \x93quoted\x94 \x9b2J text.", "C1 quoted 2J text."),
        ("One ends.\x85Two starts.", "One ends.\nTwo starts."),
        ("Pay \u202eusd 001\u202c to \u2066A\u2069.", "Pay usd 001 to A."),
    ],
)
def test_clean_text_rules(raw: str, expected: str) -> None:
    assert clean_text(raw) == expected


HOSTILE = "\u202e\x1b[2JHostile Title\x07"
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@pytest.mark.parametrize("suffix", [".txt", ".md", ".html", ".docx"])
def test_controls_and_bidi_never_reach_indexed_text(tmp_path: Path, suffix: str) -> None:
    body = "The fund pays \u202e$100\u202c \x1b[31mto each\x1b[0m city.\x93 Done\u2067.\x07"
    path = tmp_path / f"doc{suffix}"
    filler = "The council reviews the plan every year and reports to the minister. " * 3
    if suffix == ".html":
        path.write_text(f"<title>{HOSTILE}</title><p>{body} {filler}</p><p>Second\x9b line.</p>")
    elif suffix == ".docx":
        document = docx.Document()
        document.core_properties.title = "Hostile \u202eTitle"
        document.add_paragraph("The fund pays \u202e$100\u202c to each \u2066city\u2069.")
        document.save(str(path))
    else:
        path.write_text(f"{body} {filler}\n\nSecond\x9b line.\n", encoding="utf-8")
    (tmp_path / f"doc{suffix}.meta.json").write_text(json.dumps({"title": HOSTILE}))
    doc = load_file(path)
    assert not UNSAFE.search(doc.text) and not UNSAFE.search(doc.title)
    assert doc.title == "[2JHostile Title"
    assert "The fund pays $100" in doc.text
    chunks = chunk_document(doc)
    assert_offsets(doc, chunks)  # every offset is into the cleaned text: quote == text[a:b]
    assert all(not UNSAFE.search(c.text + c.section) for c in chunks)


def test_clean_text_drops_furniture_but_keeps_fields_with_values() -> None:
    raw = (
        "• go rss\n\nShare | Print\n\nDate :\nViews :\n조회수 :\nDate : 2019-06-10\n\n"
        "Summary:\nThe plan starts in June.\n\n"
        "Next article\nBudget Cuts Announced\nA City on the Move"
    )
    assert clean_text(raw) == "Date : 2019-06-10\n\nSummary:\nThe plan starts in June."


def test_clean_text_keeps_short_lines_without_running_text() -> None:
    # With no paragraph of running text, short lines are the content, not trailing links.
    assert clean_text("Agenda\nBudget Review\nClosing Remarks") == (
        "Agenda\nBudget Review\nClosing Remarks"
    )


def test_clean_text_unwraps_hard_wrapped_lines() -> None:
    raw = "The council will\nmeet in June and\nreport in July.\n- a list item\n- another"
    assert clean_text(raw) == (
        "The council will meet in June and report in July.\n- a list item\n- another"
    )


def test_plain_text_headings_nest_and_need_a_following_paragraph() -> None:
    cleaned = clean_text(
        "Policy Title\n\nIntro text here.\n\nPart One\n\nScope\n\nBody of scope.\n\n"
        "Part Two\n\nShort sentence.\n\nClosing text."
    )
    text, sections = assemble(plain_blocks(cleaned))
    assert text == cleaned
    # The title spans everything; "Part One" holds "Scope"; "Part Two" closes "Part One".
    assert [(s.title, text[s.start : s.end].split("\n")[-1]) for s in sections] == [
        ("Policy Title", "Closing text."),
        ("Part One", "Body of scope."),
        ("Scope", "Body of scope."),
        ("Part Two", "Closing text."),
    ]


# --- sentences and language --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        (
            "Dr. Kim met U.S. officials for 3.5 days. They agreed.",
            ["Dr. Kim met U.S. officials for 3.5 days.", "They agreed."],
        ),
        (
            "See No. 5 and e.g. this rule. Then stop.",
            ["See No. 5 and e.g. this rule.", "Then stop."],
        ),
        ('He said "Stop." Then he left.', ['He said "Stop."', "Then he left."]),
        (
            "J. R. Smith signed (see above.) Next came Art. 12.",
            ["J. R. Smith signed (see above.)", "Next came Art. 12."],
        ),
        ("Apple Inc. The firm grew.", ["Apple Inc.", "The firm grew."]),
        ("Heading line\nBody text. More text!", ["Heading line", "Body text.", "More text!"]),
        ("Why? Because. Really!? Yes...", ["Why?", "Because.", "Really!?", "Yes..."]),
        (
            "정부는 클러스터를 지정한다. 기업이 참여해요. 왜 그런가? 좋다!",
            ["정부는 클러스터를 지정한다.", "기업이 참여해요.", "왜 그런가?", "좋다!"],
        ),
        ("첫 문장。둘째 문장", ["첫 문장。", "둘째 문장"]),
        ("  \n\n  ", []),
    ],
)
def test_split_sentences_examples(text: str, sentences: list[str]) -> None:
    spans = split_sentences(text)
    assert [text[a:b] for a, b in spans] == sentences
    assert split_sentences(text, offset=100) == [(a + 100, b + 100) for a, b in spans]


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("국가혁신클러스터는 지역 균형 발전을 위한 정책이다.", "ko"),
        ("정부는 AI, IoT, ICT 산업을 육성한다.", "ko"),
        ("The National Innovation Cluster (국가혁신클러스터) was announced.", "en"),
        ("", "en"),
        ("12345 !!!", "en"),
    ],
)
def test_detect_language(text: str, language: str) -> None:
    assert detect_language(text) == language


@given(text=st.text(alphabet=st.characters(codec="utf-8"), max_size=60))
def test_detect_language_counts_letters_as_its_definition_says(text: str) -> None:
    """The counting is done in C; it must agree with the definition written as a loop."""
    letters = [ch for ch in text if ch.isalpha()]
    hangul = [ch for ch in letters if HANGUL_LETTER.match(ch)]
    assert detect_language(text) == ("ko" if letters and len(hangul) * 2 > len(letters) else "en")
    assert detect_language("\u3130\u318f" + text) == detect_language(text)  # not letters


def test_split_sentences_on_one_long_line() -> None:
    """A 1 MB paragraph on one line: each sentence end was looked up in a copy of the line
    before it, which took minutes; the spans are those of the line cut into pieces."""
    sentence = "Dr. Kim met U.S. officials on 3.5 days. 정책은 시행된다. Done! "
    line = sentence * 20_000
    spans = split_sentences(line)
    assert len(spans) == 3 * 20_000
    assert spans[3:6] == [(a + len(sentence), b + len(sentence)) for a, b in spans[:3]]


_ALPHABET = st.sampled_from(
    [*"abcXYZ가나다 .!?。\"')(\n\t-:,0123456789", "Dr.", "U.S.", "e.g.", "No. 5", "3.5", "다."]
)
_RANDOM_TEXT = st.lists(_ALPHABET, max_size=400).map("".join)


@given(text=_RANDOM_TEXT, offset=st.integers(min_value=0, max_value=10_000))
def test_split_sentences_invariants(text: str, offset: int) -> None:
    spans = split_sentences(text, offset)
    previous = offset
    for a, b in spans:
        assert previous <= a < b <= offset + len(text)
        piece = text[a - offset : b - offset]
        assert piece == piece.strip() and "\n" not in piece
        previous = b
    covered = {i for a, b in spans for i in range(a - offset, b - offset)}
    assert all(ch.isspace() for i, ch in enumerate(text) if i not in covered)


# --- chunking ----------------------------------------------------------------------------------

_WORD = st.text(alphabet="abcdefghij", min_size=1, max_size=9)
_SENTENCE = st.lists(_WORD, min_size=1, max_size=30).map(lambda ws: " ".join(ws).capitalize() + ".")
_PARAGRAPH = st.lists(_SENTENCE, min_size=1, max_size=12).map(" ".join)
_HEADING = st.lists(_WORD, min_size=1, max_size=5).map(lambda ws: " ".join(ws).title())
_DOC_PARTS = st.lists(st.one_of(_PARAGRAPH, _HEADING), min_size=1, max_size=25)


@st.composite
def _documents(draw: st.DrawFn) -> Document:
    cleaned = clean_text("\n\n".join(draw(_DOC_PARTS)))
    text, sections = assemble(plain_blocks(cleaned))
    return Document(source="gen.txt", title="Generated", text=text, sections=sections)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    doc=_documents(),
    size=st.integers(min_value=40, max_value=900),
    min_ratio=st.floats(min_value=0.0, max_value=1.0),
)
def test_chunk_invariants_on_structured_text(doc: Document, size: int, min_ratio: float) -> None:
    min_size = int(size * min_ratio)
    chunks = chunk_document(doc, size=size, min_size=min_size)
    assert_offsets(doc, chunks)
    assert_within_sections(doc, chunks)
    assert_min_size(doc, chunks, min_size)
    assert chunks == chunk_document(doc, size=size, min_size=min_size)


@settings(deadline=None)
@given(
    text=st.text(max_size=1500),
    size=st.integers(min_value=1, max_value=500),
    min_size=st.integers(min_value=0, max_value=500),
)
def test_chunk_invariants_on_arbitrary_text(text: str, size: int, min_size: int) -> None:
    min_size = min(min_size, size)
    doc = Document(source="raw.txt", title="Raw", text=text)
    chunks = chunk_document(doc, size=size, min_size=min_size)
    assert_offsets(doc, chunks)
    assert_min_size(doc, chunks, min_size)
    for chunk in chunks:
        # Without headings the only stretch is the whole text; merges add at most two leftovers.
        assert len(chunk.text) <= size + 2 * min_size + 4 or len(chunks) == 1


def test_chunk_size_and_min_size_on_long_paragraphs() -> None:
    sentence = "The council reviews each regional cluster plan every year."
    text = "Title Line\n\n" + " ".join([sentence] * 40) + "\n\n" + "Short tail."
    doc = Document(source="s.txt", title="T", text=text, sections=assemble(plain_blocks(text))[1])
    chunks = chunk_document(doc, size=300, min_size=120)
    assert_offsets(doc, chunks)
    assert all(120 <= len(c.text) <= 300 + 120 + 4 for c in chunks)
    assert chunks[0].text.startswith("Title Line\n\nThe council")
    assert all(c.text.endswith(".") for c in chunks)  # cut at sentence boundaries


def test_heading_without_text_joins_its_subsection() -> None:
    text, sections = assemble(
        plain_blocks(clean_text("Chapter Two\n\nScope Of Work\n\nThe scope is small."))
    )
    doc = Document(source="h.txt", title="H", text=text, sections=sections)
    (chunk,) = chunk_document(doc, size=700, min_size=10)
    assert chunk.text == text
    assert chunk.section == "Chapter Two"


def test_chunk_document_rejects_bad_sizes() -> None:
    doc = Document(source="a.txt", title="A", text="Some text.")
    with pytest.raises(ValueError, match="size"):
        chunk_document(doc, size=0)
    with pytest.raises(ValueError, match="min_size"):
        chunk_document(doc, size=100, min_size=200)
    assert chunk_document(Document(source="e.txt", title="E", text="")) == []


# --- every format ------------------------------------------------------------------------------


def test_html_drops_scripts_and_furniture(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(HTML, encoding="utf-8")
    doc = load_file(path)
    for absent in (
        "SECRET",
        "alert",
        "onerror",
        "XSS",
        "javascript",
        "Site header",
        "Home | About",
        "Related sidebar",
        "Copyright",
        "hidden text",
        "also hidden",
        "comment",
        "search box",
        "color",
    ):
        assert absent not in doc.text, absent
    assert doc.title == "Cluster News"
    assert doc.source == "page.html"
    assert doc.text == (
        "Innovation Cluster\n\nThe cluster connects key regional entities.\n\n"
        "Second paragraph here.\nOn a new line.\n\nDetails\n\n- First item\n- Second item\n\n"
        "Name | Value\nCities | 14"
    )
    assert [s.title for s in doc.sections] == ["Innovation Cluster", "Details"]


def test_html_title_falls_back_to_first_h1_and_charset(tmp_path: Path) -> None:
    path = tmp_path / "old.htm"
    html = '<html><head><meta charset="euc-kr"></head><body><h1>정책 안내</h1>'
    html += "<p>정부는 국가혁신클러스터를 지정한다.</p></body></html>"
    path.write_bytes(html.encode("euc-kr"))
    doc = load_file(path)
    assert doc.title == "정책 안내"
    assert doc.language == "ko"
    assert "국가혁신클러스터" in doc.text


def test_markdown_strips_syntax_and_keeps_link_text(tmp_path: Path) -> None:
    path = tmp_path / "guide.md"
    path.write_text(MARKDOWN, encoding="utf-8")
    doc = load_file(path)
    assert doc.title == "Markdown Policy Guide"
    assert [s.title for s in doc.sections] == ["Markdown Policy Guide", "Section Two"]
    assert "Some emphasis, a link text and a bad link on a soft-wrapped line with code in it." in (
        doc.text
    )
    assert "- item one\n- item two" in doc.text
    assert "a | b\n1 | 2" in doc.text
    for absent in ("javascript", "alert", "http", "**", "](", "`", "#", "---"):
        assert absent not in doc.text, absent


def test_pdf_pages_are_joined_and_dehyphenated(tmp_path: Path) -> None:
    path = write_pdf(
        tmp_path / "report.pdf",
        [
            [
                "Cluster Policy Report",
                "",
                "The National Innovation Cluster connects innovative cities, industrial com-",
                "plexes and universities across the fourteen provinces. The Nation-",
                "al Innovation Council will coordinate the projects of each region.",
                "",
                "Funding",
                "",
                "Each cluster may receive financial aid, subsidies and tax exemptions from",
                "the ministry. Companies that relocate receive additional support.",
            ],
            ["Second page text about the regional investment agreement."],
        ],
        title="Cluster Policy Report",
    )
    doc = load_file(path)
    assert doc.title == "Cluster Policy Report"
    assert "industrial complexes and universities" in doc.text
    assert "The National Innovation Council" in doc.text
    assert "tax exemptions from the ministry." in doc.text
    assert "Second page text" in doc.text
    assert [s.title for s in doc.sections] == ["Cluster Policy Report", "Funding"]
    assert_offsets(doc, chunk_document(doc, size=120, min_size=40))


def test_pdf_drops_running_headers_and_page_numbers(tmp_path: Path) -> None:
    filler = "Each regional cluster reports its progress to the council every quarter of"
    pages = [
        ["Ministry Report", filler, "the year, and the council publishes a summary for", "1"],
        ["Ministry Report", "citizens and companies.", "2019", "Budget Figures Follow", "2"],
        ["Ministry Report", "The programme ends when every cluster has reported in", "full.", "3"],
    ]
    doc = load_file(write_pdf(tmp_path / "paged.pdf", pages))
    assert "Ministry Report" not in doc.text
    assert "\n1\n" not in doc.text and not doc.text.endswith("3")
    assert "publishes a summary for citizens and companies." in doc.text
    assert "\n\n2019\n\n" in doc.text
    assert "2019" not in [s.title for s in doc.sections]
    assert "The programme ends when every cluster has reported in full." in doc.text
    assert doc.title == "Paged"  # no metadata title and no heading on the first line


def test_docx_headings_tables_and_title(tmp_path: Path) -> None:
    doc = load_file(write_docx(tmp_path / "memo.docx"))
    assert doc.title == "Regional Policy Memo"
    assert [s.title for s in doc.sections] == ["Regional Policy Memo", "Budget"]
    assert "Region | Industry\nDaejeon | Biotechnology" in doc.text
    assert "- Funding follows the agreement." in doc.text
    chunks = chunk_document(doc, size=700, min_size=10)
    assert [c.section for c in chunks] == ["Regional Policy Memo", "Budget"]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("\ufeffBOM text here.".encode(), "BOM text here."),
        ("정부는 클러스터를 지정한다.".encode("cp949"), "정부는 클러스터를 지정한다."),
        ("Café naïve façade.".encode("latin-1"), "Café naïve façade."),
        ("UTF-16 text.".encode("utf-16"), "UTF-16 text."),
    ],
)
def test_text_decoding(tmp_path: Path, data: bytes, expected: str) -> None:
    path = tmp_path / "encoded.txt"
    path.write_bytes(data)
    assert load_file(path).text == expected


def test_korean_text_is_ko(tmp_path: Path) -> None:
    path = tmp_path / "정책.txt"
    path.write_text(
        "국가혁신클러스터\n\n정부는 국가혁신클러스터를 지정한다. 각 클러스터는 지역 산업과 "
        "연계된다.\n",
        encoding="utf-8",
    )
    doc = load_file(path)
    assert doc.language == "ko"
    assert doc.title == "국가혁신클러스터"
    chunks = chunk_document(doc)
    assert [c.language for c in chunks] == ["ko"]


# --- folders, skipping, sidecars, ids ----------------------------------------------------------


def _folder_with_everything(root: Path) -> Path:
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / ".git" / "HEAD.txt").write_text("not a document", encoding="utf-8")
    (root / ".hidden.txt").write_text("Hidden file.", encoding="utf-8")
    copy = root / "article.txt"
    copy.write_bytes(SEED.read_bytes())
    (root / "article.txt.meta.json").write_text(
        json.dumps({"title": "Sidecar Title", "language": "en", "url": "https://example.org"}),
        encoding="utf-8",
    )
    (root / "sub" / "guide.md").write_text(MARKDOWN, encoding="utf-8")
    (root / "sub" / "page.html").write_text(HTML, encoding="utf-8")
    write_docx(root / "sub" / "memo.docx")
    write_pdf(root / "sub" / "deeper" / "report.pdf", [["A Report", "", "It has one line."]])
    (root / "sub" / "data.xyz").write_text("whatever", encoding="utf-8")
    (root / "empty.txt").write_text("  \n• go rss\nViews :\n\n", encoding="utf-8")
    (root / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    (root / "broken.docx").write_bytes(b"PK not a zip")
    return root


def test_load_paths_loads_good_files_and_skips_bad_ones(tmp_path: Path) -> None:
    root = _folder_with_everything(tmp_path / "docs")
    seen: list[tuple[int, int, str]] = []
    docs, skipped = load_paths(
        [root, tmp_path / "missing.txt"], progress=lambda i, n, name: seen.append((i, n, name))
    )

    assert sorted(d.source for d in docs) == [
        "article.txt",
        "sub/deeper/report.pdf",
        "sub/guide.md",
        "sub/memo.docx",
        "sub/page.html",
    ]
    assert all(Path(d.path).is_absolute() and Path(d.path).is_file() for d in docs)
    reasons = {Path(s.path).name: s.reason for s in skipped}
    assert reasons["data.xyz"].startswith("unsupported file type .xyz (supported: .txt, .md")
    assert reasons["empty.txt"] == "empty after cleaning"
    assert reasons["broken.pdf"].startswith("could not read PDF: ")
    assert reasons["broken.docx"].startswith("could not read Word document: ")
    assert reasons["missing.txt"] == "file not found"
    assert len(skipped) == 5
    assert [(i, n) for i, n, _ in seen] == [(i, 10) for i in range(1, 11)]
    assert "sub/page.html" in {name for _, _, name in seen}

    article = next(d for d in docs if d.source == "article.txt")
    assert article.title == "Sidecar Title"
    for doc in docs:
        assert_offsets(doc, chunk_document(doc))


def test_bad_entries_in_a_folder_are_skipped_and_the_rest_loads(tmp_path: Path) -> None:
    """Issue 24: a link loop aborted the whole run (RuntimeError); a name that is not UTF-8
    aborted the folder (UnicodeEncodeError)."""
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / "good.txt").write_text("A good document about the plan.", encoding="utf-8")
    (root / "sub" / "deeper.txt").write_text("Another good one.", encoding="utf-8")
    (root / "loop-a.txt").symlink_to(root / "loop-b.txt")
    (root / "loop-b.txt").symlink_to(root / "loop-a.txt")
    (root / "self.txt").symlink_to(root / "self.txt")
    (root / "dangling.txt").symlink_to(root / "gone.txt")
    (root / "sub" / "up").symlink_to(root, target_is_directory=True)  # a folder loop
    latin1_name = os.fsdecode(b"caf\xe9.txt")
    (root / latin1_name).write_text("Named in Latin-1.", encoding="utf-8")
    (root / os.fsdecode(b"r\xe9ports")).mkdir()
    (root / os.fsdecode(b"r\xe9ports") / "inside.txt").write_text("Inside.", encoding="utf-8")

    docs, skipped = load_paths([root, root / "self.txt", tmp_path / "nope" / "x.txt"])
    assert sorted(d.source for d in docs) == ["good.txt", "sub/deeper.txt"]
    reasons = {s.path.removeprefix(str(root) + "/"): s.reason for s in skipped}
    loop = "it is a symbolic link loop (a link that leads back to itself); fix or remove it"
    not_utf8 = "its name (or a folder's in its path) is not valid UTF-8; rename it"
    assert reasons == {
        "sub/up": "it is a link to a folder, and links to folders are not followed; "
        "index the folder it points to",
        "caf\\xe9.txt": not_utf8,
        "dangling.txt": "it is a symbolic link to a file that does not exist",
        "loop-a.txt": loop,
        "loop-b.txt": loop,
        "r\\xe9ports/inside.txt": not_utf8,
        "self.txt": loop,
        str(tmp_path / "nope" / "x.txt"): "file not found",
    }
    for entry in skipped:
        entry.path.encode("utf-8")  # printable and storable, unlike the name itself
    assert len(skipped) == 8  # self.txt given twice is tried once


def test_an_unreadable_folder_is_reported(tmp_path: Path) -> None:
    (tmp_path / "open.txt").write_text("Readable.", encoding="utf-8")
    closed = tmp_path / "closed"
    closed.mkdir()
    (closed / "secret.txt").write_text("Unreadable.", encoding="utf-8")
    closed.chmod(0)
    try:
        try:
            os.listdir(closed)
        except PermissionError:
            pass
        else:
            pytest.skip("this process reads folders whatever their mode (root)")
        docs, skipped = load_paths([tmp_path])
    finally:
        closed.chmod(0o755)
    assert [d.source for d in docs] == ["open.txt"]
    assert [(s.path, s.reason) for s in skipped] == [
        (str(closed), "could not open the folder: Permission denied")
    ]


def test_file_given_directly_uses_its_name(tmp_path: Path) -> None:
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    path = nested / "note.txt"
    path.write_text("A short note.", encoding="utf-8")
    docs, skipped = load_paths([str(path)])
    assert skipped == []
    assert [(d.source, d.title, d.path) for d in docs] == [("note.txt", "Note", str(path))]


def test_load_file_errors_are_document_errors(tmp_path: Path) -> None:
    path = tmp_path / "image.png"
    path.write_bytes(b"\x89PNG")
    with pytest.raises(DocumentError, match=r"unsupported file type \.png"):
        load_file(path)
    with pytest.raises(DocumentError, match="file not found"):
        load_file(tmp_path / "nope.txt")


def test_sidecar_overrides_and_broken_sidecar_is_ignored(tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_text("Plain text in English.", encoding="utf-8")
    (tmp_path / "good.txt.meta.json").write_text(
        json.dumps({"title": "Given Title", "language": "ko"}), encoding="utf-8"
    )
    bad = tmp_path / "bad.txt"
    bad.write_text("Other text.", encoding="utf-8")
    (tmp_path / "bad.txt.meta.json").write_text("{not json", encoding="utf-8")
    docs, skipped = load_paths([tmp_path])
    assert skipped == []
    by_source = {d.source: d for d in docs}
    assert (by_source["good.txt"].title, by_source["good.txt"].language) == ("Given Title", "ko")
    assert by_source["bad.txt"].title == "Bad"


@pytest.mark.parametrize(("tag", "language"), [("en-US", "en"), ("ko_KR", "ko"), (" EN ", "en")])
def test_a_sidecars_regional_language_tag_is_its_language(
    tmp_path: Path, tag: str, language: str
) -> None:
    (tmp_path / "a.txt").write_text("Plain text in English.", encoding="utf-8")
    (tmp_path / "a.txt.meta.json").write_text(json.dumps({"language": tag}), encoding="utf-8")
    docs, _ = load_paths([tmp_path])
    assert docs[0].language == language


def test_ids_are_stable_across_loads(tmp_path: Path) -> None:
    root = _folder_with_everything(tmp_path / "docs")

    def ids() -> list[str]:
        docs, _ = load_paths([root])
        return [c.id for d in docs for c in chunk_document(d, size=300, min_size=100)]

    first = ids()
    assert first == ids()
    assert len(set(first)) == len(first)
