"""Behaviour drift: sound tests of a model's output distribution, onset and exposure window, affected predictions.

Public API: :func:`compare_to_baseline`, :class:`Baseline`, :func:`legacy_jsd`, :func:`js_distance`,
:func:`confidence_shift` (metrics); :func:`window_table`, :func:`parse_window` (windows); :func:`scan_changes`,
:class:`ChangeScan` (change points); :func:`prepare_stream`, :func:`analyse_stream`, :class:`DriftReport`,
:func:`analyse`, :func:`render` (the investigation's ``drift`` section); :func:`simulate_stream` (test streams).
"""

from __future__ import annotations

from workbench.drift.analysis import DriftReport, Stream, analyse, analyse_stream, prepare_stream, render
from workbench.drift.changepoint import ChangeScan, scan_changes
from workbench.drift.metrics import Baseline, Comparison, compare_to_baseline, confidence_shift, js_distance, legacy_jsd
from workbench.drift.simulate import SimulatedStream, simulate_stream
from workbench.drift.windows import parse_window, window_table

__all__ = [
    "Baseline",
    "ChangeScan",
    "Comparison",
    "DriftReport",
    "SimulatedStream",
    "Stream",
    "analyse",
    "analyse_stream",
    "compare_to_baseline",
    "confidence_shift",
    "js_distance",
    "legacy_jsd",
    "parse_window",
    "prepare_stream",
    "render",
    "scan_changes",
    "simulate_stream",
    "window_table",
]
