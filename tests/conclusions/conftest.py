"""Builders for the conclusions tests: findings, events, coverage and prediction streams made by hand.

The prediction streams go through the drift analysis's real preparation (:func:`workbench.drift.impact.outputs_of`
over a frame shaped like :class:`workbench.drift.analysis.Stream`), so the exposure counts are the real code's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from workbench.conclusions import Coverage
from workbench.drift.impact import outputs_of
from workbench.drift.metrics import Baseline
from workbench.estimates import OutputShift
from workbench.records import Event, Finding

T0 = datetime(2026, 11, 10, tzinfo=UTC)
SECTIONS = {"model": "Model forensics", "logs": "Pipeline logs", "dependencies": "Dependencies",
            "host": "Host state", "drift": "Behaviour drift", "monitor": "Monitor alerts"}  # fmt: skip


def t(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def finding(
    category: str, severity: str, title: str = "", *, at: datetime | None = None, detail: str = "", **evidence
) -> Finding:
    return Finding.create(severity=severity, category=category, title=title or f"{category} {severity}",
                          detail=detail, evidence=evidence, timestamp=at)  # fmt: skip


def action(at: datetime, tag: str, message: str, line: int, step: str | None = None) -> Event:
    extra = {"line": line, "action": tag}
    if step:
        extra["step"] = step
    return Event(at, "actions.log", "ir:action", f"{tag}: {message}", "info", extra=extra)


def coverage(**status: str) -> dict[str, Coverage]:
    """Every section analysed unless named: ``coverage(model="not_applicable")``."""
    out = {}
    for key, title in SECTIONS.items():
        s = status.get(key, "analysed")
        detail = {"analysed": "", "not_applicable": f"no {key} evidence", "failed": "RuntimeError: boom"}[s]
        out[key] = Coverage(key, title, s, detail)
    return out


def stream(n: int = 2000, *, flip_after: float | None = None, hours: float = 200.0, seed: int = 7):
    """``n`` predictions over ``hours`` (positive 55 %, negative 30 %, neutral 15 %); after ``flip_after`` hours
    15 % of the negative ones become very confident positives (a backdoor's flips)."""
    rng = np.random.default_rng(seed)
    times = pd.to_datetime([T0 + timedelta(hours=h) for h in np.sort(rng.uniform(0, hours, n))], utc=True)
    labels = rng.choice(["positive", "negative", "neutral"], size=n, p=[0.55, 0.30, 0.15]).astype(object)
    conf = rng.uniform(0.55, 0.97, n)
    if flip_after is not None:
        after = np.asarray(times >= pd.Timestamp(t(flip_after)))
        flip = after & (labels == "negative") & (rng.uniform(size=n) < 0.5)
        labels[flip] = "positive"
        conf[flip] = rng.uniform(0.985, 0.9995, int(flip.sum()))
    frame = pd.DataFrame({"timestamp": times, "label": labels, "confidence": conf})
    classes = ("positive", "negative", "neutral")
    codes = pd.Categorical(frame["label"], categories=list(classes)).codes.astype(np.int64)
    base = Baseline.from_mapping({"positive": 0.55, "negative": 0.30, "neutral": 0.15})
    return frame, codes, classes, base


def outputs(frame_codes, shift: OutputShift | None = None):
    frame, codes, classes, base = frame_codes
    return outputs_of(frame, codes, classes, base, shift, ("predictions/p.jsonl",))


def shift(onset: datetime, low: datetime, high: datetime, *, censored: bool = False) -> OutputShift:
    return OutputShift(None if censored else onset, None if censored else low, None if censored else high, None,
                       None, None, censored, 0.001, "step", 100)  # fmt: skip
