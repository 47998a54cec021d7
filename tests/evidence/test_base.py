"""Tests of the helpers this package added to workbench.evidence.base."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar

import pandas as pd
import pytest

from workbench.errors import MalformedEvidence
from workbench.evidence import base
from workbench.evidence.base import LoadContext, Loaded, Loader


class _AllTypes(Loader):
    """All column types.

    Columns:
        a (int): int. b (float): float. c (bool): bool. d (datetime): time. e (str): text. f (object): any.
    """

    name: ClassVar[str] = "all_types"
    columns: ClassVar[dict[str, str]] = {
        "a": "int",
        "b": "float",
        "c": "bool",
        "d": "datetime",
        "e": "str",
        "f": "object",
    }

    def detect(self, path):
        return False

    def load(self, path, ctx):
        return Loaded(self.name, ctx.relpath, self.empty_frame())


def test_make_frame_types_and_order():
    rows = [{"e": "x", "a": 1, "d": datetime(2026, 1, 1, tzinfo=UTC), "zzz": 0}, {"a": None, "b": 2.5, "c": True}]
    df = _AllTypes().make_frame(rows)
    assert list(df.columns) == list("abcdef")
    assert [str(t) for t in df.dtypes] == ["Int64", "float64", "boolean", "datetime64[ns, UTC]", "object", "object"]
    assert df.loc[0, "a"] == 1 and pd.isna(df.loc[1, "a"]) and pd.isna(df.loc[1, "d"])
    columnar = _AllTypes().make_frame({"a": [1, 2], "e": ["x", "y"]})
    assert columnar["a"].tolist() == [1, 2] and columnar["b"].isna().all()
    empty = _AllTypes().make_frame([])
    assert empty.dtypes.equals(_AllTypes().empty_frame().dtypes)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-19T09:05:12Z", datetime(2026, 11, 19, 9, 5, 12, tzinfo=UTC)),
        ("2026-11-19T10:05:12+01:00", datetime(2026, 11, 19, 9, 5, 12, tzinfo=UTC)),
        ("9999-01-01T00:00:00Z", None),
        ("", None),
        (None, None),
        ("tomorrow", None),
        (10**400, None),
        (1763542800, datetime(2025, 11, 19, 9, 0, tzinfo=UTC)),
    ],
)
def test_parse_time(value, expected):
    assert base.parse_time(value, LoadContext("x")) == expected


def test_sniff_helpers(tmp_path):
    small = tmp_path / "s.json"
    small.write_bytes(b'\xef\xbb\xbf{"a": NaN}')
    assert base.sniff_json(small) == {"a": None}
    big = tmp_path / "b.txt"
    big.write_text("line\n" * 2000)
    assert base.sniff_json(big) is None
    assert base.sniff_lines(big, limit=3) == ["line"] * 3
    assert base.sniff_text(big)[1] is False
    assert base.sniff_lines(tmp_path) == []


def test_read_json(tmp_path):
    ctx = LoadContext("doc.json")
    path = tmp_path / "doc.json"
    path.write_bytes(b'{"k": "caf\xe9"}')
    warnings: list = []
    assert base.read_json(path, ctx, warnings) == {"k": "caf\ufffd"}
    assert len(warnings) == 1
    path.write_text("[" * 100000)
    with pytest.raises(MalformedEvidence, match=r"doc\.json"):
        base.read_json(path, ctx, [])
    with pytest.raises(MalformedEvidence, match="limit"):
        base.check_size(path, ctx, limit=10)


def test_iter_lines_bom_and_long_lines(tmp_path, monkeypatch):
    monkeypatch.setattr(base, "MAX_LINE_CHARS", 10)
    path = tmp_path / "x.txt"
    path.write_bytes(b"\xef\xbb\xbfhello\r\n" + b"y" * 50 + b"\nend")
    warnings: list = []
    assert list(base.iter_lines(path, LoadContext("x.txt"), warnings)) == [(1, "hello"), (2, "y" * 10), (3, "end")]
    assert [(w.line, "cut" in w.reason) for w in warnings] == [(2, True)]
