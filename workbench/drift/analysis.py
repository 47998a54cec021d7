"""Behaviour-drift analysis of a case: prediction records against the baseline distribution.

Reads the ``predictions`` evidence (every file, merged into one stream, as compact columns: see
:mod:`workbench.drift.stream`) and the first ``baseline_distribution``; records the loader's caps left out are
this section's ``unexamined``.
Returns ``behavior_drift`` findings, ``ml:drift:onset`` / ``ml:drift:end`` / ``ml:drift:detected`` events, the
prediction outputs the conclusions read (:meth:`DriftReport.outputs`) and the ``exposure`` object of
``workbench drift --json`` (the statistical shift alone; an investigation's exposure window is the conclusions')::

    {"onset": ISO 8601 UTC or null, "onset_interval": [lo, hi] or null, "end": ISO or null (ongoing),
     "end_interval": [lo, hi] or null, "predictions": int, "excess_by_class": {class: {"estimate", "low", "high"}},
     "excess_total": float, "p_value": float, "model": "step" | "epidemic", "onset_censored": bool}

``exposure`` is null when no change is found.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from workbench.drift.changepoint import ChangeScan, scan_changes
from workbench.drift.columns import bincount
from workbench.drift.impact import outputs_of_arrays
from workbench.drift.metrics import ALPHA, LEGACY_THRESHOLD, MIN_EFFECT, Baseline, Comparison, compare_to_baseline
from workbench.drift.metrics import confidence_shift as _confidence_shift
from workbench.drift.stream import Stream, iso, prepare_stream
from workbench.drift.windows import fit_window, window_table, window_text
from workbench.estimates import ClassExcess, OutputShift, PredictionOutputs
from workbench.parameters import value as option
from workbench.records import Event, EvidenceWarning, Finding, Severity
from workbench.timeparse import display_time

if TYPE_CHECKING:
    from workbench.analysis import AnalysisContext, AnalysisResult

__all__ = ["ATLAS", "DriftReport", "Stream", "analyse", "analyse_stream", "iso", "prepare_stream", "render"]

DETECTOR = "workbench.drift"
ATLAS = ("AML.T0018.000", "AML.T0031")


@dataclass(slots=True)
class DriftReport:
    """Everything the drift analysis concluded about one stream (library result for the CLI and the report).

    Attributes:
        verdict: ``drift``, ``no drift`` or ``insufficient data``.
        reason: one line behind the verdict.
        overall: the whole stream against the baseline (None without a baseline).
        exposed: the exposure window against the baseline (None without a change or a baseline).
        windows: per-window table (:func:`workbench.drift.windows.window_table`), empty without a baseline.
        confidence: per class KS and PSI of confidence scores inside vs outside the exposure window.
    """

    stream: Stream
    baseline: Baseline | None
    scan: ChangeScan
    verdict: str
    reason: str
    overall: Comparison | None
    exposed: Comparison | None
    windows: pd.DataFrame
    window: str
    confidence: pd.DataFrame
    legacy_threshold: float = LEGACY_THRESHOLD
    findings: list[Finding] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    warnings: list[EvidenceWarning] = field(default_factory=list)
    summary: str = ""

    def exposure(self) -> dict[str, Any] | None:
        """The ``exposure`` object of ``workbench drift --json`` (module docstring), or None without a change."""
        scan = self.scan
        if not scan.changed or scan.excess is None:
            return None
        excess = {
            str(r["class"]): {"estimate": round(float(r["excess"]), 1), "low": round(float(r["excess_low"]), 1),
                              "high": round(float(r["excess_high"]), 1)}
            for _, r in scan.excess.iterrows()
        }  # fmt: skip
        return {
            "onset": None if scan.onset_censored else iso(scan.onset),
            "onset_interval": [iso(t) for t in scan.onset_interval] if scan.onset_interval else None,
            "end": iso(scan.end),
            "end_interval": [iso(t) for t in scan.end_interval] if scan.end_interval else None,
            "predictions": int(scan.n_exposed),
            "excess_by_class": excess,
            "excess_total": round(float(scan.excess["excess"].clip(lower=0).sum()), 1),
            "p_value": scan.p_value,
            "model": scan.model,
            "onset_censored": scan.onset_censored,
        }

    def shift(self) -> OutputShift | None:
        """The detected change as the conclusions read it, or None without a change."""
        scan = self.scan
        if not scan.changed or scan.excess is None:
            return None
        lo, hi = scan.onset_interval or (None, None)
        elo, ehi = scan.end_interval or (None, None)
        excess = tuple(ClassExcess(str(r["class"]), float(r["excess"]), float(r["excess_low"]),
                                   float(r["excess_high"])) for _, r in scan.excess.iterrows())  # fmt: skip
        return OutputShift(
            onset=None if scan.onset_censored else _opt(scan.onset), onset_low=_opt(lo), onset_high=_opt(hi),
            end=_opt(scan.end), end_low=_opt(elo), end_high=_opt(ehi), censored=scan.onset_censored,
            p_value=float(scan.p_value) if scan.p_value is not None else float("nan"), model=str(scan.model),
            predictions=int(scan.n_exposed), excess=excess,
        )  # fmt: skip

    def outputs(self) -> PredictionOutputs | None:
        """The stream, its detected change and the impact of any window (for the conclusions)."""
        stream = self.stream
        return outputs_of_arrays(stream.times, stream.codes, stream.confidence, stream.classes, self.baseline,
                                 self.shift(), stream.sources)  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """The ``workbench drift --json`` document: ``findings``, ``exposure``, ``windows`` and context."""
        return jsonable({
            "findings": [f.to_dict() for f in self.findings],
            "exposure": self.exposure(),
            "windows": self.windows.to_dict(orient="records"),
            "verdict": self.verdict,
            "reason": self.reason,
            "summary": self.summary,
            "window": self.window,
            "predictions": len(self.stream),
            "classes": list(self.stream.classes),
            "scan": {"verdict": self.scan.verdict, "reason": self.scan.reason, "p_value": self.scan.p_value,
                     "statistic": self.scan.statistic, "threshold": self.scan.threshold,
                     "permutations": self.scan.permutations},
            "baseline_comparison": None if self.overall is None else self.overall.table().to_dict(orient="records"),
            "legacy": None if self.overall is None else {"jsd": self.overall.legacy_jsd,
                                                         "threshold": self.legacy_threshold,
                                                         "fired": self.overall.legacy_jsd > self.legacy_threshold},
            "warnings": [w.to_dict() for w in self.warnings],
        })  # fmt: skip


def jsonable(value: Any) -> Any:
    """``value`` with timestamps as ISO strings, numpy scalars as Python ones and NaN / inf as None."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, pd.Timestamp):
        return iso(value)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if value is pd.NaT or (value is not None and not isinstance(value, str | int | float | bool)):
        return None if pd.isna(value) else str(value)
    return value


def _opt(ts: pd.Timestamp | None) -> datetime | None:
    return None if ts is None or pd.isna(ts) else _py(ts)


def _py(ts: pd.Timestamp) -> datetime:
    """A pandas timestamp as a Python datetime (microseconds; nanoseconds dropped on purpose)."""
    return pd.Timestamp(ts).floor("us").to_pydatetime()


def _fmt(ts: pd.Timestamp | None) -> str:
    return "unknown" if ts is None else display_time(pd.Timestamp(ts).tz_convert("UTC").floor("s").to_pydatetime())


def build_findings(report: DriftReport, *, min_effect: float = MIN_EFFECT) -> None:
    """Fill ``report.findings``, ``report.events`` and ``report.summary`` from its results."""
    scan, stream, overall = report.scan, report.stream, report.overall
    path = ", ".join(stream.sources) or "predictions"
    n = len(stream)
    legacy = ""
    if overall is not None:
        fired = overall.legacy_jsd > report.legacy_threshold
        legacy = (f" For comparison, the monitor's legacy rule gives JSD {overall.legacy_jsd:.4f} on the whole stream "
                  f"({'above' if fired else 'below'} its {report.legacy_threshold} threshold).")  # fmt: skip
    flagged = report.windows[report.windows["verdict"] == "drift"] if len(report.windows) else report.windows
    windows = f" {len(flagged)} of {len(report.windows)} {report.window} windows show drift." if len(report.windows) \
        else ""  # fmt: skip
    if scan.changed and scan.excess is not None:
        top = scan.excess.sort_values("excess", ascending=False).iloc[0]
        when = "before the first record" if scan.onset_censored else _fmt(scan.onset)
        lo, hi = scan.onset_interval or (None, None)
        end = f"until {_fmt(scan.end)}" if scan.end is not None else "until the last record (ongoing)"
        title = (
            f"Output distribution changed {'already ' if scan.onset_censored else ''}at {when} (statistical "
            f"estimate): about {top['excess']:.0f} excess '{top['class']}' in the {scan.n_exposed} predictions since"
        )
        parts = [f"A multinomial change-point scan over {n} predictions finds a change (permutation p="
                 f"{scan.p_value:.3g}, {scan.permutations} permutations, {scan.model} model)."]  # fmt: skip
        if scan.onset_interval:
            parts.append(f"Onset {when}, 95% interval {_fmt(lo)} to {_fmt(hi)}; shifted {end}.")
        else:
            parts.append(f"The shifted distribution is present from the first record {end}.")
        for _, r in scan.excess.iterrows():
            parts.append(
                f"'{r['class']}': {100 * r['share_in']:.1f}% inside vs {100 * r['share_out']:.1f}% outside, "
                f"excess {r['excess']:+.0f} (95% {r['excess_low']:+.0f} to {r['excess_high']:+.0f})."
            )
        conf = report.confidence
        moved = conf[(conf["p_value"] < 0.01) & (conf["psi"] >= 0.1)] if len(conf) else conf
        for _, r in moved.iterrows():
            parts.append(f"Confidence of '{r['class']}' predictions shifted inside the window (KS {r['ks']:.2f}, "
                         f"PSI {r['psi']:.2f}).")  # fmt: skip
        finding = Finding.create(
            severity=Severity.HIGH, category="behavior_drift", detector=DETECTOR, title=title,
            detail=" ".join(parts) + windows + legacy, atlas=ATLAS,
            timestamp=None if scan.onset_censored else _py(scan.onset),
            evidence={"path": path, "onset": None if scan.onset_censored else iso(scan.onset),
                      "onset_low": iso(lo), "onset_high": iso(hi), "end": iso(scan.end),
                      "predictions_exposed": int(scan.n_exposed), "p_value": scan.p_value,
                      "excess_class": str(top["class"]), "excess": round(float(top["excess"]), 1),
                      "excess_low": round(float(top["excess_low"]), 1),
                      "excess_high": round(float(top["excess_high"]), 1)},
        )  # fmt: skip
        report.findings.append(finding)
        extra = {"p_value": scan.p_value, "predictions_exposed": int(scan.n_exposed)}
        if not scan.onset_censored:
            report.events.append(Event(_py(scan.onset), path, "ml:drift:onset",
                                       f"Estimated onset of output drift (95% {_fmt(lo)} to {_fmt(hi)})",
                                       Severity.HIGH, finding.id, "Estimated Drift Onset",
                                       {**extra, "interval_low": iso(lo), "interval_high": iso(hi)}))  # fmt: skip
        if scan.end is not None:
            elo, ehi = scan.end_interval or (None, None)
            report.events.append(Event(_py(scan.end), path, "ml:drift:end",
                                       f"Estimated end of output drift (95% {_fmt(elo)} to {_fmt(ehi)})",
                                       Severity.MEDIUM, finding.id, "Estimated Drift End",
                                       {**extra, "interval_low": iso(elo), "interval_high": iso(ehi)}))  # fmt: skip
        if len(flagged):
            first = flagged.iloc[0]
            report.events.append(Event(_py(first["end"]), path, "ml:drift:detected",
                                       f"First {report.window} window with significant drift (JS distance "
                                       f"{first['js_distance']:.3f})", Severity.MEDIUM, finding.id,
                                       "First Drifted Window End"))  # fmt: skip
        report.summary = f"Behaviour drift: {title}." + (" Ongoing at the last record." if scan.end is None else "")
    elif report.verdict == "drift" and overall is not None:
        report.findings.append(Finding.create(
            severity=Severity.MEDIUM, category="behavior_drift", detector=DETECTOR, atlas=ATLAS,
            title="Output distribution differs from the baseline over the whole stream (no onset inside the records)",
            detail=f"{overall.reason}; no change point inside the {n} predictions ({scan.reason}): the shift predates "
                   f"the records, or the baseline is stale.{windows}{legacy}",
            evidence={"path": path, "js_distance": round(overall.js_distance, 4), "p_value": overall.p_value},
        ))  # fmt: skip
        report.summary = "Behaviour drift: the output differs from the baseline, with no onset inside the records."
    elif report.verdict == "insufficient data":
        report.summary = f"Behaviour drift: insufficient data ({report.reason})."
    else:
        report.summary = f"Behaviour drift: no change in the output distribution over {n} predictions ({scan.reason})."
    if overall is not None and overall.new_classes:
        counts = dict(zip(overall.classes, overall.observed.tolist(), strict=True))
        listed = ", ".join(f"'{c}' ({counts[c]})" for c in overall.new_classes)
        report.findings.append(Finding.create(
            severity=Severity.MEDIUM, category="behavior_drift", detector=DETECTOR, atlas=ATLAS,
            title=f"Predictions of classes absent from the baseline: {listed}"[:300],
            detail="The model emitted classes the baseline never saw: did the label set or the model change?",
            evidence={"path": path, "new_classes": len(overall.new_classes)},
        ))  # fmt: skip


def _confidence_table(stream: Stream, scan: ChangeScan) -> pd.DataFrame:
    cols = ["class", "n_outside", "n_inside", "ks", "p_value", "psi"]
    conf = stream.confidence
    if not scan.changed or np.isnan(conf).all():
        return pd.DataFrame(columns=cols)
    inside = np.zeros(len(conf), dtype=bool)
    inside[scan.start : scan.stop] = True
    rows = []
    for code, label in enumerate(stream.classes):
        sel = stream.codes == code
        res = _confidence_shift(conf[sel & ~inside], conf[sel & inside])
        rows.append({"class": label, "n_outside": int(res["n_reference"]), "n_inside": int(res["n_current"]),
                     "ks": res["ks"], "p_value": res["p_value"], "psi": res["psi"]})  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def analyse_stream(
    stream: Stream,
    baseline: Baseline | None,
    *,
    window: str = "1d",
    alpha: float = ALPHA,
    min_effect: float = MIN_EFFECT,
    legacy_threshold: float = LEGACY_THRESHOLD,
    seed: int = 0,
) -> DriftReport:
    """Run the metrics, the per-window tests and the change-point scan on a prepared stream.

    Args:
        stream: from :func:`prepare_stream`.
        baseline: the known-good distribution, or None (then only the change-point scan runs).
        window: window size for the per-window table (``1h``, ``1d``, a count...).
        alpha / min_effect: significance level and minimum JS distance of a drift verdict.
        legacy_threshold: the monitor's ``behavior_drift_threshold`` for the legacy rule.
        seed: seed of the permutation and Monte Carlo tests.

    Returns:
        A :class:`DriftReport` with findings and events filled in.

    Raises:
        ValueError: a malformed ``window``.
    """
    if baseline is not None and stream.baseline is not None:  # the stream's classes, merged past the class cap
        baseline = stream.baseline
    shares = None
    if baseline is not None:
        shares = np.concatenate([baseline.shares, np.zeros(len(stream.classes) - len(baseline.labels))])
    scan = scan_changes(stream.times, stream.codes, stream.classes, alpha=alpha, baseline_shares=shares,
                        seed=seed)  # fmt: skip
    overall = exposed = None
    windows = pd.DataFrame()
    if baseline is not None:
        k = len(stream.classes)
        counts = dict(zip(stream.classes, bincount(stream.codes, minlength=k).tolist(), strict=True))
        overall = compare_to_baseline(counts, baseline, alpha=alpha, min_effect=min_effect, seed=seed)
        if scan.changed:
            inside = bincount(stream.codes[scan.start : scan.stop], minlength=k).tolist()
            exposed = compare_to_baseline(dict(zip(stream.classes, inside, strict=True)), baseline, alpha=alpha,
                                          min_effect=min_effect, seed=seed)  # fmt: skip
        size, widened = fit_window(stream.times, window)
        if widened:  # evidence spread over too many windows: coarser ones, not a failed analysis
            stream.limits.append(widened)
            window = window_text(size)
        windows = window_table(stream.times, stream.labels, baseline, size, alpha=alpha, min_effect=min_effect,
                               seed=seed)  # fmt: skip
    if scan.changed:
        verdict, reason = "drift", f"change point found ({scan.reason})"
    elif scan.verdict == "insufficient data":
        verdict, reason = "insufficient data", scan.reason
    elif overall is not None and overall.verdict == "drift":
        verdict, reason = "drift", f"no change inside the records, but the whole stream differs from the baseline " \
                                   f"({overall.reason})"  # fmt: skip
    else:
        verdict, reason = "no drift", scan.reason
    report = DriftReport(stream, baseline, scan, verdict, reason, overall, exposed, windows, str(window),
                         _confidence_table(stream, scan), legacy_threshold)  # fmt: skip
    build_findings(report, min_effect=min_effect)
    return report


def analyse(ctx: AnalysisContext) -> AnalysisResult:
    """Section ``drift``: every ``predictions`` file against the first ``baseline_distribution``.

    Parameters read from ``ctx.parameters``: ``drift_window`` (default ``1d``), ``drift_alpha``,
    ``drift_min_effect``; the legacy threshold comes from the monitor configuration when there is one.
    """
    from workbench.analysis import AnalysisResult

    loaded = ctx.evidence.all("predictions")
    base_file = ctx.evidence.first("baseline_distribution")
    if not loaded:
        return AnalysisResult(
            section="drift",
            summary="No prediction records in the evidence: no drift analysis.",
            not_applicable="no prediction records in the case",
        )
    baseline = Baseline.from_loaded(base_file) if base_file is not None else None
    stream, warnings = prepare_stream(loaded, baseline)
    config = ctx.evidence.first("monitor_config")
    legacy = (config.meta.get("behavior_drift_threshold") if config else None) or LEGACY_THRESHOLD
    params = ctx.parameters or {}
    report = analyse_stream(stream, baseline, window=str(option(params, "drift_window")),
                            alpha=float(option(params, "drift_alpha")),
                            min_effect=float(option(params, "drift_min_effect")),
                            legacy_threshold=float(legacy))  # fmt: skip
    report.warnings = warnings + report.warnings
    inputs = [item.path for item in loaded] + ([base_file.path] if base_file is not None else [])
    return AnalysisResult(section="drift", findings=report.findings, events=report.events, warnings=warnings,
                          data={"report": report}, summary=report.summary, outputs=report.outputs(),
                          inputs=inputs, limits=list(stream.limits), unexamined=list(stream.unexamined))  # fmt: skip


def render(result: AnalysisResult) -> list[Any]:
    """The "Behaviour drift" section: escaped HTML tables and plotly figures (see :mod:`workbench.drift.plots`)."""
    from workbench.drift.plots import section_items

    return section_items(result.data.get("report"), result.summary)
