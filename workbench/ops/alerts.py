"""Where the monitor's alerts go: the structured log, an append-only alerts JSONL, and a webhook with a disk queue.

* **Log**: one JSON object per line on stderr (:func:`configure_logging`), alerts at level ``CRITICAL`` or
  ``WARNING`` with their fields.
* **alerts.jsonl**: one record per alert, in the evidence format the loaders read (``timestamp``, ``type``,
  ``model``, ``file``, ``severity``, ``message``, ``expected_hash``, ``actual_hash``, plus ``id``); only ever appended
  to and flushed to disk per batch.
* **Webhook**: every alert is first appended to a disk queue (JSONL), then a background thread POSTs the queue in
  order (JSON body ``{"text", "severity", "alert_id", "alert"}``, Slack-compatible ``text``; timeout; redirects
  refused) and removes what was delivered. A failure (refused, timed out, non-2xx) is retried with exponential
  back-off; what is undelivered stays in the queue across restarts and goes out once the endpoint answers.
  Delivery is at least once: a receiver may dedupe on ``alert_id``. The URL's path and query (often the secret)
  are never logged: only its scheme, host and port.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench._version import __version__
from workbench.ops.config import webhook_origin

__all__ = [
    "Alert",
    "AlertDispatcher",
    "JsonFormatter",
    "WebhookQueue",
    "WebhookSender",
    "configure_logging",
    "post_json",
    "utc_now_iso",
]

LOGGER_NAME = "workbench.ops"
log = logging.getLogger(f"{LOGGER_NAME}.alerts")


def utc_now_iso() -> str:
    """Now, UTC, ISO 8601 with milliseconds and ``Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``time``, ``level``, ``logger``, ``message`` and the record's ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        created = datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds")
        doc: dict[str, Any] = {
            "time": created.replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        doc.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str, ensure_ascii=False)


def configure_logging(level: int = logging.INFO, stream: Any = None) -> logging.Logger:
    """Send the ``workbench.ops`` loggers to stderr (or ``stream``) as JSON lines; returns that logger."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return logger


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert raised by the monitor (the original's ``type``, ``model``, ``file``, ``severity``, hashes)."""

    type: str
    severity: str
    message: str
    model: str | None = None
    file: str | None = None
    expected_hash: str | None = None
    actual_hash: str | None = None
    timestamp: str = field(default_factory=utc_now_iso)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def critical(self) -> bool:
        return self.severity == "critical"

    def record(self) -> dict[str, Any]:
        """The alerts.jsonl record (evidence format, see docs/evidence-formats.md)."""
        return {
            "timestamp": self.timestamp,
            "type": self.type,
            "model": self.model,
            "file": self.file,
            "severity": self.severity,
            "message": self.message,
            "expected_hash": self.expected_hash,
            "actual_hash": self.actual_hash,
            "id": self.id,
        }

    def webhook_payload(self) -> dict[str, Any]:
        """The JSON body POSTed to the webhook (``text`` as in the original, for Slack-style receivers)."""
        text = (
            f"[{self.severity.upper()}] Model Integrity Alert\nType: {self.type}\n"
            f"Model: {self.model or '-'}\nFile: {self.file or '-'}\n{self.message}"
        )
        return {"text": text, "severity": self.severity, "alert_id": self.id, "alert": self.record()}


def _fsync_append(path: Path, lines: Iterable[str]) -> None:
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    if not data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0), 0o640)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


class WebhookQueue:
    """Undelivered webhook payloads, one JSON object per line, in a file that survives restarts."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def put(self, payloads: Iterable[dict[str, Any]]) -> None:
        """Append payloads (each with an ``alert_id``); raises OSError when the disk refuses."""
        with self._lock:
            _fsync_append(self.path, (json.dumps(p, sort_keys=True) for p in payloads))

    def pending(self) -> list[dict[str, Any]]:
        """Queued payloads, oldest first; a corrupt line is logged and dropped from the view."""
        with self._lock:
            return self._read()

    def _read(self) -> list[dict[str, Any]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        out = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                log.error("webhook queue line %d is not JSON; dropped", number, extra={"fields": {"line": number}})
                continue
            if isinstance(item, dict) and item.get("alert_id"):
                out.append(item)
        return out

    def remove(self, alert_ids: set[str]) -> None:
        """Drop delivered payloads (atomic rewrite: the queue is never half-written)."""
        if not alert_ids:
            return
        with self._lock:
            keep = [p for p in self._read() if p.get("alert_id") not in alert_ids]
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            with tmp.open("w", encoding="utf-8") as fh:
                fh.writelines(json.dumps(p, sort_keys=True) + "\n" for p in keep)
                fh.flush()
                os.fsync(fh.fileno())
            tmp.replace(self.path)

    def __len__(self) -> int:
        return len(self.pending())


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[override]
        return None  # a redirect is a failure: never re-send an alert (or its secret URL) elsewhere


_OPENER = urllib.request.build_opener(_NoRedirect)


def post_json(url: str, payload: dict[str, Any], timeout: float) -> str | None:
    """POST ``payload`` as JSON. Returns None on a 2xx answer, else a short reason (never containing the URL)."""
    body = json.dumps(payload, sort_keys=True).encode("utf-8")
    headers = {"Content-Type": "application/json", "User-Agent": f"workbench-monitor/{__version__}"}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 (http(s) only, validated)
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            response.read(65536)
            status = response.status
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except urllib.error.URLError as exc:
        reason = exc.reason
        return "timed out" if isinstance(reason, TimeoutError) else f"unreachable ({type(reason).__name__}: {reason})"
    except TimeoutError:
        return "timed out"
    except (OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc.strerror if isinstance(exc, OSError) and exc.strerror else 'error'}"
    return None if 200 <= status < 300 else f"HTTP {status}"


class WebhookSender:
    """Delivers the queue in a background thread, with exponential back-off while the endpoint fails.

    Args:
        url: the webhook (secret; only its origin is logged).
        queue: the disk queue.
        stop: set when the service stops; every wait is interruptible by it.
        timeout: per request.
        backoff: first delay after a failure; doubled per consecutive failure up to ``max_backoff``.
    """

    def __init__(
        self,
        url: str,
        queue: WebhookQueue,
        stop: threading.Event,
        *,
        timeout: float = 10.0,
        backoff: float = 1.0,
        max_backoff: float = 300.0,
        post: Callable[[str, dict[str, Any], float], str | None] = post_json,
    ) -> None:
        self.url = url
        self.origin = webhook_origin(url) or "webhook"
        self.queue = queue
        self.stop = stop
        self.timeout = timeout
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._post = post
        self._wake = threading.Event()
        self._failures = 0
        self._thread: threading.Thread | None = None
        self.delivered = 0

    def start(self) -> None:
        """Start the background thread (a daemon: an in-flight request never delays shutdown)."""
        self._thread = threading.Thread(target=self._run, name="webhook-sender", daemon=True)
        self._thread.start()
        self._wake.set()  # deliver what a previous run left queued

    def wake(self) -> None:
        self._wake.set()

    def join(self, timeout: float) -> None:
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def delay(self) -> float:
        """Current back-off delay (0 when the last attempt succeeded)."""
        return 0.0 if not self._failures else min(self.max_backoff, self.backoff * 2 ** (self._failures - 1))

    def _run(self) -> None:
        while not self.stop.is_set():
            self._wake.wait(self.delay() or None)
            self._wake.clear()
            if self.stop.is_set():
                return
            try:
                self.flush_once()
            except OSError as exc:  # the queue file itself: log and go on
                self._failures += 1
                log.error("webhook queue unusable: %s", exc.strerror or exc, extra={"fields": {"queue": str(exc)}})

    def flush_once(self, deadline: float | None = None) -> bool:
        """Try to deliver the whole queue in order; stop at the first failure. Returns True when it is empty."""
        pending = self.queue.pending()
        done: set[str] = set()
        ok = True
        for payload in pending:
            if self.stop.is_set() and deadline is None:
                ok = False
                break
            if deadline is not None and time.monotonic() > deadline:
                ok = False
                break
            reason = self._post(self.url, payload, self.timeout)
            if reason is not None:
                self._failures += 1
                fields = {
                    "webhook": self.origin,
                    "reason": reason,
                    "queued": len(pending) - len(done),
                    "retry_in_seconds": round(self.delay(), 3),
                }
                log.warning("webhook delivery failed: %s; alerts stay queued", reason, extra={"fields": fields})
                ok = False
                break
            self._failures = 0
            done.add(payload["alert_id"])
        self.queue.remove(done)
        if done:
            self.delivered += len(done)
            fields = {"webhook": self.origin, "delivered": len(done)}
            log.info("webhook delivered %d alert(s)", len(done), extra={"fields": fields})
        return ok


class AlertDispatcher:
    """Sends each alert to the log, the alerts JSONL and (through the queue) the webhook.

    Args:
        alerts_path: the append-only alerts JSONL.
        queue: the webhook's disk queue, or None without a webhook.
        sender: woken after each batch, or None.
    """

    def __init__(self, alerts_path: Path, queue: WebhookQueue | None = None, sender: WebhookSender | None = None):
        self.alerts_path = Path(alerts_path)
        self.queue = queue
        self.sender = sender

    def emit(self, alerts: list[Alert]) -> None:
        """Dispatch a batch; a destination that fails is logged and the others still get the alerts."""
        if not alerts:
            return
        for alert in alerts:
            level = logging.CRITICAL if alert.critical else logging.WARNING
            log.log(
                level,
                "%s %s %s",
                alert.type,
                alert.model or "-",
                alert.file or "-",
                extra={"fields": {"alert": alert.record()}},
            )
        try:
            _fsync_append(self.alerts_path, (json.dumps(a.record(), sort_keys=True) for a in alerts))
        except OSError as exc:
            log.error(
                "cannot append to the alerts file: %s",
                exc.strerror or exc,
                extra={"fields": {"alerts_file": str(self.alerts_path)}},
            )
        if self.queue is not None:
            try:
                self.queue.put(a.webhook_payload() for a in alerts)
            except OSError as exc:
                log.error(
                    "cannot queue alerts for the webhook: %s",
                    exc.strerror or exc,
                    extra={"fields": {"queue_file": str(self.queue.path)}},
                )
        if self.sender is not None:
            self.sender.wake()


def close_quietly(sender: WebhookSender | None, timeout: float = 0.3) -> None:
    """Give the sender a moment to notice the stop; never blocks longer than ``timeout``."""
    if sender is not None:
        with contextlib.suppress(RuntimeError):
            sender.join(timeout)
