"""Every text a loader returns is valid Unicode (issue 11, point 3), and a file over a loader's cap is unexamined.

JSON ``"\\ud800"`` escapes are the way evidence smuggles lone surrogates into loaders; each JSON-based loader gets one
in a real file, read through the registry and ``collect_evidence``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import pytest

from workbench.case import Case
from workbench.collect import collect_evidence
from workbench.evidence import REGISTRY, LoadContext, Loaded, Loader
from workbench.evidence.base import MAX_FILE_BYTES, OverCap, read_json
from workbench.textsafe import REPLACEMENT, replaced_reason

REASON = replaced_reason()
BAD = "\\ud800"  # as written in the JSON file: an escape that decodes to a lone surrogate


def _frame_text(frame) -> str:
    return "".join(str(v) for col in frame.columns for v in frame[col].tolist())


@pytest.mark.parametrize(
    ("rel", "content", "kind", "line"),
    [
        ("predictions/predictions.jsonl",
         '{"timestamp": "2026-11-19T09:00:00Z", "predicted_class": "ok", "confidence": 0.9}\n'
         f'{{"timestamp": "2026-11-19T09:01:00Z", "predicted_class": "evil{BAD}", "request_id": "r{BAD}"}}\n',
         "predictions", 2),
        ("monitor/alerts.jsonl",
         f'{{"timestamp": "2026-11-19T09:00:00Z", "type": "FILE_TAMPERED", "model": "m{BAD}", "file": "x",'
         f' "message": "bad {BAD}"}}\n', "monitor_alerts", 1),
        ("predictions/baseline_distribution.json", f'{{\n"neg{BAD}": 0.5,\n"pos": 0.5\n}}\n',
         "baseline_distribution", 2),
        ("manifest.json", '{"files": [\n{"path": "m' + BAD + '.bin", "sha256": "' + "a" * 64 + '"}]}\n',
         "signature_manifest", 2),
        ("monitor/config.json", '{"monitored_models": [{"id": "m' + BAD + '", "path": "/models/m"}],\n'
         ' "baseline_dependencies": {"torch' + BAD + '": "2.1"}}\n', "monitor_config", 1),
    ],
)  # fmt: skip
def test_json_escapes_of_lone_surrogates_are_replaced_and_named(tmp_path, rel, content, kind, line):
    path = tmp_path / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")
    loader = REGISTRY.detect(path)
    assert loader is not None and loader.name == kind
    loaded = loader.load(path, LoadContext(relpath=rel))
    text = _frame_text(loaded.frame) + json.dumps(loaded.meta, ensure_ascii=False, default=str)
    text.encode("utf-8")  # would raise UnicodeEncodeError with a lone surrogate left
    assert REPLACEMENT in text
    assert [(w.path, w.line) for w in loaded.warnings if w.reason == REASON] == [(rel, line)]


def test_clean_json_gives_no_unicode_warning(tmp_path):
    path = tmp_path / "baseline_distribution.json"
    path.write_text('{"neg": 0.5, "pos \\ud83d\\ude00": 0.5}', encoding="utf-8")  # a valid pair: one emoji
    warnings: list = []
    assert read_json(path, LoadContext(relpath="b.json"), warnings) == {"neg": 0.5, "pos \U0001f600": 0.5}
    assert warnings == []


class _PluginLoader(Loader):
    """A third-party loader that returns lone surrogates (as decoded with surrogateescape).

    Columns:
        line (int): line number.
        text (str): the line.
    """

    name: ClassVar[str] = "plugin_text"
    columns: ClassVar[dict[str, str]] = {"line": "int", "text": "str"}

    def detect(self, path: Path) -> bool:
        return path.suffix == ".plug"

    def load(self, path: Path, ctx: LoadContext) -> Loaded:
        rows = [{"line": i, "text": raw.decode("utf-8", "surrogateescape")}
                for i, raw in enumerate(path.read_bytes().splitlines(), start=1)]  # fmt: skip
        return Loaded(self.name, ctx.relpath, self.make_frame(rows), meta={"title": "t\udcff"})


def test_collect_makes_any_loader_output_valid_unicode(tmp_path):
    case = tmp_path / "case"
    case.mkdir()
    (case / "notes.plug").write_bytes(b"fine\nbad \xff byte\nok\nworse \xfe\xfd\n")
    REGISTRY.register(_PluginLoader)
    try:
        evidence = collect_evidence(Case.open(case))
    finally:
        REGISTRY.unregister("plugin_text")
    loaded = evidence.first("plugin_text")
    assert loaded.frame["text"].tolist() == ["fine", f"bad {REPLACEMENT} byte", "ok", f"worse {REPLACEMENT * 2}"]
    assert loaded.meta == {"title": f"t{REPLACEMENT}"}
    assert [(w.line, w.reason) for w in loaded.warnings] == [
        (None, replaced_reason("file-level text")), (2, REASON), (4, REASON)]  # fmt: skip


def test_a_file_over_a_loaders_cap_is_unexamined_not_malformed(tmp_path):
    case = tmp_path / "case"
    (case / "predictions").mkdir(parents=True)
    big = case / "predictions" / "baseline_distribution.json"
    with big.open("wb") as fh:  # sparse: the size is over the cap, nothing is written past the head
        fh.write(b'{"neg": 0.5,')
        fh.truncate(MAX_FILE_BYTES + 1)
    opened = Case.open(case)
    evidence = collect_evidence(opened)
    assert evidence.findings == [] and evidence.first("baseline_distribution") is None
    assert opened.unexamined == [f"predictions/baseline_distribution.json: {MAX_FILE_BYTES + 1} bytes is over the "
                                 f"{MAX_FILE_BYTES}-byte limit for this kind of file: not read"]  # fmt: skip
    with pytest.raises(OverCap):
        read_json(big, LoadContext(relpath="b.json"), [])
