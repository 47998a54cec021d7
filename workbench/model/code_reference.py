"""The record every examiner of code riding along with a model returns, and how each kind is named in findings.

A :class:`CodeReference` is one place where an artefact refers to or carries code: a ``transformers`` ``auto_map``,
a Keras ``Lambda`` layer or custom object, a chat template construct, a TensorFlow graph op, a TorchScript source
construct, a string of safetensors metadata. :data:`KIND_PHRASES` says what a finding grouping references of one
kind is about (``workbench.model.scan_findings`` titles its ``custom_code_reference`` findings with it).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["HIGH", "KIND_PHRASES", "LOW", "MEDIUM", "CodeReference"]

HIGH, MEDIUM, LOW = "high", "medium", "low"

#: kind -> what a file holding references of that kind does (finding titles)
KIND_PHRASES: dict[str, str] = {
    "auto_map": "refers to custom code (auto_map)",
    "keras_lambda": "has Keras Lambda layers",
    "keras_custom_object": "refers to Keras custom objects or modules imported on load",
    "chat_template": "has a chat template with Jinja beyond plain formatting",
    "tf_graph_op": "has TensorFlow graph ops that reach outside the graph",
    "torchscript_code": "has TorchScript code that reaches outside the model",
    "safetensors_metadata": "carries code or payloads in its safetensors metadata",
}


@dataclass(frozen=True, slots=True)
class CodeReference:
    """One place where a model artefact refers to or carries code.

    Attributes:
        kind: a key of :data:`KIND_PHRASES`.
        severity: ``high``, ``medium`` or ``low``.
        summary: one line (what and where).
        line: line in the template or source, or None.
        offset: byte offset in the file or member, or None.
    """

    kind: str
    severity: str
    summary: str
    line: int | None = None
    offset: int | None = None
