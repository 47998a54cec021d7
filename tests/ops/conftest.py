"""Fixtures for the operations tests: model trees, cosign-style signed versions, a webhook server, a monitor process.

Everything runs on ``tmp_path`` and 127.0.0.1: signing keys are generated per test (ECDSA P-256), manifests are
signed like ``cosign sign-blob --key`` (base64 DER over the manifest bytes), the webhook is a real
``http.server`` whose behaviour (answer 200, answer 500, hang) the test switches, and the monitor is the real CLI in
a subprocess.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

WORKBENCH = [sys.executable, "-m", "workbench"]


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, step: float = 0.05) -> Any:
    """Poll until ``predicate()`` is truthy (returns it) or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"condition not met within {timeout}s: {getattr(predicate, '__name__', predicate)}")


def put(path: Path, data: bytes | None = None, *, link_to: str | None = None) -> None:
    """Replace or create ``path`` atomically (staged next to its folder, then renamed), so that a monitor cycle
    running meanwhile sees the old state or the new one, never an empty or half-written file."""
    stage = path.parent.parent / f".stage-{path.name}"
    if link_to is not None:
        stage.symlink_to(link_to)
    else:
        stage.write_bytes(data or b"")
    stage.replace(path)


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# ------------------------------------------------------------------------------------------------------ signing
class Signer:
    """An ECDSA P-256 key pair; signs model folders as the original playbook's pipeline would (cosign)."""

    def __init__(self, root: Path) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.public = root / "keys" / "cosign.pub"
        self.public.parent.mkdir(parents=True, exist_ok=True)
        self.public.write_bytes(
            self.key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def sign(self, model_dir: Path, created: str | None) -> bytes:
        """Write ``.signatures/manifest.json`` listing every file and ``manifest.sig``; returns the manifest."""
        files = sorted(p for p in model_dir.rglob("*") if p.is_file() and ".signatures" not in p.parts)
        entries = [
            {
                "path": p.relative_to(model_dir).as_posix(),
                "sha256": hashlib.sha256(p.read_bytes()).hexdigest(),
                "size": p.stat().st_size,
            }
            for p in files
        ]
        doc = {"version": 1, "model_id": model_dir.name, "hash_algorithm": "sha256", "files": entries}
        if created:
            doc["created"] = created
        manifest = json.dumps(doc, indent=2, sort_keys=True).encode()
        sig_dir = model_dir / ".signatures"
        sig_dir.mkdir(exist_ok=True)
        (sig_dir / "manifest.json").write_bytes(manifest)
        (sig_dir / "manifest.sig").write_bytes(base64.b64encode(self.key.sign(manifest, ec.ECDSA(hashes.SHA256()))))
        return manifest


def make_model(path: Path, weights: bytes, *, extra: dict[str, bytes] | None = None) -> Path:
    """A small model folder: model.safetensors (opaque bytes here), config.json, tokenizer.json, extra files."""
    path.mkdir(parents=True)
    (path / "model.safetensors").write_bytes(weights)
    (path / "config.json").write_text(json.dumps({"architectures": ["BertModel"], "hidden_size": 16}))
    (path / "tokenizer.json").write_text(json.dumps({"model": {"vocab": {"[PAD]": 0, "good": 1}}}))
    for name, data in (extra or {}).items():
        (path / name).write_bytes(data)
    return path


@pytest.fixture
def signer(tmp_path: Path) -> Signer:
    return Signer(tmp_path)


@pytest.fixture
def tree(tmp_path: Path, signer: Signer) -> dict[str, Path]:
    """Roots of a deployment: a deployed model ``sentiment`` (signed v2, then tampered), archive versions v1 and
    v2 (signed), v3 (unsigned, newest by name and mtime), v4 (signed by another key)."""
    roots = {k: tmp_path / k for k in ("models", "archive", "incidents", "quarantine")}
    roots["archive"] = roots["models"] / "archive"
    signer.sign(make_model(roots["archive"] / "sentiment-v1", b"weights-v1" * 100), "2026-10-01T10:00:00Z")
    signer.sign(make_model(roots["archive"] / "sentiment-v2", b"weights-v2" * 100), "2026-11-01T10:00:00Z")
    make_model(roots["archive"] / "sentiment-v3", b"weights-v3-unsigned" * 100)
    Signer(tmp_path / "other").sign(
        make_model(roots["archive"] / "sentiment-v4", b"weights-v4" * 100), "2026-12-01T10:00:00Z"
    )
    deployed = make_model(roots["models"] / "sentiment", b"weights-v2" * 100)
    signer.sign(deployed, "2026-11-01T10:00:00Z")
    # the attack: weights edited and a pickle dropped next to them
    (deployed / "model.safetensors").write_bytes(b"weights-v2-TAMPERED" * 100)
    (deployed / "optimizer.pkl").write_bytes(b"\x80\x04\x95\x10\x00cos\nsystem\n.")
    return roots


# ------------------------------------------------------------------------------------------------------ webhook
class Webhook:
    """A real HTTP server on 127.0.0.1; ``mode`` is ``ok``, ``fail`` (HTTP 500) or ``hang`` (no answer)."""

    SECRET_PATH = "/services/T0SECRET/B0SECRET/xoxb-do-not-log"

    def __init__(self, port: int = 0) -> None:
        self.received: list[dict] = []
        self.attempts = 0
        self.mode = "ok"
        self.release = threading.Event()
        self.port = port
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.SECRET_PATH}?token=qs-secret"

    def start(self) -> Webhook:
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook.attempts += 1
                if hook.mode == "hang":
                    hook.release.wait(15)
                    return
                if hook.mode == "fail":
                    self.send_response(500)
                    self.end_headers()
                    return
                hook.received.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.release.set()
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def ids(self) -> set[str]:
        return {r["alert_id"] for r in self.received}


@pytest.fixture
def webhook():
    hook = Webhook().start()
    yield hook
    hook.stop()


# ------------------------------------------------------------------------------------------------------ monitor
class MonitorProcess:
    """``workbench monitor`` in a subprocess; stderr (JSON log lines) goes to a file read by the test."""

    def __init__(self, workdir: Path, config: Path, *extra: str) -> None:
        self.workdir = workdir
        self.log_path = workdir / f"monitor-{time.monotonic_ns()}.log"
        self.alerts = workdir / "out" / "alerts.jsonl"
        self.state = workdir / "out" / "state.json"
        self.queue = workdir / "out" / "queue.jsonl"
        argv = [
            *WORKBENCH,
            "monitor",
            "--config",
            str(config),
            "--state",
            str(self.state),
            "--alerts",
            str(self.alerts),
            "--queue",
            str(self.queue),
            *extra,
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_")}
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=self._log, cwd=workdir, env=env)

    def log(self) -> list[dict]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                out.append({"message": line, "level": "raw"})
        return out

    def cycles(self) -> int:
        return sum(1 for r in self.log() if str(r.get("message", "")).startswith("CHECK #"))

    def alerts_of(self, kind: str) -> list[dict]:
        return [a for a in read_jsonl(self.alerts) if a["type"] == kind]

    def terminate(self, sig: int = signal.SIGTERM) -> tuple[int, float]:
        """Send ``sig``; returns (exit code, seconds until exit)."""
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=10)
        elapsed = time.monotonic() - t0
        self._log.close()
        return code, elapsed

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._log.close()


@pytest.fixture
def start_monitor(tmp_path: Path):
    started: list[MonitorProcess] = []

    def start(config: Path, *extra: str) -> MonitorProcess:
        proc = MonitorProcess(tmp_path, config, *extra)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()


def write_config(path: Path, models: list[dict], **fields: Any) -> Path:
    doc = {"check_interval_seconds": 1, "models": models, **fields}
    path.write_text(json.dumps(doc, indent=2))
    return path
