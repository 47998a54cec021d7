"""Finding categories and what each one means for the conclusions: the one place that groups them.

Every module that asks "is this about the incident?", "is this about the model?", "which analysis would have
seen it?" or "how do I say this in plain words?" reads it here. :data:`CATEGORIES` is the closed list analyses may
emit (``workbench.records`` validates against it).

Groups, in the order the conclusions rank reasons (what the attack did to the model first, then how it got in and
what it did around the model):

========================  ===============================================================  ================
group                      categories                                                       seen by section
========================  ===============================================================  ================
``model_code``             code that runs when the model is loaded                          ``model``
``weights``                tensors edited, added, removed, reshaped                         ``model``
``artefacts``              files tampered, missing, planted; signature broken               ``model``
``live_activity``          suspicious processes and connections on the hosts                ``host``
``dependencies``           packages replaced, confused, typosquatted, from untrusted places  ``dependencies``
``packages``               installed package files differ from what was published; start-up  ``packages``
                           hooks; known-compromised versions; incident indicators on hosts
``behaviour``              the model's outputs shifted                                      ``drift``
``pipeline``               malicious steps in the ML pipeline's logs                        ``logs``
``credentials``            secrets exposed                                                  ``logs``
``provenance``             unsigned or unverifiable model                                   ``model``
========================  ===============================================================  ================

Categories outside every group (:data:`NOT_INCIDENT`) describe the evidence handling or are leads; they never
decide a verdict, never set a time and never justify an action.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CATEGORIES",
    "GROUPS",
    "LEADS",
    "NOT_INCIDENT",
    "PROCESS",
    "SECTION_OF_GROUP",
    "Group",
    "categories_of",
    "group_of",
    "is_incident",
    "phrase",
]


@dataclass(frozen=True, slots=True)
class Group:
    """A family of categories that say the same kind of thing about the incident.

    Attributes:
        key: stable identifier.
        label: short human name.
        categories: the categories in it.
        section: the analysis section whose evidence shows it (coverage: without it, this kind of compromise could
            not have been seen).
        phrase: what a finding of the group means, in plain words (a sentence start for the verdict's reasons).
    """

    key: str
    label: str
    categories: frozenset[str]
    section: str
    phrase: str


GROUPS: tuple[Group, ...] = (
    Group("model_code", "Code in the model", frozenset({"pickle_dangerous_import", "dangerous_file_type",
          "pickle_suspicious_import", "custom_code_reference"}), "model",
          "The model files carry code that runs when the model is loaded"),
    Group("weights", "Weights edited", frozenset({"tensor_modified", "tensor_added", "tensor_removed",
          "tensor_shape_changed", "tensor_dtype_changed"}), "model", "The model's weights were edited"),
    Group("artefacts", "Model files", frozenset({"model_file_tampered", "model_file_missing", "unexpected_model_file",
          "signature_invalid", "config_changed", "safetensors_malformed", "archive_anomaly", "file_type_mismatch",
          "scanner_disagreement"}), "model", "The model's files differ from their known-good release"),
    Group("live_activity", "Attacker activity on hosts", frozenset({"suspicious_connection", "suspicious_process"}),
          "host", "Attacker activity is live on a host"),
    Group("dependencies", "Dependencies", frozenset({"dependency_confusion", "dependency_typosquat",
          "dependency_untrusted_source", "dependency_changed", "dependency_missing", "dependency_added"}),
          "dependencies", "The serving environment's packages were replaced"),
    Group("packages", "Installed packages", frozenset({"package_compromised_version", "package_file_modified",
          "package_hash_mismatch", "import_hook", "package_file_unrecorded", "package_binary",
          "package_file_missing", "incident_indicator"}), "packages",
          "The installed Python packages are not what was published"),
    Group("behaviour", "Behaviour", frozenset({"behavior_drift"}), "drift", "The model's outputs shifted"),
    Group("pipeline", "Pipeline", frozenset({"log_pattern"}), "logs", "The ML pipeline ran malicious steps"),
    Group("credentials", "Credentials", frozenset({"secret_exposed"}), "logs", "Credentials were exposed"),
    Group("provenance", "Provenance", frozenset({"model_unsigned", "signature_unverified", "signature_unsupported",
          "signature_unverifiable_offline"}),
          "model", "The model's provenance cannot be verified"),
)  # fmt: skip

#: categories about the evidence handling, not the incident
PROCESS: frozenset[str] = frozenset({"evidence_malformed", "custody_violation", "signature_verified",
                                     "model_marked_compromised"})  # fmt: skip
#: leads: what made someone open the case (the analyses confirm or refute them)
LEADS: frozenset[str] = frozenset({"monitor_alert"})
#: never a reason, a time, an indicator or an action
NOT_INCIDENT: frozenset[str] = PROCESS | LEADS

#: Stable finding categories (snake_case). Analyses may only emit these.
CATEGORIES: frozenset[str] = frozenset().union(*(g.categories for g in GROUPS)) | NOT_INCIDENT

_BY_CATEGORY = {c: g for g in GROUPS for c in g.categories}
#: group key -> the section that would have seen it
SECTION_OF_GROUP: dict[str, str] = {g.key: g.section for g in GROUPS}


def group_of(category: str) -> Group | None:
    """The group of a category, or None for the evidence-handling categories and leads."""
    return _BY_CATEGORY.get(category)


def is_incident(category: str) -> bool:
    """Whether a finding of this category says something about the incident (not the evidence handling)."""
    return category in _BY_CATEGORY


def categories_of(*keys: str) -> frozenset[str]:
    """The categories of the named groups (``categories_of("pipeline", "credentials")``)."""
    unknown = set(keys) - {g.key for g in GROUPS}
    if unknown:
        raise KeyError(f"unknown category group(s): {', '.join(sorted(unknown))}")
    return frozenset().union(*(g.categories for g in GROUPS if g.key in keys))


def phrase(category: str) -> str:
    """What a finding of this category means, in plain words (its group's phrase)."""
    group = _BY_CATEGORY.get(category)
    return group.phrase if group else category.replace("_", " ").capitalize()


#: the rank of each group in reasons and summaries (lower first)
GROUP_RANK: dict[str, int] = {g.key: i for i, g in enumerate(GROUPS)}
