"""Hypothesis strategies of hostile evidence, and the checks every parser's output must pass.

The strategies mix what an attacker controls: arbitrary bytes, text with lone surrogates (written as invalid UTF-8
or as JSON ``\\ud800`` escapes), control and escape characters, byte-order marks, NULs, very long lines, and
documents shaped like the evidence (JSON lines with the loaders' keys, ``ps``/``ss``-like columns, CSV) whose values
are hostile. :func:`assert_valid_unicode` walks any result (records, dataclasses, frames, containers) and fails on a
string that cannot be encoded as UTF-8.
"""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import datetime
from enum import Enum
from typing import Any

import pandas as pd
from hypothesis import strategies as st

#: characters an attacker likes: surrogates, controls, escapes, bidi overrides, BOM, separators, NUL
NASTY_CHARS = st.sampled_from(
    ["\ud800", "\udfff", "\x00", "\x1b", "\x1b]0;x\x07", "\x9b", "\r", "\n", "\t", "\u202e", "\ufeff", "\u2028",
     "\\", '"', ",", "=", "|", "##[group]", "\xff", "é", "𝕏", " "]
)  # fmt: skip
#: words that steer the parsers into their interesting branches
WORDS = st.sampled_from(
    ["curl", "|", "bash", "http://203.0.113.7/p.sh", "pip", "install", "--index-url", "==", "numpy", "torch",
     "2026-11-03T10:21:06Z", "2026-11-03 10:21:06", "1796161868", "ESTAB", "LISTEN", "0.0.0.0:4444", "root",
     "python", "-c", "sha256", "model.safetensors", "BEHAVIOR_DRIFT", "INTEGRITY", "##[group]Run", "##[endgroup]",
     "section_start:1700000000:build", "[Pipeline] { (Build)", "ghp_" + "a1" * 18, "PGPASSWORD=x", "label", "NaN"]
)  # fmt: skip
TEXT = st.lists(st.one_of(WORDS, NASTY_CHARS, st.text(max_size=12)), max_size=24).map(" ".join)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), TEXT,
)  # fmt: skip
JSON_VALUES = st.recursive(
    SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)),
    max_leaves=12,
)  # fmt: skip
#: the keys the evidence loaders read (predictions, alerts, monitor config, manifests, baselines)
KEYS = st.sampled_from(
    ["timestamp", "time", "label", "predicted_class", "confidence", "model_version", "request_id", "type", "severity",
     "message", "model", "file", "expected_hash", "actual_hash", "distribution", "files", "sha256", "path", "size",
     "threshold", "window", "model_dir", "baseline_dependencies", "alert_webhook", "signature", "digest", "name"]
)  # fmt: skip
OBJECTS = st.dictionaries(st.one_of(KEYS, TEXT), JSON_VALUES, max_size=8)


def _encode(text: str, how: str) -> bytes:
    if how == "surrogatepass":  # a lone surrogate written as its 3 UTF-8-like bytes: invalid UTF-8
        return text.encode("utf-8", "surrogatepass")
    return text.encode("utf-8", "replace")


def _json_line(obj: Any, ascii_only: bool) -> str:
    try:
        return json.dumps(obj, ensure_ascii=ascii_only, allow_nan=True)
    except (TypeError, ValueError):
        return "{}"


@st.composite
def hostile_lines(draw) -> bytes:
    """Lines shaped like evidence (JSON objects, columns, CSV, log lines), hostile in their values and bytes."""
    kinds = st.sampled_from(["json", "columns", "csv", "log", "raw"])
    lines = []
    for kind in draw(st.lists(kinds, min_size=1, max_size=12)):
        if kind == "json":
            lines.append(_json_line(draw(OBJECTS), draw(st.booleans())))
        elif kind == "columns":
            lines.append("  ".join(draw(st.lists(st.one_of(WORDS, TEXT), min_size=1, max_size=12))))
        elif kind == "csv":
            lines.append(",".join(draw(st.lists(st.one_of(KEYS, WORDS, TEXT), min_size=1, max_size=6))))
        elif kind == "log":
            lines.append(draw(st.sampled_from(["2026-11-03T10:21:06Z ", "", "Nov  3 10:21:06 host "])) + draw(TEXT))
        else:
            lines.append(draw(st.text(max_size=80)))
    sep = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = draw(st.sampled_from(["", "\ufeff"])) + sep.join(lines) + draw(st.sampled_from(["", sep]))
    data = _encode(text, draw(st.sampled_from(["surrogatepass", "replace"])))
    if draw(st.booleans()):  # one very long line somewhere
        at = draw(st.integers(min_value=0, max_value=len(data)))
        data = data[:at] + b"A" * draw(st.sampled_from([70_000, 140_000])) + data[at:]
    return data


#: any bytes, or hostile evidence-shaped lines
EVIDENCE_BYTES = st.one_of(st.binary(max_size=2048), hostile_lines())


# ---------------------------------------------------------------------------------------------------- checks
def unicode_problems(value: Any, where: str = "result", depth: int = 0) -> list[str]:
    """Every string reachable from ``value`` that is not valid Unicode (a lone surrogate), with where it was."""
    if depth > 12:
        return []
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return [f"{where}: {value[:80]!r}"]
        return []
    if isinstance(value, bytes | bytearray | int | float | bool | Enum | datetime) or value is None:
        return []
    if isinstance(value, pd.DataFrame):
        out = unicode_problems(list(value.columns), f"{where}.columns", depth + 1)
        for col in value.columns:
            if value[col].dtype == object:
                out += unicode_problems(value[col].tolist(), f"{where}[{col}]", depth + 1)
        return out
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in unicode_problems(k, where, depth + 1)
                + unicode_problems(v, f"{where}[{k!r}]", depth + 1)]  # fmt: skip
    if isinstance(value, list | tuple | set | frozenset):
        return [p for i, v in enumerate(value) for p in unicode_problems(v, f"{where}[{i}]", depth + 1)]
    if dataclasses.is_dataclass(value):
        return [p for f in dataclasses.fields(value)
                for p in unicode_problems(getattr(value, f.name), f"{where}.{f.name}", depth + 1)]  # fmt: skip
    return []


def assert_valid_unicode(value: Any, where: str = "result") -> None:
    problems = unicode_problems(value, where)
    assert not problems, "text that is not valid Unicode left the parser: " + "; ".join(problems[:5])


def finite_or_nan(x: float) -> bool:
    return isinstance(x, float) and (math.isfinite(x) or math.isnan(x))
