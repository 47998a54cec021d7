"""The conclusions of an investigation, computed once: verdict and reasons, coverage, compromise start, exposure,
indicators, actions, milestones.

:func:`derive_conclusions` is the one place that turns findings and events into what a reviewer signs; every
output reads the :class:`~workbench.conclusions.record.Conclusions` it returns. The rules live in
:mod:`~workbench.conclusions.verdict`, :mod:`~workbench.conclusions.timing`, :mod:`~workbench.conclusions.indicators`
and :mod:`~workbench.conclusions.actions`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from workbench.conclusions.actions import actions_of, listing
from workbench.conclusions.coverage import coverage_of
from workbench.conclusions.indicators import indicators_of
from workbench.conclusions.record import (
    Action,
    Compromise,
    Conclusions,
    Coverage,
    Exposure,
    Indicator,
    Interval,
    Milestone,
    Reason,
    display,
    format_duration,
    iso,
)
from workbench.conclusions.response import Step, response_steps
from workbench.conclusions.timing import MILESTONES, compromise_of, exposure_of, intervals_of, milestones_of
from workbench.conclusions.verdict import decide, rank_findings
from workbench.estimates import PredictionOutputs
from workbench.records import Event, Finding

if TYPE_CHECKING:
    from workbench.case import CaseMeta

__all__ = [
    "MILESTONES",
    "Action",
    "Compromise",
    "Conclusions",
    "Coverage",
    "Exposure",
    "Indicator",
    "Interval",
    "Milestone",
    "Reason",
    "Step",
    "coverage_of",
    "derive_conclusions",
    "display",
    "format_duration",
    "iso",
    "listing",
    "rank_findings",
    "response_steps",
]


def derive_conclusions(
    findings: Iterable[Finding],
    events: Iterable[Event],
    coverage: Mapping[str, Coverage],
    *,
    meta: CaseMeta | None = None,
    outputs: PredictionOutputs | None = None,
    models: Iterable[str] = (),
    generated_at: datetime | None = None,
    plausible: Callable[[datetime], bool] = lambda ts: True,
) -> Conclusions:
    """Everything a reviewer signs, from the run's records.

    Args:
        findings: every finding of the run (redacted).
        events: the timeline's usable events (flagged times left out), any order.
        coverage: per section, what it examined (:func:`coverage_of`).
        meta: the case metadata (detection time).
        outputs: the prediction records as the drift analysis prepared them, or None.
        models: the model ids concerned (for actions).
        generated_at: the report's generation time.
        plausible: whether a finding's time is usable (the timeline's absurd-time rule).
    """
    findings = list(findings)
    events = sorted(events, key=lambda e: e.timestamp)
    verdict, reasons = decide(findings, coverage)
    compromise = compromise_of(verdict, findings, outputs, plausible)
    steps = response_steps(events)
    milestones = milestones_of(verdict, compromise, events, steps, meta, generated_at)
    exposure = exposure_of(compromise, milestones, events, outputs)
    indicators = indicators_of(verdict, findings)
    actions, recommendations = actions_of(verdict, findings, indicators, exposure, milestones, list(models))
    return Conclusions(
        verdict=verdict,
        reasons=reasons,
        coverage=dict(coverage),
        compromise=compromise,
        exposure=exposure,
        indicators=indicators,
        actions=actions,
        recommendations=recommendations,
        milestones=milestones,
        intervals=intervals_of(milestones, exposure),
    )
