"""The printed report's structure, read back from the PDF with poppler: A4 pages numbered "page N of M" under a
running header (incident, verdict, classification), a document outline with an entry per section of the HTML
report, and internal links that are PDF link annotations landing on the page of their target.

Each bundled case is investigated once with ``--pdf`` (the session's ``printed_runs``, shared with the other PDF
tests; one fixture per case here); the section headings are read from that run's ``report.html``, so the checks
hold whatever sections the report has. A small notebook and a hand-made page, printed through the same
:func:`workbench.report.pdf.html_to_pdf`, pin the rest.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import unicodedata
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from workbench.report import pdf as pdf_mod
from workbench.report.render import DEFAULT_CLASSIFICATION, css_string, render_html, utc_second

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(
    pdf_mod.find_chromium() is None or shutil.which("pdftohtml") is None or shutil.which("pdfinfo") is None,
    reason="Chromium and poppler-utils are installed by .ci/run (make system-deps)",
)


# --- reading a PDF back with poppler ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Printed:
    """What poppler reads from one PDF: page count and size, each page's text, the outline and the links."""

    pages: int
    size: str
    texts: list[str]  # index 0 is page 1
    outline: list[tuple[int, str, int]]  # (depth, title, page), in document order
    internal_links: list[tuple[str, int]]  # (linked text, destination page)
    external_links: list[str]

    def text(self, page: int) -> str:
        return squash(self.texts[page - 1])


def squash(value: str) -> str:
    """Text as compared: ligatures the PDF fonts use (fi, fl) unfolded (NFKC), runs of white space one space."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", value)).strip()


def _run(*args: str) -> str:
    return subprocess.run(list(args), capture_output=True, text=True, check=True, timeout=60).stdout


def read_pdf(path: Path) -> Printed:
    info = _run("pdfinfo", str(path))
    pages = int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))
    size = re.search(r"^Page size:\s+(.+)$", info, re.M).group(1)
    # one pdftotext call; pages are separated by form feeds (the same text as `pdftotext -f N -l N`, page by page)
    texts = _run("pdftotext", str(path), "-").split("\f")[:pages]
    xml = _run("pdftohtml", "-xml", "-i", "-stdout", str(path))
    outline = _outline(xml)
    internal, external = [], []
    # pdftohtml writes a link to a page of the same document as "<name>.html#<page>", a URI link as the URI
    for href, inner in re.findall(r'<a href="([^"]*)">(.*?)</a>', xml, re.S):
        if m := re.fullmatch(r"[^:/#]*\.html#(\d+)", href):
            internal.append((squash(re.sub(r"<[^>]+>", "", inner)), int(m.group(1))))
        else:
            external.append(href)
    return Printed(pages, size, texts, outline, internal, external)


def _outline(xml: str) -> list[tuple[int, str, int]]:
    """The ``<outline>`` tree of ``pdftohtml -xml`` as (depth, title, page) rows, depth 0 at the top."""
    rows, depth = [], -1
    for tag in re.finditer(r'<outline>|</outline>|<item page="(\d+)">(.*?)</item>', xml, re.S):
        if tag.group(0) == "<outline>":
            depth += 1
        elif tag.group(0) == "</outline>":
            depth -= 1
        else:
            rows.append((depth, squash(_unescape(tag.group(2))), int(tag.group(1))))
    return rows


def _unescape(value: str) -> str:
    from html import unescape

    return unescape(value)


# --- reading the HTML report ------------------------------------------------------------------------------------


class _ReportHtml(HTMLParser):
    """Section headings (h2 text without nbconvert's hidden ``¶`` anchor link), element ids and in-page links."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.h2: list[str] = []
        self.ids: set[str] = set()
        self.links: list[str] = []  # targets of <a href="#..."> outside nbconvert's heading anchors
        self._in_h2 = False
        self._skip = 0
        self._buf: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "h2":
            self._in_h2, self._buf = True, []
        if tag == "a":
            anchor = "anchor-link" in (a.get("class") or "").split()
            if anchor:
                self._skip += 1
            elif (a.get("href") or "").startswith("#") and len(a["href"]) > 1:
                self.links.append(a["href"][1:])

    def handle_endtag(self, tag):
        if tag == "a" and self._skip:
            self._skip -= 1
        if tag == "h2" and self._in_h2:
            self._in_h2 = False
            self.h2.append(squash("".join(self._buf)))

    def handle_data(self, data):
        if self._in_h2 and not self._skip:
            self._buf.append(data)


def read_html(path: Path) -> _ReportHtml:
    parser = _ReportHtml()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


# --- the bundled cases, each investigated once with --pdf ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Run:
    out: Path
    doc: dict
    html: _ReportHtml
    pdf: Printed


@pytest.fixture(scope="module")
def investigated(printed_runs) -> dict[str, Run]:
    """Every bundled case investigated once with ``--pdf`` (the session's ``printed_runs``), read back once."""
    runs = {}
    for name, out in printed_runs.items():
        doc = json.loads((out / "findings.json").read_text(encoding="utf-8"))
        runs[name] = Run(out, doc, read_html(out / "report.html"), read_pdf(out / "report.pdf"))
    return runs


@pytest.fixture(scope="module")
def tampered_weights(investigated) -> Run:
    return investigated["tampered-weights"]


@pytest.fixture(scope="module")
def false_alarm(investigated) -> Run:
    return investigated["false-alarm"]


@pytest.fixture(scope="module")
def poisoned_dependency(investigated) -> Run:
    return investigated["poisoned-dependency"]


CASES = ("tampered_weights", "false_alarm", "poisoned_dependency")


@pytest.fixture(params=CASES)
def run(request) -> Run:
    return request.getfixturevalue(request.param)


A4 = re.compile(r"59[45](\.\d+)? x 84[12](\.\d+)? pts \(A4\)")


def test_a4_and_every_page_numbered_page_n_of_m(run):
    printed = run.pdf
    assert A4.match(printed.size), printed.size
    assert printed.pages > 1 and len(printed.texts) == printed.pages
    for page in range(1, printed.pages + 1):
        numbers = re.findall(r"page (\d+) of (\d+)", printed.text(page))
        assert numbers == [(str(page), str(printed.pages))], (page, numbers)


def first_word_heights(path: Path, page: int, words: tuple[str, ...]) -> dict[str, float]:
    """Height (pt) of the first box of each of ``words`` on ``page`` (``pdftotext -bbox``: font size times a
    constant of the font, the same for the title and the running header)."""
    found: dict[str, float] = {}
    for y0, y1, word in re.findall(
        r'yMin="([\d.]+)" xMax="[\d.]+" yMax="([\d.]+)">([^<]*)</word>',
        _run("pdftotext", "-bbox", "-f", str(page), "-l", str(page), str(path), "-"),
    ):
        if word in words and word not in found:
            found[word] = float(y1) - float(y0)
    return found


#: the title (h1, 24 px) against the running header (8 pt) in the template
TITLE_TO_HEADER = (24 * 0.75) / 8


def assert_printed_at_full_scale(path: Path) -> None:
    # a line wider than the page makes Chromium shrink every page to fit it (by up to a third): the body then
    # prints smaller while the @page margin boxes keep their size
    heights = first_word_heights(path, 1, ("Incident", "report"))  # the header's "Incident …", the h1's "report"
    ratio = heights["report"] / heights["Incident"]
    assert ratio == pytest.approx(TITLE_TO_HEADER, rel=0.01), f"printed at {ratio / TITLE_TO_HEADER:.0%} of its size"


def test_printed_at_full_scale(run):
    assert_printed_at_full_scale(run.out / "report.pdf")


def test_running_header_on_every_page(run):
    incident, verdict = run.doc["incident_id"], run.doc["verdict"]
    for page in range(1, run.pdf.pages + 1):
        text = run.pdf.text(page)
        assert f"Incident {incident} · verdict: {verdict}" in text, (page, text[:200])
        assert DEFAULT_CLASSIFICATION.upper() in text.upper(), (page, text[:200])


def test_outline_has_the_title_and_every_section(run):
    outline = run.pdf.outline
    assert outline, "the PDF has no document outline"
    assert outline[0][0] == 0 and outline[0][1] == f"Incident report {run.doc['incident_id']}"
    sections = [(title, page) for depth, title, page in outline if depth == 1]
    headings = run.html.h2
    assert len(headings) >= 5 and "Summary" in headings
    assert [title for title, _ in sections] == headings  # every h2, in order, nothing else at that level
    pages = [page for _, page in sections]
    assert pages == sorted(pages) and pages[-1] <= run.pdf.pages
    for title, page in sections:
        assert title in run.pdf.text(page), f"bookmark {title!r} points at page {page}, which does not show it"


def test_no_bookmark_names_its_heading_twice(run):
    # Chromium names a bookmark from the heading's painted text; a heading too close to the top of its page was
    # painted (clipped) on the previous page as well, giving "Files that differFiles that differ"
    doubled = [(t, p) for _, t, p in run.pdf.outline if len(t) % 2 == 0 and t[: len(t) // 2] == t[len(t) // 2 :]]
    assert not doubled, doubled


def test_appendices_start_on_a_new_page_and_sections_flow(run):
    sections = [(title, page) for depth, title, page in run.pdf.outline if depth == 1]
    appendices = [i for i, (title, _) in enumerate(sections) if title.startswith("Appendix")]
    assert appendices, "no appendix section"
    first = appendices[0]
    title, page = sections[first]
    before = run.pdf.text(page).split(title)[0]
    # nothing of the body above the first appendix on its page: only the running header
    assert "Appendix" not in before and len(before) < 200, before
    # the body's sections flow: several of them share a page (each h2 used to open a page of its own)
    body_pages = [p for _, p in sections[:first]]
    assert len(set(body_pages)) < len(body_pages), body_pages


def test_internal_links_are_annotations_that_resolve(run):
    printed, html = run.pdf, run.html
    for text, page in printed.internal_links:
        assert 1 <= page <= printed.pages, (text, page)
    targets = [t for t in html.links if t in html.ids]
    assert targets, "the report links nothing within itself (every finding reference links to its finding)"
    assert not [t for t in html.links if t not in html.ids], "links to ids that are not in the report"
    # every in-page link of the report prints as at least one annotation (a link broken over lines gives more)
    assert len(printed.internal_links) >= len(targets), (len(printed.internal_links), len(targets))
    # a finding reference lands on a page that shows the finding's id
    for text, page in printed.internal_links:
        if m := re.fullmatch(r"(F-[0-9a-f]{6,})", text):
            assert m.group(1) in printed.text(page), f"{text} links to page {page}, which does not show it"


# --- a small notebook through the template, and a hand-made page through html_to_pdf -----------------------------


def _notebook(path: Path, *, classification: str | None = None) -> Path:
    nb = nbformat.v4.new_notebook()
    filler = "\n\n".join(f"Paragraph {i} of the section, long enough to fill part of a line." for i in range(30))
    nb.cells = [
        nbformat.v4.new_markdown_cell("## Summary\n\nSee [the finding](#F-00c0ffee00) for the detail."),
        nbformat.v4.new_markdown_cell(f"## Model forensics\n\n{filler}"),
        nbformat.v4.new_markdown_cell(f"## Timeline\n\n{filler}"),
        nbformat.v4.new_markdown_cell(
            '## Appendix A: All findings\n\n<p id="F-00c0ffee00">F-00c0ffee00 the finding</p>'
        ),
        nbformat.v4.new_markdown_cell("## Appendix B: Reproducibility\n\nParameters."),
    ]
    if classification is not None:
        nb.metadata["classification"] = classification
    nbformat.write(nb, path)
    return path


HOSTILE_ID = 'INC-7"; } body { display: none } </style><script>x()</script> ✓'
METADATA = {
    "incident_id": HOSTILE_ID, "title": "t", "verdict": "suspicious", "severity": "high", "models": "m",
    "generated_at": "2026-11-19T10:40:33.123456+01:00", "workbench_version": "0", "notebook_sha256": "a",
    "custody_head": "b",
}  # fmt: skip


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> tuple[Path, Printed]:
    base = tmp_path_factory.mktemp("pdf-structure-small")
    html = render_html(_notebook(base / "nb.ipynb", classification="  Restricted:\n  board only  "), base / "r.html",
                       title="t", metadata=METADATA)  # fmt: skip
    return html, read_pdf(pdf_mod.html_to_pdf(html, base / "r.pdf"))


def test_template_header_escapes_metadata_and_takes_the_notebooks_classification(small):
    html, printed = small
    source = html.read_text(encoding="utf-8")
    assert "</style><script>x()" not in source  # neither in the stylesheet nor in the title block
    assert "Generated</th><td>2026-11-19T09:40:33Z</td>" in source  # one time format, UTC, to the second
    assert printed.pages >= 3
    for page in range(1, printed.pages + 1):
        text = printed.text(page)
        assert HOSTILE_ID.replace("  ", " ") + " · verdict: suspicious" in text, text[:300]  # printed literally
        assert "RESTRICTED: BOARD ONLY" in text and DEFAULT_CLASSIFICATION.upper() not in text.upper()
        assert f"page {page} of {printed.pages}" in text
        assert "Generated 2026-11-19T09:40:33Z" in text


def test_a_long_token_does_not_shrink_the_print(tmp_path):
    blob = "ZW52IHwgZ3JlcCAtRSAnVE9LRU58UEFTU1dPUkR8S0VZJyB8IGN1cmwgLXMgLVggUE9TVCAtLWRhdGEtYmluYXJ5IEAtIGh0dHA6" * 2
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("## Summary"),
        nbformat.v4.new_code_cell(
            outputs=[
                nbformat.v4.new_output(
                    "display_data", data={"text/html": f"<p>First line: echo {blob} | base64 -d | sh</p>"}
                )
            ]
        ),
        nbformat.v4.new_markdown_cell(
            f"## Appendix D: Drafts\n\n| Time (UTC) | Source | Event |\n|---|---|---|\n"
            f"| 2026-11-14T03:08:01Z | logs/pipeline.log | Base64 payload decoded: echo {blob} \\| base64 -d |\n"
        ),
    ]
    nbformat.write(nb, tmp_path / "nb.ipynb")
    html = render_html(tmp_path / "nb.ipynb", tmp_path / "r.html", title="t", metadata=METADATA)
    printed = pdf_mod.html_to_pdf(html, tmp_path / "r.pdf")
    assert_printed_at_full_scale(printed)
    text = squash(_run("pdftotext", str(printed), "-")).replace(" ", "")
    assert blob in text  # broken over lines, not cut off at the page edge


def test_template_outline_links_and_page_breaks(small):
    _, printed = small
    assert [(d, t) for d, t, _ in printed.outline] == [
        (0, f"Incident report {squash(HOSTILE_ID)}"), (1, "Summary"), (1, "Model forensics"), (1, "Timeline"),
        (1, "Appendix A: All findings"), (1, "Appendix B: Reproducibility"),
    ]  # fmt: skip
    pages = {t: p for _, t, p in printed.outline}
    assert pages["Summary"] == pages["Model forensics"] == 1  # sections flow
    assert pages["Appendix A: All findings"] > pages["Timeline"]
    assert printed.text(pages["Appendix A: All findings"]).split("Appendix A")[0].count("Paragraph") == 0
    assert pages["Appendix B: Reproducibility"] == pages["Appendix A: All findings"]  # appendices flow too
    assert ("the finding", pages["Appendix A: All findings"]) in printed.internal_links


def test_internal_link_becomes_an_annotation_to_the_target_page(tmp_path):
    page = tmp_path / "links.html"
    page.write_text(
        "<!doctype html><html><head><style>@page { size: A4; margin: 20mm } .new { break-before: page }</style>"
        "</head><body><h1>Doc</h1><h2>One</h2>"
        '<p>See <a href="#F-0a0b0c0d">F-0a0b0c0d</a>, <a href="#row-7">row seven</a>, <a href="#nowhere">gone</a>, '
        '<a href="https://example.invalid/x">out</a>.</p>'
        '<h2 class="new">Two</h2><table><tr id="row-7"><td>ROW-SEVEN</td></tr></table>'
        '<h2 class="new">Three</h2><p id="F-0a0b0c0d">F-0a0b0c0d FINDING</p></body></html>',
        encoding="utf-8",
    )
    printed = read_pdf(pdf_mod.html_to_pdf(page, tmp_path / "links.pdf"))
    assert printed.pages == 3
    links = dict(printed.internal_links)
    assert links["F-0a0b0c0d"] == 3 and "FINDING" in printed.text(3)
    assert links["row seven"] == 2 and "ROW-SEVEN" in printed.text(2)
    assert "gone" not in links  # a link to no element is no annotation (the report tests forbid such links)
    assert "https://example.invalid/x" in printed.external_links  # a URI link is not counted as internal
    assert [(d, t, p) for d, t, p in printed.outline] == [(0, "Doc", 1), (1, "One", 1), (1, "Two", 2), (1, "Three", 3)]


def test_css_string_keeps_every_character_out_of_the_stylesheet_syntax():
    literal = css_string('a"b\\c</style>\nd·e')
    assert literal.startswith('"') and literal.endswith('"')
    inner = literal[1:-1]
    assert '"' not in inner and "<" not in inner and "\n" not in inner
    assert re.fullmatch(r"(?:[A-Za-z0-9 \-_.,:;/()+#@]|\\[0-9a-f]{6} )*", inner), inner
    assert css_string("Confidential: incident response") == '"Confidential: incident response"'


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-12-02T03:02:20.132562+00:00", "2026-12-02T03:02:20Z"),
        ("2026-11-19T10:40:33+01:00", "2026-11-19T09:40:33Z"),
        ("2026-11-19T09:40:33Z", "2026-11-19T09:40:33Z"),
        ("2026-11-19T09:40:33", "2026-11-19T09:40:33Z"),
        ("not a time", "not a time"),
        (None, None),
    ],
)
def test_generated_time_is_written_in_the_one_format(value, expected):
    assert utc_second(value) == expected
