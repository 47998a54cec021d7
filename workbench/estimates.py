"""Typed estimates an analysis hands to the conclusions: the statistical shift of the model's outputs and the
impact of any window on the predictions served.

The drift analysis produces them (:mod:`workbench.drift.impact`); :mod:`workbench.conclusions` consumes them. They
live here, below both, so that the conclusions never import an analysis and never re-parse an untyped mapping.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["ClassExcess", "Flipped", "OutputShift", "PredictionOutputs", "WindowImpact"]


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class ClassExcess:
    """Net excess predictions of one class in a window: ``n_in × (share inside − share outside)``, 95 % interval.

    Positive: the class was predicted more often than outside the window; negative: less often.
    """

    label: str
    estimate: float
    low: float
    high: float

    def to_dict(self) -> dict[str, Any]:
        return {"estimate": round(self.estimate, 1), "low": round(self.low, 1), "high": round(self.high, 1)}


@dataclass(frozen=True, slots=True)
class Flipped:
    """Estimated predictions flipped to one class: its unusually confident predictions beyond the expected number.

    Attributes:
        label: the class predictions were flipped to.
        estimate / low / high: the estimate and its 95 % interval (never below 0).
        threshold: the confidence above which a prediction counts (the class's 99th percentile outside the window).
        rule: how it was computed, in one sentence.
    """

    label: str
    estimate: float
    low: float
    high: float
    threshold: float
    rule: str

    def to_dict(self) -> dict[str, Any]:
        return {"class": self.label, "estimate": round(self.estimate, 1), "low": round(self.low, 1),
                "high": round(self.high, 1), "confidence_threshold": round(self.threshold, 4),
                "rule": self.rule}  # fmt: skip


@dataclass(frozen=True, slots=True)
class WindowImpact:
    """What the predictions served in a window show.

    Attributes:
        start / end: the window (``end`` None: to the last record).
        predictions: predictions served in it.
        excess: net excess per class (empty when no comparison was possible).
        compared_with: what ``excess`` compares the window with (``predictions outside the window`` or
            ``the baseline distribution``), or why it could not (``no baseline and too few predictions outside``).
        shifted: whether some class's excess interval excludes 0.
        flipped: the flipped-prediction estimate, when the records carry confidences and enough of them.
    """

    start: datetime
    end: datetime | None
    predictions: int
    excess: tuple[ClassExcess, ...] = ()
    compared_with: str = ""
    shifted: bool = False
    flipped: Flipped | None = None


@dataclass(frozen=True, slots=True)
class OutputShift:
    """A statistically detected change of the output distribution (corroboration, not proof of a cause).

    Attributes:
        onset / onset_low / onset_high: change time and its 95 % interval (None when censored).
        end / end_low / end_high: when the shift ended inside the records, or None (still present at the end).
        censored: the shift was already present at the first record.
        p_value: permutation-calibrated p value of the scan.
        model: ``step`` or ``epidemic`` (a shift that ended).
        predictions: predictions inside the shift's own window.
        excess: net excess per class inside the shift's own window.
    """

    onset: datetime | None
    onset_low: datetime | None
    onset_high: datetime | None
    end: datetime | None
    end_low: datetime | None
    end_high: datetime | None
    censored: bool
    p_value: float
    model: str
    predictions: int
    excess: tuple[ClassExcess, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (the ``statistical_onset`` object of the conclusions)."""
        return {
            "onset": _iso(self.onset),
            "onset_interval": [_iso(self.onset_low), _iso(self.onset_high)] if self.onset_low else None,
            "end": _iso(self.end),
            "end_interval": [_iso(self.end_low), _iso(self.end_high)] if self.end_low else None,
            "censored": self.censored,
            "p_value": self.p_value,
            "model": self.model,
            "predictions": self.predictions,
            "excess_by_class": {e.label: e.to_dict() for e in self.excess},
        }


@dataclass(frozen=True, slots=True)
class PredictionOutputs:
    """The prediction records of a case as the conclusions see them.

    Attributes:
        first / last: times of the first and last prediction record.
        total: records analysed.
        shift: the detected change, or None.
        impact: ``impact(start, end)`` → :class:`WindowImpact` of any window (``end`` None: to the last record).
        sources: the evidence files the records came from.
    """

    first: datetime
    last: datetime
    total: int
    shift: OutputShift | None
    impact: Callable[[datetime, datetime | None], WindowImpact]
    sources: tuple[str, ...] = ()
