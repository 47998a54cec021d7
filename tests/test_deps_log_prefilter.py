"""The dependency analysis skips pipeline-log lines that cannot hold a package-index use, and loses none that can."""

from __future__ import annotations

from workbench import deps_baseline
from workbench.analysis import AnalysisContext
from workbench.case import Case
from workbench.collect import collect_evidence
from workbench.deps import analyse_dependencies

LINES = [
    "2026-11-20T10:00:{s:02d}Z Downloading numpy-1.26.{i}-cp311-cp311-manylinux_2_17_x86_64.whl (18.2 MB)",
    "2026-11-20T10:00:{s:02d}Z Downloading https://files.pythonhosted.org/packages/aa/pkg{i}-1.0-py3-none-any.whl",
    "2026-11-20T10:00:{s:02d}Z \x1b[32mDownloading\x1b[0m https://mirror.evil.example/simple/evil{i}-2.0.tar.gz",
    "2026-11-20T10:00:{s:02d}Z Downloading\x1b[0m\thttps://mirror.evil.example/simple/tab{i}-3.0.tar.gz",
    "2026-11-20T10:00:{s:02d}Z Looking in indexes: https://pypi.org/simple, https://extra{i}.evil.example/simple",
    "2026-11-20T10:00:{s:02d}Z + pip install --extra-index-url https://x{i}.evil.example/simple acme-tools",
    "2026-11-20T10:00:{s:02d}Z PIP_INDEX_URL=https://user:secret@mirror{i}.corp.example/simple",
    "2026-11-20T10:00:{s:02d}Z + pip install -i https://alt{i}.example/simple Downloading-helper",
    "2026-11-20T10:00:{s:02d}Z index of packages rebuilt (no URL here) <BAD>",
    "2026-11-20T10:00:{s:02d}Z \x1b]8;;https://osc.example/\x07Downloading https://osc{i}.example/p-1.0.zip\x1b]8;;\x07",
]


def _case(tmp_path):
    case = tmp_path / "case"
    (case / "logs").mkdir(parents=True)
    (case / "case.yaml").write_text('incident_id: "INC-PREFILTER"\n')
    text = "\n".join(LINES[k % len(LINES)].format(s=k % 60, i=k) for k in range(400)) + "\n"
    (case / "logs" / "pipeline.log").write_bytes(text.encode().replace(b"<BAD>", b"\xff\xfe"))  # invalid UTF-8
    return case


def _uses(case_dir):
    case = Case.open(case_dir)
    result = analyse_dependencies(AnalysisContext(case=case, evidence=collect_evidence(case), parameters={}))
    return result.data["index_usage"].to_dict(orient="records"), [(f.category, f.title) for f in result.findings]


def test_the_prefilter_changes_nothing_and_skips_the_plain_download_lines(tmp_path, monkeypatch):
    case = _case(tmp_path)
    skipped = []
    real = deps_baseline._may_hold_use

    def counting(raw):
        keep = real(raw)
        skipped.append(not keep)
        return keep

    monkeypatch.setattr(deps_baseline, "_may_hold_use", counting)
    fast = _uses(case)
    monkeypatch.setattr(deps_baseline, "_may_hold_use", lambda raw: True)
    careful = _uses(case)
    assert fast == careful
    assert sum(skipped) == 80  # "Downloading name-1.0.whl (size)" and "index ..." without a URL; the rest read
    urls = {u["url"] for u in fast[0]}
    assert "https://mirror.evil.example/simple/evil2-2.0.tar.gz" in urls  # colour codes around the word
    assert "https://mirror.evil.example/simple/tab3-3.0.tar.gz" in urls
    assert any(u.startswith("https://alt7.example/simple") for u in urls)  # -i URL on a line with "Downloading"
    assert fast[1]  # and the untrusted indexes are findings
