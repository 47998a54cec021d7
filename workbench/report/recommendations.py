"""Recommendations justified by the findings: the original playbook's four, plus those the workbench's analyses add.

The playbook's ``_generate_recommendations`` gives four: enforce model signing (when the model is unsigned),
a safetensors-only policy (when dangerous file types are present), and, always, a review of every model deployed
from the same pipeline and the rotation of every credential the pipeline could reach. Here each rule names the
finding categories that justify it and every :class:`Recommendation` lists the ids of the findings it rests on
(``because``), so a reviewer can check it. Only findings of at least medium severity justify a recommendation;
the two general ones are always given, at high priority when a compromise is evidenced, at medium otherwise.

Priorities are critical, high or medium: a rule's base priority, raised to the severity of the worst finding
that justifies it. The order is deterministic: priority (worst first), then the rule order of :data:`RULES`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from workbench.records import Severity
from workbench.timeparse import parse_timestamp

__all__ = [
    "RULES",
    "ExposureWindow",
    "FindingLike",
    "Recommendation",
    "parse_exposure",
    "recommendations",
]

#: categories about the evidence handling, not the incident: they never show a compromise (as in the verdict)
PROCESS_CATEGORIES = frozenset({"evidence_malformed", "custody_violation", "signature_verified"})
#: a finding below this severity justifies no recommendation
MIN_SEVERITY = Severity.MEDIUM
_MAX_NAMES = 8


class FindingLike(Protocol):
    """What a recommendation reads from a finding (:class:`workbench.records.Finding` has it all)."""

    id: str
    severity: Severity
    category: str
    evidence: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Recommendation:
    """One recommendation for the report and the comms templates.

    Attributes:
        priority: critical, high or medium.
        text: one or two sentences (plain text; may quote evidence such as package names, escape on output).
        because: ids of the findings that justify it (empty for a general recommendation with no compromise).
        key: stable identifier of the rule (``enforce_signing``, ``safetensors_only``...).
        kind: ``preventive`` (a policy that stops a recurrence) or ``action`` (remediation of this incident).
    """

    priority: Severity
    text: str
    because: tuple[str, ...] = ()
    key: str = ""
    kind: str = "action"

    @property
    def label(self) -> str:
        """``"CRITICAL: text"``, the playbook's form."""
        return f"{self.priority.value.upper()}: {self.text}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "priority": self.priority.value,
            "kind": self.kind,
            "text": self.text,
            "because": list(self.because),
        }


@dataclass(frozen=True, slots=True)
class ExposureWindow:
    """The drift analysis's ``exposure`` object (``findings.json``), normalised.

    Attributes:
        onset: first prediction of the exposure (UTC), or None.
        onset_low / onset_high: 95 % interval of the onset, or None.
        end: end of the exposure (UTC), None while ongoing or unknown.
        predictions: predictions served in the window, or None.
        excess_by_class: ``(class, excess, low, high)`` rows; low and high may be None.
    """

    onset: datetime | None
    onset_low: datetime | None = None
    onset_high: datetime | None = None
    end: datetime | None = None
    predictions: int | None = None
    excess_by_class: tuple[tuple[str, float, float | None, float | None], ...] = ()


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    if hasattr(value, "to_pydatetime"):  # pandas Timestamp; NaT gives NaT
        value = value.to_pydatetime()
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return parse_timestamp(value)


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if number != number else number  # NaN


def _excess_rows(raw: Any) -> tuple[tuple[str, float, float | None, float | None], ...]:
    rows: list[tuple[str, float, float | None, float | None]] = []
    if raw is None:
        return ()
    if hasattr(raw, "to_dict") and hasattr(raw, "columns"):  # a DataFrame with class / excess columns
        raw = raw.to_dict(orient="records")
    if isinstance(raw, Mapping):
        items: Iterable[tuple[Any, Any]] = raw.items()
    else:
        items = ((r.get("class"), r) for r in raw if isinstance(r, Mapping))
    for cls, value in items:
        if isinstance(value, Mapping):
            excess = _number(value.get("excess"))
            low = _number(value.get("excess_low", value.get("low")))
            high = _number(value.get("excess_high", value.get("high")))
        else:
            excess, low, high = _number(value), None, None
        if cls is not None and excess is not None:
            rows.append((str(cls), excess, low, high))
    return tuple(rows)


def parse_exposure(exposure: Any) -> ExposureWindow | None:
    """Normalise an exposure object: the ``findings.json`` mapping or an object with the same attributes.

    Accepts ``onset``, ``onset_interval`` (two times), ``end`` (ISO text, datetime or pandas Timestamp),
    ``predictions`` (or ``n_exposed``) and ``excess_by_class`` (class → number, class → {excess, excess_low,
    excess_high}, a list of rows with ``class``, or a DataFrame; ``excess`` is read too).

    Returns:
        The window, or None when ``exposure`` is None or names neither an onset nor a prediction count.
    """
    if exposure is None:
        return None

    def get(name: str) -> Any:
        if isinstance(exposure, Mapping):
            return exposure.get(name)
        return getattr(exposure, name, None)

    interval = get("onset_interval")
    low = high = None
    if isinstance(interval, Sequence) and not isinstance(interval, str) and len(interval) == 2:
        low, high = _time(interval[0]), _time(interval[1])
    count = get("predictions")
    count = get("n_exposed") if count is None else count
    predictions = int(count) if _number(count) is not None else None
    excess = get("excess_by_class")
    window = ExposureWindow(
        onset=_time(get("onset")),
        onset_low=low,
        onset_high=high,
        end=_time(get("end")),
        predictions=predictions,
        excess_by_class=_excess_rows(excess if excess is not None else get("excess")),
    )
    if window.onset is None and window.predictions is None:
        return None
    return window


def iso(ts: datetime | None) -> str:
    """``2026-11-19T09:40:33Z`` (seconds; fractions kept only when present), or ``""`` for None."""
    if ts is None:
        return ""
    ts = ts.astimezone(UTC)
    spec = "milliseconds" if ts.microsecond else "seconds"
    return ts.isoformat(timespec=spec).replace("+00:00", "Z")


# ------------------------------------------------------------------------------------------------------- rules
Texts = Callable[[list[FindingLike], ExposureWindow | None], str]


@dataclass(frozen=True, slots=True)
class Rule:
    """A recommendation rule: the categories that justify it, its base priority and its text."""

    key: str
    base: Severity
    categories: frozenset[str]
    kind: str
    text: Texts


def _names(found: list[FindingLike], field: str) -> list[str]:
    seen: list[str] = []
    for f in found:
        value = f.evidence.get(field)
        if value not in (None, "") and str(value) not in seen:
            seen.append(str(value))
    return sorted(seen)


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_NAMES])
    return shown + (f" and {len(names) - _MAX_NAMES} more" if len(names) > _MAX_NAMES else "")


def _signing(found: list[FindingLike], _: ExposureWindow | None) -> str:
    return (
        "Enforce model signing: sign every production model (a manifest of file digests signed with cosign or "
        "OpenSSF model signing) and refuse to deploy or load a model unless its signature verifies and every file "
        "matches its signed digest. Without signing, model authenticity cannot be verified."
    )


def _safetensors(found: list[FindingLike], _: ExposureWindow | None) -> str:
    return (
        "Enforce a safetensors-only policy: remove all pickle, joblib and Python files from model artefacts and "
        "refuse to load them (no torch.load without weights_only=True, no joblib.load of model files)."
    )


def _pin(found: list[FindingLike], _: ExposureWindow | None) -> str:
    packages = _names(found, "package")
    concerned = f" Packages concerned: {_listing(packages)}." if packages else ""
    return (
        "Pin every dependency of the build and serving images with hashes (a lock file installed with "
        "pip --require-hashes), install only from the internal package index (no --extra-index-url, no URL or VCS "
        "installs), and rebuild the images from the pinned set." + concerned
    )


def _remote_code(found: list[FindingLike], _: ExposureWindow | None) -> str:
    return (
        "Load models with trust_remote_code disabled and remove custom-code references (auto_map) from model "
        "configurations; review any custom code before it is allowed."
    )


def _pipeline(found: list[FindingLike], _: ExposureWindow | None) -> str:
    return (
        "Harden the ML pipeline: require review for changes to CI steps, forbid piping downloads into a shell, "
        "and restrict build jobs' network access to the package mirror and the model registry."
    )


def _secrets(found: list[FindingLike], _: ExposureWindow | None) -> str:
    paths = _names(found, "path")
    where = f" ({_listing(paths)})" if paths else ""
    return (
        f"Purge the leaked secrets from the CI logs and artefacts that hold them{where}, and revoke and rotate "
        "those specific credentials now; review their use since they were exposed."
    )


def _host(found: list[FindingLike], _: ExposureWindow | None) -> str:
    peers = _names(found, "peer")
    to = f" to {_listing(peers)}" if peers else " to the suspicious destinations"
    return (
        f"Block egress from the affected hosts{to} and investigate those hosts (processes, persistence, other "
        "workloads) before reuse; rebuild them from a clean image."
    )


def _rescore(found: list[FindingLike], window: ExposureWindow | None) -> str:
    scope = ""
    if window is not None:
        count = f"{window.predictions} predictions" if window.predictions is not None else "the predictions"
        end = iso(window.end) if window.end else "the end of the records"
        scope = f" ({count} from {iso(window.onset)} to {end})" if window.onset else f" ({count})"
    return (
        f"Re-score the predictions served in the exposure window{scope} with the known-good model and notify the "
        "consumers of every prediction whose outcome changes."
    )


def _reverify(found: list[FindingLike], _: ExposureWindow | None) -> str:
    return (
        "Evidence no longer matches its intake: re-verify it against the custody ledger (workbench custody "
        "verify), re-acquire the affected files from their source and record why they changed before relying on "
        "the findings that depend on them."
    )


def _review(found: list[FindingLike], _: ExposureWindow | None) -> str:
    if found:
        return "Conduct a review of all models deployed from the same pipeline as the compromised model."
    return (
        "As a routine check (no compromise is evidenced), review the models deployed from the same pipeline as "
        "the affected model."
    )


def _rotate(found: list[FindingLike], _: ExposureWindow | None) -> str:
    if found:
        return (
            "Rotate all credentials accessible to the compromised pipeline (model registry tokens, API keys of the "
            "inference pipeline, build and signing secrets)."
        )
    return (
        "As a routine check (no compromise is evidenced), confirm that no credential accessible to the pipeline "
        "was used unexpectedly, and rotate any that was."
    )


_DEPENDENCY = frozenset(
    {
        "dependency_changed",
        "dependency_missing",
        "dependency_added",
        "dependency_untrusted_source",
        "dependency_typosquat",
        "dependency_confusion",
    }
)

#: Justified rules, in tie-break order. ``review_pipeline_models`` and ``rotate_credentials`` are general.
RULES: tuple[Rule, ...] = (
    Rule("enforce_signing", Severity.CRITICAL, frozenset({"model_unsigned", "signature_invalid"}), "preventive",
         _signing),
    Rule("purge_leaked_secrets", Severity.CRITICAL, frozenset({"secret_exposed"}), "action", _secrets),
    Rule("safetensors_only", Severity.HIGH,
         frozenset({"dangerous_file_type", "pickle_dangerous_import", "pickle_suspicious_import"}), "preventive",
         _safetensors),
    Rule("pin_dependencies", Severity.HIGH, _DEPENDENCY, "preventive", _pin),
    Rule("block_egress_investigate_host", Severity.HIGH, frozenset({"suspicious_connection", "suspicious_process"}),
         "action", _host),
    Rule("rescore_exposed_predictions", Severity.HIGH, frozenset({"behavior_drift"}), "action", _rescore),
    Rule("reverify_evidence", Severity.HIGH, frozenset({"custody_violation"}), "action", _reverify),
    Rule("disable_remote_code", Severity.HIGH, frozenset({"custom_code_reference"}), "preventive", _remote_code),
    Rule("harden_pipeline", Severity.MEDIUM, frozenset({"log_pattern"}), "preventive", _pipeline),
)  # fmt: skip
GENERAL: tuple[Rule, ...] = (
    Rule("review_pipeline_models", Severity.MEDIUM, frozenset(), "action", _review),
    Rule("rotate_credentials", Severity.MEDIUM, frozenset(), "action", _rotate),
)
_ORDER = {rule.key: i for i, rule in enumerate(RULES + GENERAL)}


def _worst_first(found: Iterable[FindingLike]) -> list[FindingLike]:
    unique: dict[str, FindingLike] = {}
    for f in found:  # the same id twice: keep the worse, whatever the input order
        if f.id not in unique or Severity.parse(f.severity).rank > Severity.parse(unique[f.id].severity).rank:
            unique[f.id] = f
    return sorted(unique.values(), key=lambda f: (-Severity.parse(f.severity).rank, f.id))


def recommendations(findings: Iterable[FindingLike], *, exposure: Any = None) -> list[Recommendation]:
    """The recommendations the findings justify.

    Args:
        findings: every finding of the investigation (any object with ``id``, ``severity``, ``category`` and
            ``evidence``).
        exposure: the drift analysis's exposure object, if any: it scopes the re-scoring recommendation.

    Returns:
        Recommendations, worst priority first, then in :data:`RULES` order; the two general ones always.
    """
    relevant = [f for f in findings if Severity.parse(f.severity).rank >= MIN_SEVERITY.rank]
    window = parse_exposure(exposure)
    out: list[Recommendation] = []
    for rule in RULES:
        found = _worst_first(f for f in relevant if f.category in rule.categories)
        if not found:
            continue
        worst = Severity.parse(found[0].severity)
        priority = worst if worst.rank > rule.base.rank else rule.base
        out.append(Recommendation(priority, rule.text(found, window), tuple(f.id for f in found), rule.key, rule.kind))
    compromise = _worst_first(
        f for f in relevant if f.category not in PROCESS_CATEGORIES and Severity.parse(f.severity) is Severity.CRITICAL
    )
    for rule in GENERAL:
        priority = Severity.HIGH if compromise else Severity.MEDIUM
        out.append(
            Recommendation(
                priority, rule.text(compromise, window), tuple(f.id for f in compromise), rule.key, rule.kind
            )
        )
    out.sort(key=lambda r: (-r.priority.rank, _ORDER[r.key]))
    return out
