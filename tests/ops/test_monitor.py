"""The monitor service as a real subprocess (1 s interval) against a real webhook on 127.0.0.1, plus in-process
tests of its check logic (back-off with a fake clock, trust_mtime, symlinks)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
from pathlib import Path

import pytest

from tests.ops.conftest import WORKBENCH, Webhook, make_model, put, read_jsonl, wait_for, write_config
from workbench.evidence.base import LoadContext
from workbench.evidence.monitor_alerts import MonitorAlertsLoader
from workbench.ops import baseline as baseline_mod
from workbench.ops import monitor as monitor_mod
from workbench.ops.alerts import AlertDispatcher
from workbench.ops.config import parse_config
from workbench.ops.monitor import Monitor, StateStore


def _model(tmp_path: Path, name: str = "m1") -> Path:
    return make_model(tmp_path / "models" / name, b"weights" * 1000, extra={"vocab.txt": b"a\nb\n"})


def test_alerts_reach_jsonl_log_and_webhook_then_sigterm_stops_fast(tmp_path, webhook, start_monitor):
    model = _model(tmp_path)
    models = [{"id": "absent", "path": str(tmp_path / "nowhere")}, {"id": "m1", "path": str(model), "critical": True}]
    config = write_config(
        tmp_path / "config.json",
        models,
        alert_webhook=webhook.url,
        webhook_backoff_seconds=0.2,
        webhook_max_backoff_seconds=1,
    )
    mon = start_monitor(config)
    wait_for(lambda: mon.cycles() >= 1)
    assert read_jsonl(mon.alerts) == []
    # a model path that does not exist: a clear error, retried with back-off, the other model still watched
    errors = [r for r in mon.log() if r.get("level") == "error"]
    assert (
        errors[0]["model"] == "absent" and "No such file" in errors[0]["error"] and errors[0]["retry_in_seconds"] == 1
    )
    put(model / "model.safetensors", b"poisoned" * 1000)  # modify
    put(model / "backdoor.pkl", b"\x80\x04.")  # add
    (model / "vocab.txt").unlink()  # delete
    put(model / "config.json", link_to="/etc/passwd")  # replace by a symlink: an alert, never followed
    wait_for(lambda: len(read_jsonl(mon.alerts)) >= 4)
    by_type = {(a["type"], a["file"]) for a in read_jsonl(mon.alerts)}
    assert by_type == {
        ("FILE_TAMPERED", "model.safetensors"),
        ("UNEXPECTED_FILE", "backdoor.pkl"),
        ("FILE_MISSING", "vocab.txt"),
        ("FILE_TAMPERED", "config.json"),
    }
    tampered = mon.alerts_of("FILE_TAMPERED")
    weights = next(a for a in tampered if a["file"] == "model.safetensors")
    assert weights["severity"] == "critical" and len(weights["actual_hash"]) == 64 and weights["model"] == "m1"
    assert "symlink" in next(a for a in tampered if a["file"] == "config.json")["message"]
    # every alert reaches the webhook, once
    wait_for(lambda: webhook.ids() >= {a["id"] for a in read_jsonl(mon.alerts)})
    assert all(r["alert"]["type"] and r["text"].startswith("[") for r in webhook.received)
    # conditions that persist are not re-sent every cycle
    n = mon.cycles()
    wait_for(lambda: mon.cycles() >= n + 2)
    assert len(read_jsonl(mon.alerts)) == 4 and len(webhook.received) == 4
    # the log is JSON lines, carries the alerts, and never the webhook's path or query
    log = mon.log()
    assert all(r.get("level") != "raw" for r in log)
    assert sum(1 for r in log if r.get("level") == "critical" and "alert" in r) == 3
    raw_log = mon.log_path.read_text()
    assert "T0SECRET" not in raw_log and "qs-secret" not in raw_log and f"127.0.0.1:{webhook.port}" in raw_log
    # what the monitor wrote loads through the evidence loader with zero warnings
    loaded = MonitorAlertsLoader().load(mon.alerts, LoadContext("monitor/alerts.jsonl"))
    assert loaded.warnings == [] and len(loaded.frame) == 4
    code, seconds = mon.terminate(signal.SIGTERM)
    assert code == 0 and seconds < 1.0, seconds


def test_webhook_down_alerts_queued_then_delivered_and_restart_reports_change_made_while_down(tmp_path, start_monitor):
    hook = Webhook()
    hook.start()
    port = hook.port
    hook.stop()  # the endpoint refuses connections
    model = _model(tmp_path)
    config = write_config(
        tmp_path / "config.json",
        [{"id": "m1", "path": str(model)}],
        alert_webhook=hook.url,
        webhook_backoff_seconds=0.2,
        webhook_max_backoff_seconds=0.5,
        webhook_timeout_seconds=1,
    )
    first = start_monitor(config)
    wait_for(lambda: first.cycles() >= 1)
    baseline = json.loads(first.state.read_text())["models"]["m1"]["files"]
    put(model / "model.safetensors", b"first tamper")
    wait_for(lambda: first.alerts_of("FILE_TAMPERED"))
    queued = wait_for(lambda: read_jsonl(first.queue))
    assert [q["alert"]["file"] for q in queued] == ["model.safetensors"]
    wait_for(lambda: any("webhook delivery failed" in str(r.get("message")) for r in first.log()))
    assert first.terminate(signal.SIGINT)[0] == 0
    # while the monitor is down: another file changes, and the webhook comes back
    (model / "tokenizer.json").write_text("{}")
    hook = Webhook(port).start()
    try:
        second = start_monitor(config)
        wait_for(lambda: any(a["file"] == "tokenizer.json" for a in second.alerts_of("FILE_TAMPERED")))
        wait_for(lambda: queued[0]["alert_id"] in hook.ids())  # the alert queued by the first run
        wait_for(lambda: read_jsonl(second.queue) == [] and len(hook.ids()) >= 3)
        # the baseline was not silently replaced by the tampered files
        assert json.loads(second.state.read_text())["models"]["m1"]["files"] == baseline
        assert second.terminate()[0] == 0
    finally:
        hook.stop()


def test_webhook_500_and_hang_are_retried_while_checks_go_on_and_sigterm_still_stops(tmp_path, webhook, start_monitor):
    model = _model(tmp_path)
    config = write_config(
        tmp_path / "config.json",
        [{"id": "m1", "path": str(model)}],
        alert_webhook=webhook.url,
        webhook_backoff_seconds=0.1,
        webhook_max_backoff_seconds=0.3,
        webhook_timeout_seconds=1.5,
    )
    webhook.mode = "fail"
    mon = start_monitor(config)
    wait_for(lambda: mon.cycles() >= 1)
    put(model / "model.safetensors", b"x")
    wait_for(lambda: webhook.attempts >= 3)  # retried with back-off
    assert webhook.received == [] and len(read_jsonl(mon.queue)) == 1
    assert any(r.get("reason") == "HTTP 500" for r in mon.log())
    webhook.mode = "hang"
    webhook.release.clear()
    attempts = webhook.attempts
    wait_for(lambda: webhook.attempts > attempts)  # a request is now hanging
    cycles = mon.cycles()
    wait_for(lambda: mon.cycles() >= cycles + 2, timeout=6)  # checks go on meanwhile
    wait_for(lambda: any(r.get("reason") == "timed out" for r in mon.log()))
    wait_for(lambda: webhook.attempts > attempts + 1)  # hanging again after the back-off
    code, seconds = mon.terminate()  # SIGTERM while a delivery hangs
    assert code == 0 and seconds < 1.0, seconds
    assert len(read_jsonl(mon.queue)) == 1 and webhook.received == []  # kept for the next run


def _once(config: Path, state: Path, alerts: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_")}
    queue = state.with_name("queue.jsonl")
    argv = [*WORKBENCH, "monitor", "--config", str(config), "--state", str(state), "--alerts", str(alerts), "--once"]
    argv += ["--queue", str(queue)]
    return subprocess.run([*argv, *extra], capture_output=True, text=True, timeout=60, env=env, check=False)


def test_once_exit_status(tmp_path):
    model = _model(tmp_path)
    state, alerts = tmp_path / "state.json", tmp_path / "alerts.jsonl"
    config = write_config(tmp_path / "ok.json", [{"id": "m1", "path": str(model)}])
    first = _once(config, state, alerts)
    assert first.returncode == 0, first.stderr
    assert "baseline established" in first.stderr and state.exists()
    (model / "model.safetensors").write_bytes(b"changed")
    second = _once(config, state, alerts)
    assert second.returncode == 1, second.stderr
    assert [a["type"] for a in read_jsonl(alerts)] == ["FILE_TAMPERED"]


def test_unusable_config_or_state_exits_2_with_one_line(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from workbench.commands.monitor import command

    monkeypatch.setattr(signal, "signal", lambda *a: None)  # keep pytest's own handlers
    state, alerts = tmp_path / "state.json", tmp_path / "alerts.jsonl"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"check_interval_seconds": -1, "models": [{"id": "m", "path": "/m"}]}))
    args = ["--state", str(state), "--alerts", str(alerts), "--once"]
    res = CliRunner().invoke(command, ["--config", str(bad), *args])
    assert res.exit_code == 2
    assert res.stderr.strip().splitlines() == [
        f"workbench: error: {bad}: field 'check_interval_seconds': must be greater than 0, got -1"
    ]
    good = write_config(tmp_path / "good.json", [{"id": "m1", "path": str(_model(tmp_path))}])
    state.write_text("{not json")
    res = CliRunner().invoke(command, ["--config", str(good), *args])
    assert res.exit_code == 2 and "refusing to start rather than re-baseline silently" in res.stderr


# ------------------------------------------------------------------------------------------- in-process checks
class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _monitor(tmp_path: Path, models: list[dict], **fields) -> tuple[Monitor, FakeClock]:
    cfg = parse_config({"check_interval_seconds": 1, "models": models, **fields})
    clock = FakeClock()
    mon = Monitor(
        cfg,
        StateStore(tmp_path / "state.json"),
        AlertDispatcher(tmp_path / "alerts.jsonl"),
        threading.Event(),
        clock=clock,
    )
    return mon, clock


def test_failing_check_is_retried_with_exponential_backoff(tmp_path, monkeypatch):
    model = _model(tmp_path)
    mon, clock = _monitor(tmp_path, [{"id": "m1", "path": str(model)}], check_max_backoff_seconds=4)
    mon.start()
    calls = []
    real_scan = monitor_mod.scan_model

    def flaky(root):
        calls.append(clock.now)
        if len(calls) <= 4:
            raise PermissionError(13, "Permission denied", str(root))
        return real_scan(root)

    monkeypatch.setattr(monitor_mod, "scan_model", flaky)
    for t in range(0, 16):
        clock.now = float(t)
        result = mon.cycle()
    assert calls[:5] == [0.0, 1.0, 3.0, 7.0, 11.0]  # delays 1, 2, 4, then capped at 4
    assert result.failed == [] and mon.failures == {}


def test_trust_mtime_skips_unchanged_files_but_not_touched_ones(tmp_path, monkeypatch):
    model = _model(tmp_path)
    mon, _ = _monitor(tmp_path, [{"id": "m1", "path": str(model)}], trust_mtime=True)
    mon.start()
    hashed: list[str] = []
    real = baseline_mod._hash_one
    monkeypatch.setattr(baseline_mod, "_hash_one", lambda p, stop: hashed.append(p.name) or real(p, stop))
    assert mon.cycle().alerts == []
    assert hashed == []  # nothing re-read
    st = (model / "vocab.txt").stat()
    (model / "vocab.txt").write_bytes(b"x\ny\n")  # same size...
    os.utime(model / "vocab.txt", ns=(st.st_atime_ns, st.st_mtime_ns))  # ...and mtime set back
    result = mon.cycle()
    assert hashed == ["vocab.txt"]  # ctime changed: re-hashed, caught
    assert [(a.type, a.file) for a in result.alerts] == [("FILE_TAMPERED", "vocab.txt")]


def test_stop_interrupts_hashing(tmp_path):
    big = tmp_path / "big.bin"
    with big.open("wb") as fh:
        fh.truncate(64 * 1024 * 1024)
    stop = threading.Event()
    stop.set()
    with pytest.raises(baseline_mod.Interrupted):
        baseline_mod.hash_interruptible([big], stop)


def test_dependencies_non_critical_models_and_rebaseline(tmp_path):
    from importlib.metadata import version

    model = _model(tmp_path)
    deps = {"click": "0.0.1", "surely-not-installed-pkg": "1.0", "PyYAML": version("pyyaml")}
    mon, _ = _monitor(tmp_path, [{"id": "m1", "path": str(model), "critical": False}], baseline_dependencies=deps)
    mon.start()
    result = mon.cycle()
    found = {(a.type, a.file, a.severity) for a in result.alerts}
    assert found == {
        ("DEPENDENCY_CHANGED", "click", "critical"),
        ("DEPENDENCY_MISSING", "surely-not-installed-pkg", "high"),
    }
    (model / "model.safetensors").write_bytes(b"changed")
    result = mon.cycle()
    assert [(a.type, a.severity) for a in result.new] == [("FILE_TAMPERED", "high")]  # a non-critical model
    again, _ = _monitor(tmp_path, [{"id": "m1", "path": str(model)}])
    again.start(rebaseline=("m1",))  # the operator accepts the current files after a legitimate change
    assert again.cycle().alerts == []
    shutil.rmtree(model)
    assert [(a.type, a.severity) for a in again.cycle().new] == [("MODEL_MISSING", "critical")]
    with pytest.raises(monitor_mod.StateError, match="no such model"):
        _monitor(tmp_path, [{"id": "m1", "path": str(model)}])[0].start(rebaseline=("nope",))
