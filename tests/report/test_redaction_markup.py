"""Secrets leave text before it becomes HTML; rendered markup is never rewritten by pattern."""

from __future__ import annotations

import re

import nbformat
import pandas as pd

from workbench.htmlkit import html_table, text
from workbench.report.render import OWN_CODE, WITHHELD, redact_notebook
from workbench.rulepack.redact import redact

HF = "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"
GH = "ghp_0123456789abcdefghijABCDEFGHIJ012345"


def cells(html: str) -> list[str]:
    return re.findall(r"<td[^>]*>(.*?)</td>", html)


def test_a_secret_followed_directly_by_markup_keeps_every_cell():
    df = pd.DataFrame({"line": [f"HF_TOKEN={HF}", "plain"], "next": ["next", f"<b>{GH}</b>"]})
    html = html_table(df)
    assert HF not in html and GH not in html
    assert cells(html) == ["HF_TOKEN=hf_DV…[redacted]", "next", "plain", "&lt;b&gt;ghp_01…[redacted]&lt;/b&gt;"]
    assert html.count("<tr>") == 3 and html.count("</td>") == 4


def test_a_secret_followed_directly_by_another_secret():
    for joined in (HF + GH, f"HF_TOKEN={HF}_GITHUB_TOKEN={GH}", f"{HF}</td><td>{GH}"):
        out = text(joined)
        assert HF[5:] not in out and GH[6:] not in out, out
        assert redact(redact(joined)) == redact(joined)  # idempotent
    assert text(HF + GH) == "hf_DV…[redacted]"  # one mask: the second secret keeps no characters either


def test_html_outputs_are_withheld_whole_never_edited_and_text_is_redacted():
    nb = nbformat.v4.new_notebook()
    table = f"<table><tr><td>{HF}</td><td>x</td></tr></table>"
    leak = nbformat.v4.new_output("display_data", data={"text/html": table, "text/plain": f"token {HF}"})
    clean = nbformat.v4.new_output("display_data", data={"text/html": "<p>nothing secret</p>"})
    own = nbformat.v4.new_output("display_data", data={"text/html": f"<script>/* {HF} */</script>"},
                                 metadata={OWN_CODE: True})  # fmt: skip
    stream = nbformat.v4.new_output("stream", name="stdout", text=f"HF_TOKEN={HF}\n")
    nb.cells.append(nbformat.v4.new_code_cell("x", outputs=[leak, clean, own, stream]))
    changed = redact_notebook(nb)
    outputs = nb.cells[0].outputs
    assert outputs[0].data == {"text/html": WITHHELD, "text/plain": "output withheld (unredacted secret)"}
    assert outputs[1].data["text/html"] == "<p>nothing secret</p>"
    assert HF in outputs[2].data["text/html"]  # the workbench's own embedded code is not evidence: left alone
    assert outputs[3].text == "HF_TOKEN=hf_DV…[redacted]\n"
    assert changed == 2


def test_redacted_text_stays_redacted_once_json_escapes_it():
    """Figures carry their text as JSON with ASCII escapes (``…`` written ``\\u2026``): already-redacted text must
    not be taken for a new secret there, or every figure would be withheld."""
    import json

    redacted = redact(f"COSIGN_PASSWORD: s3cret-Passw0rd\nHF_TOKEN: {HF}")
    encoded = json.dumps({"text": [redacted + "<br>ci:log:match"]})
    assert "\\u2026[redacted]" in encoded
    assert redact(encoded) == encoded


def test_the_check_finds_a_secret_in_any_encoding_and_passes_redacted_text_in_any():
    from workbench.comms.markdown import md_escape

    nb = nbformat.v4.new_notebook()
    redacted = redact(f"HF_TOKEN: {HF} and COSIGN_PASSWORD: s3cret-Passw0rd")
    fine = [html_table(pd.DataFrame({"x": [redacted]})), md_escape(redacted),
            '{"text": "' + redacted.replace("…", "\\u2026") + '"}']  # fmt: skip
    leaks = [f"<td>{HF[:2]}&#95;{HF[3:]}</td>", '{"t": "' + HF.replace("_", "\\u005f") + '"}']
    outputs = [nbformat.v4.new_output("display_data", data={"text/html": v}) for v in fine + leaks]
    nb.cells.append(nbformat.v4.new_code_cell("x", outputs=outputs))
    redact_notebook(nb)
    kept = [o.data["text/html"] for o in nb.cells[0].outputs]
    assert kept[: len(fine)] == fine
    assert kept[len(fine) :] == [WITHHELD] * len(leaks)
