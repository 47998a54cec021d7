"""The fast JSON-lines path of the predictions loader against the careful per-line path, on real files.

Every test writes a file, loads it twice (``PredictionsLoader()`` and ``PredictionsLoader(fast=False)``) and
requires the same table (every column, labels, versions, request ids, unexamined, limits) and the same warnings.
The hostile file mixes every kind of line the fast path must hand back to the careful one.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from workbench.drift import Baseline, analyse_stream, prepare_stream
from workbench.evidence import prediction_fast, predictions
from workbench.evidence.base import MAX_LINE_CHARS, LoadContext
from workbench.evidence.predictions import PredictionsLoader

pytestmark = pytest.mark.skipif(not prediction_fast.available(), reason="polars not installed")

_FIELDS = ("line", "time_ns", "label", "confidence", "version", "request_key")


def _both(path: Path, ctx: LoadContext):
    fast = PredictionsLoader().load(path, ctx)
    careful = PredictionsLoader(fast=False).load(path, ctx)
    return fast, careful


@pytest.fixture
def vouched(monkeypatch) -> list[int]:
    """Rows the fast path added in columns (so that a test cannot pass by the careful path alone)."""
    counts: list[int] = []
    original = predictions._Reader.add_rows

    def counting(self, lines, cols, start, stop):
        counts.append(stop - start)
        return original(self, lines, cols, start, stop)

    monkeypatch.setattr(predictions._Reader, "add_rows", counting)
    return counts


def _assert_same(fast, careful) -> None:
    a, b = fast.meta["table"], careful.meta["table"]
    for name in _FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype, name
        assert np.array_equal(x.view(np.int64) if name == "confidence" else x,
                              y.view(np.int64) if name == "confidence" else y), name  # fmt: skip
    assert a.labels == b.labels and a.versions == b.versions
    assert a.request_ids == b.request_ids
    assert a.unexamined == b.unexamined and a.limits == b.limits
    assert fast.warnings == careful.warnings


def _rng(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311 (test data)


def _normal(rng: random.Random, i: int) -> str:
    """A record as the bundled cases write them (keys sorted, no spaces), 7 s apart, confidences of 1 to 17 digits."""
    stamp = datetime.fromtimestamp(1_793_491_200 + i * 7 + rng.randint(0, 5), UTC).strftime("%Y-%m-%dT%H:%M:%S")
    label = rng.choices(["positive", "negative", "neutral"], [55, 30, 15])[0]
    return (
        f'{{"confidence":{round(rng.random(), rng.randint(1, 17))},"model_version":"sentiment-model-v2.1",'
        f'"predicted_class":"{label}","request_id":"req_{rng.getrandbits(48):012x}",'
        f'"timestamp":"{stamp}.{rng.randint(0, 999):03d}Z"}}'
    )


#: lines the fast path must not vouch for, or must vouch for with the careful path's exact result
ODD = [
    '{"timestamp":"2026-11-02T00:00:00Z","predicted_class":"positive","confidence":0.5}',  # other key order
    '{ "confidence" : 0.25 , "model_version" : "v" , "predicted_class" : "negative" , "request_id" : "r1" , '
    '"timestamp" : "2026-11-02T00:00:01.5Z" }',
    '{"confidence":0.5,"model_version":null,"predicted_class":"neutral","request_id":null,"timestamp":'
    '"2026-11-02T00:00:02+05:30"}',
    '{"confidence":null,"model_version":"","predicted_class":"neutral","request_id":"","timestamp":'
    '"2026-11-02T00:00:03.123456-01:00"}',
    '{"confidence":1,"model_version":"v","predicted_class":"positive","request_id":"r","timestamp":"2026-11-02T00:00:04Z"}',
    '{"confidence":0,"model_version":"v","predicted_class":"positive","request_id":"r","timestamp":"2026-11-02T00:00:05Z"}',
    '{"confidence":-0.0,"model_version":"v","predicted_class":"positive","request_id":"r","timestamp":"2026-11-02T00:00:06Z"}',
    '{"confidence":1.5,"model_version":"v","predicted_class":"positive","request_id":"r","timestamp":"2026-11-02T00:00:07Z"}',
    '{"confidence":-0.1,"model_version":"v","predicted_class":"positive","request_id":"r","timestamp":"2026-11-02T00:00:08Z"}',
    '{"confidence":"0.5","model_version":"v","predicted_class":"positive","request_id":"r","timestamp":"2026-11-02T00:00:09Z"}',
    '{"confidence":NaN,"model_version":"v","predicted_class":"positive","request_id":"r","timestamp":"2026-11-02T00:00:10Z"}',
    '{"confidence":true,"model_version":"v","predicted_class":"positive","request_id":"r","timestamp":"2026-11-02T00:00:11Z"}',
    '{"confidence":1e400,"model_version":"v","predicted_class":"positive","request_id":"r","timestamp":"2026-11-02T00:00:12Z"}',
    '{"confidence":0.5,"model_version":"v","predicted_class":1,"request_id":"r","timestamp":"2026-11-02T00:00:13Z"}',
    '{"confidence":0.5,"model_version":"v","predicted_class":true,"request_id":2,"timestamp":"2026-11-02T00:00:14Z"}',
    '{"confidence":0.5,"model_version":"v","predicted_class":"","request_id":"r","timestamp":"2026-11-02T00:00:15Z"}',
    '{"confidence":0.5,"model_version":"v","predicted_class":null,"label":"fallback","request_id":"r",'
    '"timestamp":"2026-11-02T00:00:16Z"}',
    '{"confidence":0.5,"model_version":"v","predicted_class":"a","predicted_class":"b","request_id":"r",'
    '"timestamp":"2026-11-02T00:00:17Z"}',  # duplicate key: the last wins in Python
    '{"confidence":0.5,"model_version":"v","predicted_class":"x","request_id":"r","timestamp":"2026-11-02T00:00:18Z"'
    ',"timestamp":"2026-11-03T00:00:00Z"}',
    '{"confidence":0.5,"model_version":{"a":1},"predicted_class":"x","request_id":"r","timestamp":"2026-11-02T00:00:19Z"}',
    '{"confidence":0.5,"model_version":"v","predicted_class":"caf\\u00e9","request_id":"r","timestamp":"2026-11-02T00:00:20Z"}',
    '{"confidence":0.5,"model_version":"v","predicted_class":"bad\\ud800","request_id":"r","timestamp":"2026-11-02T00:00:21Z"}',
    '{"confidence":0.5,"model_version":"v","predicted_class":"q\\"uote","request_id":"r","timestamp":"2026-11-02T00:00:22Z"}',
    '{"confidence":0.5,"model_version":"v","predicted_class":"négatif","request_id":"r","timestamp":"2026-11-02T00:00:23Z"}',
    # timestamps in other forms, and instants that are no instants
    '{"confidence":0.5,"model_version":"v","predicted_class":"x","request_id":"r","timestamp":"2026-11-02 00:00:24"}',
    '{"confidence":0.5,"model_version":"v","predicted_class":"x","request_id":"r","timestamp":"2026-11-02T00:00:25"}',
    '{"confidence":0.5,"model_version":"v","predicted_class":"x","request_id":"r","timestamp":1793577626}',
    '{"confidence":0.5,"model_version":"v","predicted_class":"x","request_id":"r","timestamp":"1793577627"}',
    '{"confidence":0.5,"model_version":"v","predicted_class":"x","request_id":"r","timestamp":"2026-02-30T00:00:00Z"}',
    '{"confidence":0.5,"model_version":"v","predicted_class":"x","request_id":"r","timestamp":"2026-11-02T00:00:60Z"}',
    '{"confidence":0.5,"model_version":"v","predicted_class":"x","request_id":"r","timestamp":"2026-11-02T00:00:29+00:60"}',
    '{"confidence":0.5,"model_version":"v","predicted_class":"x","request_id":"r","timestamp":"1600-01-01T00:00:00Z"}',
    '{"confidence":0.5,"model_version":"v","predicted_class":"x","request_id":"r","timestamp":"2026-11-02T00:00:31.1234Z"}',
    '{"confidence":0.5,"model_version":"v","predicted_class":"x","request_id":"r","timestamp":"2026-11-02T00:00:32.1234567Z"}',
    '{"confidence":0.5,"model_version":"v","predicted_class":"x","request_id":"r","timestamp":null}',
    '{"confidence":0.5,"model_version":"v","predicted_class":"x","request_id":"r"}',
    # not records at all
    "",
    "   \t",
    "{broken",
    "[1, 2]",
    '"text"',
    '{"confidence":0.5,"predicted_class":"x","timestamp":"2026-11-02T00:00:33Z"} trailing',
    '{"confidence":0.5,"model_version":"v","predicted_class":"x","request_id":"r","timestamp":"2026-11-02T00:00:34Z",}',
    "{}",
    '{"other": 1}',
]


def _hostile(path: Path, rng: random.Random, n: int = 3000) -> Path:
    """``n`` normal lines with every ODD line scattered among them, some of them twice (duplicates), some out of
    time order, CRLF endings, invalid UTF-8, an over-long line and one longer than a block."""
    lines: list[bytes] = [_normal(rng, i).encode() for i in range(n)]
    for odd in ODD:
        lines.insert(rng.randrange(len(lines)), odd.encode())
    for _ in range(40):  # exact duplicates, and copies out of time order
        lines.insert(rng.randrange(len(lines)), lines[rng.randrange(len(lines))])
    for i in rng.sample(range(len(lines)), 30):
        lines[i] += b"\r"
    bad = _normal(rng, 5).replace("positive", "pos").replace("negative", "pos").replace("neutral", "pos")
    lines.insert(rng.randrange(len(lines)), bad.replace("pos", "p\xff\xfeos").encode("latin-1"))
    long_ok = _normal(rng, 6)[:-1] + ',"pad":"' + "x" * (MAX_LINE_CHARS + 10) + '"}'
    lines.insert(rng.randrange(len(lines)), long_ok.encode())
    lines.insert(rng.randrange(len(lines)), b'{"pad":"' + b"y" * (3 * MAX_LINE_CHARS) + b'"}')
    lines.insert(rng.randrange(len(lines)), ('{"x":"' + "z" * (MAX_LINE_CHARS - 7) + '"}').encode())  # exactly the cap
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@pytest.mark.parametrize("block", [prediction_fast.BLOCK_BYTES, 4096, 70_000])
def test_hostile_file_same_as_careful(tmp_path, ctx, monkeypatch, block, vouched):
    monkeypatch.setattr(prediction_fast, "BLOCK_BYTES", block)
    path = _hostile(tmp_path / "predictions.jsonl", _rng(15))
    fast, careful = _both(path, ctx)
    _assert_same(fast, careful)
    assert len(fast.meta["table"]) > 3000 and len(fast.warnings) > 20  # the odd lines were really there
    assert sum(vouched) > 2900  # and the normal ones went the fast way


def test_first_lines_odd_and_bom(tmp_path, ctx):
    rng = _rng(3)
    text = "\ufeff" + "\n".join(["", "{broken", '{"other": 1}', *(_normal(rng, i) for i in range(500))]) + "\n"
    path = tmp_path / "p.jsonl"
    path.write_text(text, encoding="utf-8")
    _assert_same(*_both(path, ctx))


def test_no_trailing_newline_and_crlf(tmp_path, ctx):
    rng = _rng(4)
    path = tmp_path / "p.jsonl"
    path.write_bytes(b"\r\n".join(_normal(rng, i).encode() for i in range(300)))
    fast, careful = _both(path, ctx)
    _assert_same(fast, careful)
    assert len(fast.meta["table"]) == 300 and fast.warnings == []


def test_key_order_of_the_file_is_learnt(tmp_path, ctx):
    rng = _rng(5)
    rows = [json.loads(_normal(rng, i)) for i in range(400)]
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(dict(reversed(r.items()))) + "\n" for r in rows))
    _assert_same(*_both(path, ctx))


def test_over_the_line_cap(tmp_path, ctx, monkeypatch):
    monkeypatch.setattr(predictions, "MAX_ROWS", 1000)
    monkeypatch.setattr(predictions, "_CHUNK", 64)
    monkeypatch.setattr(prediction_fast, "BLOCK_BYTES", 8192)
    path = _hostile(tmp_path / "predictions.jsonl", _rng(16), n=2500)
    fast, careful = _both(path, ctx)
    _assert_same(fast, careful)
    assert "over the cap of 1,000 records" in fast.meta["table"].unexamined[0]


def test_label_and_version_caps(tmp_path, ctx, monkeypatch):
    monkeypatch.setattr(predictions, "MAX_LABELS", 5)
    monkeypatch.setattr(predictions, "MAX_VERSIONS", 2)
    monkeypatch.setattr(prediction_fast, "BLOCK_BYTES", 2048)
    rng = _rng(6)
    lines = []
    for i in range(600):
        line = _normal(rng, i).replace('"positive"', f'"class-{rng.randrange(12)}"')
        lines.append(line.replace("sentiment-model-v2.1", f"v{rng.randrange(4)}"))
        if i % 37 == 0:
            lines.append("{broken")
            lines.append(line.replace('"predicted_class"', '"label"').replace("class-", "careful-"))
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join(lines) + "\n")
    fast, careful = _both(path, ctx)
    _assert_same(fast, careful)
    assert fast.meta["table"].limits


def test_warning_cap(tmp_path, ctx, monkeypatch):
    monkeypatch.setattr(predictions, "MAX_WARNINGS", 5)
    _assert_same(*_both(_hostile(tmp_path / "p.jsonl", _rng(17)), ctx))


def test_bundled_cases_same_as_careful(ctx):
    root = Path(__file__).resolve().parents[2] / "evidence-samples"
    files = sorted(p for p in root.glob("*/predictions/predictions.*") if p.suffix in {".jsonl", ".csv"})
    assert files
    for path in files:
        _assert_same(*_both(path, LoadContext(relpath=str(path.relative_to(root)))))


def test_drift_report_same_as_careful(tmp_path):
    """The whole analysis (stream, scan, interval, excess, windows, warnings) on a drifting file with odd lines."""
    rng = _rng(18)
    lines = []
    for i in range(6000):
        line = _normal(rng, i)
        if i > 3600 and rng.random() < 0.12:
            line = line.replace('"negative"', '"positive"').replace('"neutral"', '"positive"')
        lines.append(line)
    path = _hostile(tmp_path / "unused.jsonl", rng, n=10)  # the odd lines, then the drifting stream
    odd = path.read_bytes().splitlines()
    for line in odd:
        lines.insert(rng.randrange(len(lines)), line.decode("latin-1"))
    path = tmp_path / "predictions.jsonl"
    path.write_bytes("\n".join(lines).encode("latin-1") + b"\n")
    baseline = Baseline.from_mapping({"positive": 0.55, "negative": 0.30, "neutral": 0.15})
    docs = []
    for loaded in _both(path, LoadContext(relpath="predictions/predictions.jsonl")):
        stream, warnings = prepare_stream([loaded], baseline)
        report = analyse_stream(stream, baseline, window="1d")
        report.warnings = [*loaded.warnings, *warnings, *report.warnings]
        docs.append(report.to_dict())
    assert docs[0]["exposure"] is not None
    assert docs[0] == docs[1]


_CSV_HEADER = "timestamp,request_id,label,confidence,model_version"
#: CSV rows the fast path must hand back (or read exactly as the csv module does)
CSV_ODD = [
    '2026-11-02T00:00:00Z,r1,"neutral, mostly",0.5,v',  # quoted cell
    '2026-11-02T00:00:01Z,r1,"say ""hi""",0.5,v',
    "2026-11-02T00:00:02Z,r1,positive,0.5",  # too few cells
    "2026-11-02T00:00:03Z,r1,positive,0.5,v,extra",
    "2026-11-02T00:00:04Z,,positive,,",  # empty cells: None, NaN
    "2026-11-02T00:00:05Z,r1,,0.5,v",  # no class
    "2026-11-02 00:00:06,r1,positive,0.5,v",  # naive, space
    "2026-11-02T00:00:07,r1,positive,0.5,v",
    "1793577608,r1,positive,0.5,v",
    "2026-02-30T00:00:09Z,r1,positive,0.5,v",
    "2026-11-02T00:00:10Z,r1,positive, 0.5,v",  # float() strips spaces
    "2026-11-02T00:00:11Z,r1,positive,.5,v",
    "2026-11-02T00:00:12Z,r1,positive,1_0,v",
    "2026-11-02T00:00:13Z,r1,positive,nan,v",
    "2026-11-02T00:00:14Z,r1,positive,1.5,v",
    "2026-11-02T00:00:15Z,r1,positive,-0.0,v",
    "2026-11-02T00:00:16Z,r1,positive,1e-3,v",
    "2026-11-02T00:00:17Z,r1, positive ,0.5, v ",  # spaces kept
    "2026-11-02T00:00:18Z,r1,négatif,0.5,v",
    "2026-11-02T00:00:19Z,r1,tab\there,0.5,v",
    "2026-11-02T00:00:20Z,r1,cr\rinside,0.5,v",
    "",
    "  ",
    ",,,,",
    "not,a,record",
]


def _csv_normal(rng: random.Random, i: int) -> str:
    rec = json.loads(_normal(rng, i))
    return f"{rec['timestamp']},{rec['request_id']},{rec['predicted_class']},{rec['confidence']},{rec['model_version']}"


@pytest.mark.parametrize("block", [prediction_fast.BLOCK_BYTES, 4096])
def test_hostile_csv_same_as_careful(tmp_path, ctx, monkeypatch, block, vouched):
    monkeypatch.setattr(prediction_fast, "BLOCK_BYTES", block)
    rng = _rng(19)
    lines = [_csv_normal(rng, i).encode() for i in range(3000)]
    for odd in CSV_ODD:
        lines.insert(rng.randrange(len(lines)), odd.encode())
    for _ in range(30):
        lines.insert(rng.randrange(len(lines)), lines[rng.randrange(len(lines))])
    for i in rng.sample(range(len(lines)), 30):
        lines[i] += b"\r"
    lines.insert(rng.randrange(len(lines)), b"2026-11-02T00:00:30Z,r,p\xffos,0.5,v")
    lines.insert(rng.randrange(len(lines)), b"2026-11-02T00:00:31Z,r,positive,0.5," + b"v" * (MAX_LINE_CHARS + 5))
    path = tmp_path / "predictions.csv"
    path.write_bytes(b"\n".join([b"\xef\xbb\xbf" + _CSV_HEADER.encode(), *lines]) + b"\n")
    fast, careful = _both(path, ctx)
    _assert_same(fast, careful)
    assert len(fast.warnings) > 10 and sum(vouched) > 2900


def test_csv_header_variants(tmp_path, ctx):
    rng = _rng(20)
    rows = [_csv_normal(rng, i).split(",") for i in range(300)]
    path = tmp_path / "p.csv"
    # other column order, upper-case names with spaces, an extra column, predicted_class and label both present
    text = " Label ,confidence,Timestamp,extra,predicted_class\n" + "".join(
        f"{r[2]}-l,{r[3]},{r[0]},x{i},{r[2] if i % 7 else ''}\n" for i, r in enumerate(rows)
    )
    path.write_text(text)
    _assert_same(*_both(path, ctx))


def test_csv_without_class_column_raises_alike(tmp_path, ctx):
    path = tmp_path / "p.csv"
    path.write_text("timestamp,score\n2026-11-02T00:00:00Z,0.5\n")
    with pytest.raises(predictions.MalformedEvidence) as fast:
        PredictionsLoader().load(path, ctx)
    with pytest.raises(predictions.MalformedEvidence) as careful:
        PredictionsLoader(fast=False).load(path, ctx)
    assert str(fast.value) == str(careful.value)
