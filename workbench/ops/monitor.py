"""The model integrity monitor service (the playbook's Phase 1 checks run as its Phase 5 service).

Each cycle re-hashes every file of every configured model (streaming, in parallel, interruptible) and compares it
with the model's baseline; optionally checks installed packages against ``baseline_dependencies``. Differences
become alerts (``FILE_TAMPERED``, ``FILE_MISSING``, ``UNEXPECTED_FILE``, ``FILE_UNREADABLE``, ``MODEL_MISSING``,
``DEPENDENCY_CHANGED``, ``DEPENDENCY_MISSING``; with trust material ``SIGNATURE_INVALID``, ``MODEL_UNSIGNED``,
``SIGNATURE_UNVERIFIED`` from :mod:`workbench.ops.monitor_signature`) sent through
:class:`~workbench.ops.alerts.AlertDispatcher`.

What differs from the original:

* Baselines are persisted in a state file (written atomically) and reloaded on start: a model changed while the
  monitor was down is reported at start-up, never silently taken as the new baseline. Only a model absent from the
  state gets a baseline from its current files (logged), or one named with ``rebaseline`` (an operator's decision).
* Nothing is ever followed through a symlink; a model file replaced by a symlink or a special file is an alert.
* Hashing streams in 1 MiB chunks, so memory stays flat; with ``trust_mtime`` a file whose size, mtime, ctime and
  inode all match the baseline is not re-read (ctime and inode cannot be set back by a user).
* An alert is raised once per condition per run (the same tampered file is not re-sent every cycle); a new
  digest or a condition that clears and comes back raises it again.
* A model whose check fails (an exception, an unreadable path) is logged and retried with exponential back-off
  (interval × 2^n, capped by ``check_max_backoff_seconds``) while the other models go on.
* ``stop`` (a :class:`threading.Event`, set by SIGTERM/SIGINT) interrupts hashing within one chunk and the interval
  wait at once.

Severities follow the original (tampered/missing critical, unexpected high); a model configured with
``"critical": false`` has its alerts lowered one step (critical → high).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from workbench.checks.integrity import is_signature_file
from workbench.ops.alerts import Alert, AlertDispatcher, WebhookSender, utc_now_iso
from workbench.ops.baseline import (
    Interrupted,
    Scan,
    StateError,
    StateStore,
    hash_interruptible,
    scan_model,
    unchanged,
)
from workbench.ops.config import ModelSpec, MonitorConfig
from workbench.ops.monitor_signature import SignatureWatch

__all__ = ["CycleResult", "Interrupted", "Monitor", "StateError", "StateStore"]

log = logging.getLogger("workbench.ops.monitor")


@dataclass(slots=True)
class CycleResult:
    """One cycle: every active alert (``alerts``), those raised for the first time (``new``), failed checks."""

    alerts: list[Alert] = field(default_factory=list)
    new: list[Alert] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def critical(self) -> int:
        return sum(1 for a in self.alerts if a.critical)


def _content(scan: Scan) -> Scan:
    """The walk without signature files, which are never model content (signing after the baseline is no
    ``UNEXPECTED_FILE``; the signature itself is checked by :class:`SignatureWatch` when trust is configured)."""
    return Scan({r: st for r, st in scan.regular.items() if not is_signature_file(r)}, scan.links, scan.special,
                scan.unreadable)  # fmt: skip


def _lower(severity: str, critical_model: bool) -> str:
    if critical_model:
        return severity
    return {"critical": "high", "high": "medium"}.get(severity, severity)


class Monitor:
    """The service: baselines, cycles, back-off, alert de-duplication.

    Args:
        config: validated configuration.
        state: the baseline store.
        dispatcher: where alerts go.
        stop: set to stop (SIGTERM/SIGINT handlers set it).
        sender: the webhook sender (started by :meth:`start`, flushed by ``run(once=True)``), or None.
        clock: monotonic clock (tests pass a fake one).
    """

    def __init__(
        self,
        config: MonitorConfig,
        state: StateStore,
        dispatcher: AlertDispatcher,
        stop: threading.Event,
        *,
        sender: WebhookSender | None = None,
        clock: Any = time.monotonic,
    ) -> None:
        self.config = config
        self.state = state
        self.dispatcher = dispatcher
        self.stop = stop
        self.sender = sender
        self.clock = clock
        self.active: dict[tuple, Alert] = {}
        self.failures: dict[str, int] = {}
        self.next_due: dict[str, float] = {}
        self.cycles = 0
        self.signatures = SignatureWatch()

    # ------------------------------------------------------------------------------------------------ baselines
    def start(self, rebaseline: tuple[str, ...] = (), *, background: bool = True) -> None:
        """Load the state; drop the baselines named in ``rebaseline``; take baselines of models that have none.

        Args:
            rebaseline: model ids whose stored baseline is dropped (an operator's decision, e.g. after a rollback).
            background: start the webhook sender thread (``run(once=True)`` flushes in the caller instead).

        Raises:
            StateError: the state file is unusable, or ``rebaseline`` names an unknown model.
        """
        self.state.load()
        known = {m.id for m in self.config.models}
        for mid in rebaseline:
            if mid not in known:
                raise StateError(f"--rebaseline {mid}: no such model in the configuration")
            if self.state.models.pop(mid, None) is not None:
                log.warning(
                    "baseline of %s dropped on request; taking a new one", mid, extra={"fields": {"model": mid}}
                )
        fields = {
            "models": len(self.config.models),
            "interval_seconds": self.config.check_interval_seconds,
            "state_file": str(self.state.path),
            "webhook": self.config.webhook_display,
        }
        log.info("model integrity monitor starting", extra={"fields": fields})
        for spec in self.config.models:
            if spec.id not in self.state.models:
                self._guarded(spec, self._establish)
        if self.sender is not None and background:
            self.sender.start()

    def _establish(self, spec: ModelSpec) -> list[Alert]:
        scan = _content(scan_model(spec.path))
        hashed = hash_interruptible([spec.path / r for r in sorted(scan.regular)], self.stop)
        files: dict[str, Any] = {}
        for rel, st in scan.regular.items():
            res = hashed[spec.path / rel]
            if isinstance(res, OSError):
                raise res
            files[rel] = {
                "sha256": res[0],
                "size": st.st_size,
                "mtime_ns": st.st_mtime_ns,
                "ctime_ns": st.st_ctime_ns,
                "ino": st.st_ino,
            }
        for rel, target in scan.links.items():
            files[rel] = {"symlink": target}
            log.warning(
                "symlink in model folder recorded, not followed",
                extra={"fields": {"model": spec.id, "file": rel, "target": target}},
            )
        self.state.models[spec.id] = {"path": str(spec.path), "established": utc_now_iso(), "files": files}
        self.state.save()
        fields = {"model": spec.id, "files": len(files), "path": str(spec.path)}
        log.warning("baseline established (no earlier baseline in the state file)", extra={"fields": fields})
        return []

    # ---------------------------------------------------------------------------------------------------- checks
    def check_model(self, spec: ModelSpec) -> list[Alert]:
        """Compare one model folder with its baseline; returns the alerts that hold now."""
        base = self.state.models[spec.id]["files"]
        alerts: list[Alert] = []

        def add(
            kind: str, sev: str, msg: str, rel: str | None, expected: str | None = None, actual: str | None = None
        ) -> None:
            alerts.append(Alert(kind, _lower(sev, spec.critical), msg, spec.id, rel, expected, actual))

        try:
            full = scan_model(spec.path)
        except (FileNotFoundError, NotADirectoryError) as exc:
            add("MODEL_MISSING", "critical", f"Model folder {spec.path} is gone ({exc.strerror})", None)
            return alerts
        scan = _content(full)
        base = {rel: entry for rel, entry in base.items() if not is_signature_file(rel)}
        quick = self.config.trust_mtime
        to_hash = {r for r, st in scan.regular.items() if not (quick and r in base and unchanged(base[r], st))}
        hashed = hash_interruptible([spec.path / r for r in sorted(to_hash)], self.stop)
        current = {r: base[r]["sha256"] for r in scan.regular if r not in to_hash}
        for rel in sorted(to_hash):
            res = hashed[spec.path / rel]
            if isinstance(res, OSError):
                add("FILE_UNREADABLE", "high", f"'{rel}' cannot be read: {res.strerror or res}", rel)
            else:
                current[rel] = res[0]
        for rel, entry in sorted(base.items()):
            expected, actual = entry.get("sha256"), current.get(rel)
            if rel in scan.links and scan.links[rel] != entry.get("symlink"):
                msg = f"'{rel}' was replaced by a symlink to {scan.links[rel]!r} (not followed)"
                add("FILE_TAMPERED", "critical", msg, rel, expected)
            elif rel in scan.special:
                add("FILE_TAMPERED", "critical", f"'{rel}' was replaced by a special file", rel, expected)
            elif "symlink" in entry and rel not in scan.links:
                add("FILE_TAMPERED", "critical", f"symlink '{rel}' was replaced or removed", rel, None, actual)
            elif expected and rel not in scan.regular and rel not in scan.links:
                add("FILE_MISSING", "critical", f"Expected model file '{rel}' is missing", rel, expected)
            elif expected and actual and actual != expected:
                msg = f"Model file '{rel}' hash mismatch. Expected: {expected[:16]}..., Got: {actual[:16]}..."
                add("FILE_TAMPERED", "critical", msg, rel, expected, actual)
        for rel in sorted(set(scan.regular) - set(base)):
            add("UNEXPECTED_FILE", "high", f"Unexpected file '{rel}' in model directory", rel, None, current.get(rel))
        for rel in sorted(set(scan.links) - set(base)):
            msg = f"Unexpected symlink '{rel}' -> {scan.links[rel]!r} in model directory (not followed)"
            add("UNEXPECTED_FILE", "high", msg, rel)
        for rel in sorted(set(scan.special) - set(base)):
            add("UNEXPECTED_FILE", "high", f"Unexpected special file '{rel}' in model directory", rel)
        for rel, reason in sorted(scan.unreadable.items()):
            add("FILE_UNREADABLE", "high", f"'{rel}' cannot be read: {reason}", rel)
        signatures = sorted(r for r in full.regular if is_signature_file(r))
        for kind, sev, msg, rel in self.signatures.check(spec.id, spec.path, spec.trust, current, signatures):
            add(kind, sev, msg, rel)
        return alerts

    def check_dependencies(self) -> list[Alert]:
        """Installed distributions of this interpreter against ``baseline_dependencies`` (the original's check)."""
        if not self.config.baseline_dependencies:
            return []
        from importlib.metadata import distributions

        import pandas as pd

        from workbench.deps import check_dependencies

        rows = [{"name": d.metadata["Name"], "version": d.version} for d in distributions() if d.metadata["Name"]]
        frame = pd.DataFrame(rows, columns=["name", "version"])
        alerts = []
        for f in check_dependencies(frame, self.config.baseline_dependencies, source="installed packages"):
            kind = "DEPENDENCY_CHANGED" if f.category == "dependency_changed" else "DEPENDENCY_MISSING"
            alerts.append(
                Alert(
                    kind,
                    f.severity.value,
                    f.title,
                    file=f.evidence.get("package"),
                    expected_hash=None,
                    actual_hash=None,
                )
            )
        return alerts

    def _guarded(self, spec: ModelSpec, check: Any) -> list[Alert] | None:
        """Run a check unless it is backing off; on failure log it and schedule a retry with back-off."""
        now = self.clock()
        if now < self.next_due.get(spec.id, 0.0):
            return None
        try:
            alerts = check(spec)
        except Interrupted:
            raise
        except Exception as exc:  # noqa: BLE001 (a failing check must never stop the service)
            n = self.failures[spec.id] = self.failures.get(spec.id, 0) + 1
            delay = min(self.config.check_max_backoff_seconds, self.config.check_interval_seconds * 2 ** (n - 1))
            self.next_due[spec.id] = now + delay
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            fields = {
                "model": spec.id,
                "path": str(spec.path),
                "error": f"{type(exc).__name__}: {reason}",
                "failures": n,
                "retry_in_seconds": round(delay, 3),
            }
            log.error("check of %s failed; retrying with back-off", spec.id, extra={"fields": fields})
            return None
        if self.failures.pop(spec.id, None):
            log.info("check of %s succeeds again", spec.id, extra={"fields": {"model": spec.id}})
        self.next_due.pop(spec.id, None)
        return alerts

    def cycle(self) -> CycleResult:
        """Run every due check once and dispatch the alerts not already raised in this run.

        Raises:
            Interrupted: stop was set while hashing.
        """
        t0 = time.monotonic()
        self.cycles += 1
        result = CycleResult()
        checked: set[str | None] = set()
        for spec in self.config.models:
            if spec.id not in self.state.models:
                self._guarded(spec, self._establish)
                continue
            alerts = self._guarded(spec, self.check_model)
            if alerts is None:
                result.failed.append(spec.id)
                continue
            checked.add(spec.id)
            result.alerts += alerts
        try:
            result.alerts += self.check_dependencies()
            checked.add(None)
        except Exception as exc:  # noqa: BLE001 (same: log, go on, retry next cycle)
            log.error("dependency check failed: %s", exc, extra={"fields": {"error": type(exc).__name__}})
        now_keys = {}
        for a in result.alerts:
            now_keys[(a.type, a.model, a.file, a.actual_hash, a.message)] = a
        for key in [k for k in self.active if k[1] in checked and k not in now_keys]:
            gone = self.active.pop(key)
            log.info(
                "condition cleared: %s %s %s",
                gone.type,
                gone.model,
                gone.file,
                extra={"fields": {"type": gone.type, "model": gone.model, "file": gone.file}},
            )
        result.new = [a for k, a in now_keys.items() if k not in self.active]
        self.active.update({k: a for k, a in now_keys.items() if k not in self.active})
        self.dispatcher.emit(result.new)
        result.seconds = time.monotonic() - t0
        fields = {
            "cycle": self.cycles,
            "alerts": len(result.alerts),
            "new_alerts": len(result.new),
            "critical": result.critical,
            "failed_checks": len(result.failed),
            "duration_ms": round(result.seconds * 1000, 1),
        }
        if result.new:
            log.critical("CHECK #%d: %d new alert(s) raised", self.cycles, len(result.new), extra={"fields": fields})
        else:
            log.info(
                "CHECK #%d: %s",
                self.cycles,
                "all models verified OK" if not result.alerts else "no new alert",
                extra={"fields": fields},
            )
        return result

    # ------------------------------------------------------------------------------------------------------ run
    def run(self, *, once: bool = False, flush_seconds: float = 5.0) -> int:
        """Cycle until ``stop`` is set (or once). Returns the exit status: 1 when ``once`` found a critical alert.

        The caller has called :meth:`start`.
        """
        if once:
            try:
                result = self.cycle()
            except Interrupted:
                return 0
            if self.sender is not None:
                self.sender.flush_once(deadline=time.monotonic() + flush_seconds)
            return 1 if result.critical else 0
        while not self.stop.is_set():
            t0 = time.monotonic()
            try:
                self.cycle()
            except Interrupted:
                break
            self.stop.wait(max(0.0, self.config.check_interval_seconds - (time.monotonic() - t0)))
        log.info("model integrity monitor stopped", extra={"fields": {"cycles": self.cycles}})
        return 0
