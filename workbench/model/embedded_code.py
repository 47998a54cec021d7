"""Code that rides along with a model without being a code file: custom-code references in configs and strings of
safetensors ``__metadata__``; and, re-exported here, the Keras and chat-template examiners.

* ``auto_map`` in ``config.json`` / ``tokenizer_config.json`` (and any other config) makes ``transformers`` import
  Python modules shipped with (or fetched for) the model when ``trust_remote_code=True``.
* safetensors ``__metadata__`` is a free map of strings that loaders hand to programs (``format``, training
  settings). Nothing reads it as code, so code there is a payload waiting for a helper that does: each string is
  judged as Python (:mod:`~workbench.model.python_code`, parsed, never run), searched for shell command lines and
  URLs, and, when it is base64 (or hex) text, decoded and judged again; a decoded pickle is handed back to be
  analysed statically like any pickle.
* Keras ``Lambda`` layers and custom objects: :mod:`~workbench.model.keras_format`; chat templates:
  :mod:`~workbench.model.template_check`; TensorFlow graphs: :mod:`~workbench.model.savedmodel`.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from workbench.model.code_reference import HIGH, LOW, CodeReference
from workbench.model.keras_format import h5_lambda_offsets, keras_config_references, keras_lambda_layers
from workbench.model.python_code import python_issues, shell_issues, urls
from workbench.model.template_check import template_issues

__all__ = [
    "CodeReference",
    "MetadataScan",
    "auto_map_references",
    "h5_lambda_offsets",
    "keras_config_references",
    "keras_lambda_layers",
    "metadata_references",
    "template_issues",
]

_BASE64 = re.compile(r"^[A-Za-z0-9+/_-]{16,}={0,2}$")
_HEX = re.compile(r"^(?:[0-9a-fA-F]{2}){8,}$")
#: metadata entries judged, and the longest value judged in full
MAX_ENTRIES, MAX_VALUE = 1_000, 4 * 1024 * 1024


def auto_map_references(config: Any) -> list[CodeReference]:
    """Custom-code references of a ``transformers`` config (``auto_map``, ``custom_pipelines``).

    Args:
        config: the parsed JSON document.

    Returns:
        One high-severity reference per mapped class (``AutoModel -> modeling_x.MyModel``); a reference of the
        form ``repo--module.Class`` pulls code from another repository and says so.
    """
    if not isinstance(config, dict):
        return []
    refs: list[CodeReference] = []
    for key in ("auto_map", "custom_pipelines"):
        mapping = config.get(key)
        if not isinstance(mapping, dict):
            continue
        for auto_class, target in list(mapping.items())[:100]:
            for item in _strings(target):
                where = f" (code from repository {item.split('--', 1)[0]!r})" if "--" in item else ""
                refs.append(CodeReference("auto_map", HIGH, f"{key}: {auto_class} -> {item}{where}"))
    return refs


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list | tuple | dict):
        for item in list(value.values() if isinstance(value, dict) else value)[:20]:
            yield from _strings(item)


@dataclass(slots=True)
class MetadataScan:
    """What the strings of a safetensors ``__metadata__`` hold.

    Attributes:
        refs: ``safetensors_metadata`` references, each naming its key and construct.
        pickles: ``(key, bytes)`` of every value that decodes to a pickle (to be analysed statically by the caller).
        cut: keys whose value was longer than :data:`MAX_VALUE` (only its start was judged), and a note when more than
            :data:`MAX_ENTRIES` entries were left unjudged.
    """

    refs: list[CodeReference] = field(default_factory=list)
    pickles: list[tuple[str, bytes]] = field(default_factory=list)
    cut: list[str] = field(default_factory=list)


def metadata_references(metadata: dict[str, str]) -> MetadataScan:
    """Judge every string of a safetensors ``__metadata__`` map (``{"format": "pt"}`` gives nothing).

    Returns:
        High references for Python constructs that evaluate, import or reach the interpreter (``__import__('os')``),
        shell command lines, and base64/hex text decoding to either or to a pickle; low references for URLs.
    """
    scan = MetadataScan()
    items = list(metadata.items())
    if len(items) > MAX_ENTRIES:
        scan.cut.append(f"{len(items) - MAX_ENTRIES} metadata entries past the first {MAX_ENTRIES} not judged")
    for key, value in items[:MAX_ENTRIES]:
        if not isinstance(value, str):
            continue
        if len(value) > MAX_VALUE:
            scan.cut.append(f"metadata {key[:100]!r}: {len(value)} characters, only the first {MAX_VALUE} judged")
            value = value[:MAX_VALUE]
        label = f"__metadata__[{key[:100]!r}]"
        scan.refs.extend(_judge_text(label, value, scan.cut))
        decoded = _decoded(value)
        if decoded is not None:
            encoding, raw = decoded
            if _looks_like_pickle(raw):
                scan.pickles.append((key, raw))
                scan.refs.append(CodeReference("safetensors_metadata", HIGH, f"{label}: {encoding} text of a pickle "
                                               f"({len(raw)} bytes; analysed as a pickle)"))  # fmt: skip
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                continue
            scan.refs.extend(_judge_text(f"{label} ({encoding}-decoded)", text, scan.cut))
    return scan


def _judge_text(label: str, value: str, cut: list[str]) -> list[CodeReference]:
    out: list[CodeReference] = []
    capped: list[str] = []
    issues = python_issues(value, capped=capped) or []
    cut += [f"{label}: {note}" for note in capped]
    for issue in issues:
        where = f" (line {issue.line})" if issue.line and "\n" in value else ""
        out.append(CodeReference("safetensors_metadata", issue.severity, f"{label}: Python {issue.what}{where}"))
    for issue in shell_issues(value):
        out.append(CodeReference("safetensors_metadata", HIGH, f"{label}: {issue.what}"))
    for url in urls(value, limit=3):
        out.append(CodeReference("safetensors_metadata", LOW, f"{label}: URL {url!r}"))
    return out[:20]


def _decoded(value: str) -> tuple[str, bytes] | None:
    text = value.strip()
    if len(text) >= 16 and _HEX.match(text):
        return "hex", bytes.fromhex(text)
    if _BASE64.match(text) and not text.isalpha():
        try:
            alt = b"-_" if ("-" in text or "_" in text) else None
            raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=alt, validate=True)
        except (binascii.Error, ValueError):
            return None
        return "base64", raw
    return None


def _looks_like_pickle(raw: bytes) -> bool:
    """A protocol 2+ header (``PROTO n``) followed by more bytes, or a protocol 0 global (``c`` module newline)."""
    if len(raw) >= 4 and raw[0] == 0x80 and raw[1] <= 5:
        return True
    return raw[:1] in (b"c", b"(") and b"\n" in raw[:256] and raw.rstrip().endswith(b".")
