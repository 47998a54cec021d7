"""``workbench monitor --config FILE [--once]``: the model integrity monitor service.

Exit status: 0 stopped by SIGTERM/SIGINT, or ``--once`` found nothing critical; 1 ``--once`` found a critical
alert; 2 unusable configuration or state file (one-line reason on stderr). Logs are JSON lines on stderr.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

import click

from workbench.termsafe import echo, shown

__all__ = ["command"]

DEFAULT_DIR = Path("monitor")


class _SafeLines(logging.Formatter):
    """Wraps the monitor's JSON-lines formatter: each line redacted and terminal-safe (:mod:`workbench.termsafe`);
    file names and messages come from the watched folders."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        from workbench.termsafe import json_text

        line = self.inner.format(record)
        try:
            return json_text(json.loads(line), indent=None, allow_nan=True)
        except ValueError:  # not a JSON line: one text line
            return shown(line)


def _safe_log_lines(logger: logging.Logger) -> None:
    for handler in logger.handlers:
        handler.setFormatter(_SafeLines(handler.formatter))


def _pick(flag: Path | None, from_config: Path | None, default: str) -> Path:
    return flag or from_config or DEFAULT_DIR / default


@click.command("monitor")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(path_type=Path),
    envvar="WORKBENCH_MONITOR_CONFIG",
    help="Monitor configuration (JSON). [env WORKBENCH_MONITOR_CONFIG]",
)
@click.option("--once", is_flag=True, help="Run one check cycle and exit: 1 when something critical was found.")
@click.option(
    "--state",
    "state_path",
    type=click.Path(path_type=Path),
    envvar="WORKBENCH_MONITOR_STATE",
    help="Baselines file (default: config 'state_file', else monitor/state.json). [env WORKBENCH_MONITOR_STATE]",
)
@click.option(
    "--alerts",
    "alerts_path",
    type=click.Path(path_type=Path),
    envvar="WORKBENCH_MONITOR_ALERTS",
    help="Append-only alerts JSONL (default: config 'alerts_file', else monitor/alerts.jsonl). "
    "[env WORKBENCH_MONITOR_ALERTS]",
)
@click.option(
    "--queue",
    "queue_path",
    type=click.Path(path_type=Path),
    envvar="WORKBENCH_MONITOR_QUEUE",
    help="Undelivered webhook alerts (default: config 'queue_file', else monitor/webhook-queue.jsonl). "
    "[env WORKBENCH_MONITOR_QUEUE]",
)
@click.option(
    "--rebaseline",
    multiple=True,
    metavar="MODEL_ID",
    help="Drop MODEL_ID's stored baseline and take a new one from its current files (after a rollback).",
)
@click.option(
    "--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info", show_default=True
)
def command(
    config_path: Path,
    once: bool,
    state_path: Path | None,
    alerts_path: Path | None,
    queue_path: Path | None,
    rebaseline: tuple[str, ...],
    log_level: str,
) -> None:
    """Watch model folders for tampering: baselines, periodic checks, alerts to log, JSONL and webhook.

    The webhook URL may come from WORKBENCH_ALERT_WEBHOOK instead of the config (keep secrets out of ConfigMaps).
    """
    from workbench.ops.alerts import AlertDispatcher, WebhookQueue, WebhookSender, close_quietly, configure_logging
    from workbench.ops.config import ConfigError, load_config
    from workbench.ops.monitor import Interrupted, Monitor, StateError, StateStore

    _safe_log_lines(configure_logging(getattr(logging, log_level.upper())))
    try:
        config = load_config(config_path)
        if os.environ.get("WORKBENCH_ALERT_WEBHOOK"):
            config = config.with_webhook(os.environ["WORKBENCH_ALERT_WEBHOOK"])
    except ConfigError as exc:
        echo(f"workbench: error: {exc}", err=True)
        sys.exit(2)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        logging.getLogger("workbench.ops.monitor").info(
            "signal %s received, stopping", signal.Signals(signum).name, extra={"fields": {"signal": signum}}
        )
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    state = StateStore(_pick(state_path, config.state_file, "state.json"))
    sender = queue = None
    if config.alert_webhook:
        queue = WebhookQueue(_pick(queue_path, config.queue_file, "webhook-queue.jsonl"))
        sender = WebhookSender(
            config.alert_webhook,
            queue,
            stop,
            timeout=config.webhook_timeout_seconds,
            backoff=config.webhook_backoff_seconds,
            max_backoff=config.webhook_max_backoff_seconds,
        )
    dispatcher = AlertDispatcher(_pick(alerts_path, config.alerts_file, "alerts.jsonl"), queue, sender)
    monitor = Monitor(config, state, dispatcher, stop, sender=sender)
    try:
        monitor.start(rebaseline, background=not once)
    except StateError as exc:
        echo(f"workbench: error: {exc}", err=True)
        sys.exit(2)
    except Interrupted:
        sys.exit(0)
    code = monitor.run(once=once, flush_seconds=min(30.0, config.webhook_timeout_seconds * 2))
    close_quietly(sender)
    sys.exit(code)
