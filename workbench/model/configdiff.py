"""Key-by-key diff of a model's JSON files (config, tokenizer, generation config) and the tokenizer's vocabulary.

Every ``*.json`` present in both folders (outside ``.signatures/``) is parsed with the hostile-input JSON reader
(size-capped, no NaN constants, bounded nesting) and compared recursively: objects key by key, lists index by index.
Keys that make a loader run code or change what the model is told (``auto_map``, ``trust_remote_code``,
``chat_template``...) are high; other changes medium. Files are read, never imported or executed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.evidence.base import parse_json
from workbench.model.safetensors_format import open_nofollow
from workbench.records import EvidenceWarning, Finding, Severity
from workbench.textsafe import clean_data, replaced_reason

if TYPE_CHECKING:  # pandas is imported where a frame is built (CLI start-up and memory: issue 15)
    import pandas as pd

__all__ = ["ConfigChange", "config_findings", "diff_configs", "diff_json", "frame", "load_vocab"]

DETECTOR = "workbench.model.configdiff"
ATLAS = ("AML.T0010.003", "AML.T0018.000")
#: JSON files larger than this are not parsed
MAX_JSON_BYTES = 64 * 1024 * 1024
#: changes recorded per file (then one summary line)
MAX_CHANGES_PER_FILE = 200
#: findings per file (then one summary finding)
MAX_FINDINGS_PER_FILE = 50
#: keys whose change makes a loader run code or rewrites prompts
RISKY_KEYS = {"auto_map", "trust_remote_code", "chat_template", "custom_pipelines", "tokenizer_class",
              "processor_class", "architectures", "model_type", "post_processor", "added_tokens"}  # fmt: skip
_PREVIEW = 200


@dataclass(frozen=True, slots=True)
class ConfigChange:
    """One differing key.

    Attributes:
        path: the JSON file, as displayed.
        key: dotted path inside the document (``a.b[3].c``).
        change: ``added`` (only in the suspect), ``removed`` (only in the reference) or ``changed``.
        reference / suspect: short text previews of the values (None when absent).
    """

    path: str
    key: str
    change: str
    reference: str | None
    suspect: str | None


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _PREVIEW else text[: _PREVIEW - 3] + "..."


def diff_json(reference: Any, suspect: Any, prefix: str = "") -> Iterator[tuple[str, str, Any, Any]]:
    """Yield ``(key, change, reference value, suspect value)`` for every leaf or subtree that differs."""
    if isinstance(reference, dict) and isinstance(suspect, dict):
        for key in list(reference) + [k for k in suspect if k not in reference]:
            where = f"{prefix}.{key}" if prefix else str(key)
            if key not in suspect:
                yield where, "removed", reference[key], None
            elif key not in reference:
                yield where, "added", None, suspect[key]
            else:
                yield from diff_json(reference[key], suspect[key], where)
    elif isinstance(reference, list) and isinstance(suspect, list):
        for i in range(max(len(reference), len(suspect))):
            where = f"{prefix}[{i}]"
            if i >= len(suspect):
                yield where, "removed", reference[i], None
            elif i >= len(reference):
                yield where, "added", None, suspect[i]
            else:
                yield from diff_json(reference[i], suspect[i], where)
    elif type(reference) is not type(suspect) or reference != suspect:
        yield prefix or "(document)", "changed", reference, suspect


def _read(path: Path, display: str, warnings: list[EvidenceWarning], unexamined: list[str] | None = None) -> Any:
    try:
        with open_nofollow(path) as fh:
            data = fh.read(MAX_JSON_BYTES + 1)
    except OSError as exc:
        warnings.append(EvidenceWarning(display, None, f"cannot read: {exc.strerror or exc}"))
        return None
    if len(data) > MAX_JSON_BYTES:
        reason = f"larger than {MAX_JSON_BYTES} bytes, not compared"
        warnings.append(EvidenceWarning(display, None, reason))
        if unexamined is not None:
            unexamined.append(f"{display}: {reason}")
        return None
    try:
        doc = parse_json(data.decode("utf-8-sig", errors="replace"))
    except ValueError as exc:
        warnings.append(EvidenceWarning(display, None, f"not valid JSON, not compared: {exc}"))
        return None
    doc, changed = clean_data(doc)
    if changed:
        warnings.append(EvidenceWarning(display, None, replaced_reason("JSON text")))
    return doc


def diff_configs(
    suspect_dir: Path,
    reference_dir: Path,
    relpaths: list[str],
    *,
    display_prefix: str = "",
    unexamined: list[str] | None = None,
) -> tuple[list[ConfigChange], list[EvidenceWarning]]:
    """Compare the JSON files ``relpaths`` (present in both folders) key by key.

    Args:
        suspect_dir / reference_dir: the two model folders.
        relpaths: files to compare (relative POSIX paths), typically the ``modified`` ``*.json`` of a folder diff.
        display_prefix: prepended to paths in the results.
        unexamined: receives ``"path: reason"`` for each file over the size cap (not compared).

    Returns:
        ``(changes, warnings)``; a file that cannot be parsed gives a warning naming it.
    """
    changes: list[ConfigChange] = []
    warnings: list[EvidenceWarning] = []
    prefix = display_prefix.rstrip("/") + "/" if display_prefix else ""
    for rel in relpaths:
        display = prefix + rel
        ref = _read(reference_dir / rel, display + " (reference)", warnings, unexamined)
        sus = _read(suspect_dir / rel, display, warnings, unexamined)
        if ref is None or sus is None:
            continue
        for count, (key, change, old, new) in enumerate(diff_json(ref, sus)):
            if count >= MAX_CHANGES_PER_FILE:
                warnings.append(EvidenceWarning(display, None, f"more than {MAX_CHANGES_PER_FILE} changed keys; "
                                                "the rest are not listed"))  # fmt: skip
                break
            changes.append(ConfigChange(display, key, change, None if change == "added" else _preview(old),
                                        None if change == "removed" else _preview(new)))  # fmt: skip
    return changes, warnings


def _risky(key: str) -> bool:
    parts = {p.split("[", 1)[0] for p in key.split(".")}
    return bool(parts & RISKY_KEYS)


def config_findings(changes: list[ConfigChange], *, model_id: str) -> list[Finding]:
    """One ``config_changed`` finding per changed key (high for :data:`RISKY_KEYS`, else medium), capped per file."""
    out: list[Finding] = []
    per_file: dict[str, int] = {}
    for c in changes:
        n = per_file[c.path] = per_file.get(c.path, 0) + 1
        if n > MAX_FINDINGS_PER_FILE:
            continue
        severity = Severity.HIGH if _risky(c.key) else Severity.MEDIUM
        out.append(Finding.create(
            severity=severity, category="config_changed", detector=DETECTOR, atlas=ATLAS,
            title=f"{model_id}: {c.path}: {c.key} {c.change}",
            detail=f"Reference: {c.reference if c.reference is not None else '(absent)'}; "
                   f"suspect: {c.suspect if c.suspect is not None else '(absent)'}.",
            evidence={"path": c.path, "key": c.key, "change": c.change},
        ))  # fmt: skip
    for path, n in per_file.items():
        if n > MAX_FINDINGS_PER_FILE:
            out.append(Finding.create(
                severity=Severity.MEDIUM, category="config_changed", detector=DETECTOR, atlas=ATLAS,
                title=f"{model_id}: {path}: {n - MAX_FINDINGS_PER_FILE} more changed keys", evidence={"path": path},
            ))  # fmt: skip
    return out


#: the columns of a configuration change, in order
COLUMNS = ("path", "key", "change", "reference", "suspect")


def rows(changes: list[ConfigChange]) -> list[dict[str, Any]]:
    """One dict per change with :data:`COLUMNS` (the ``configs`` of the ``diff-model`` JSON)."""
    return [{c: getattr(ch, c) for c in COLUMNS} for ch in changes]


def frame(changes: list[ConfigChange]) -> pd.DataFrame:
    """Columns ``path``, ``key``, ``change``, ``reference``, ``suspect`` (all str; absent values are None)."""
    import pandas as pd

    return pd.DataFrame(rows(changes), columns=list(COLUMNS), dtype=object)


def load_vocab(model_dir: Path, warnings: list[EvidenceWarning] | None = None) -> dict[int, str]:
    """Token id -> token from ``tokenizer.json`` (``model.vocab`` as a mapping or a Unigram list, plus
    ``added_tokens``), else ``vocab.txt`` (one token per line). Empty when neither is usable.
    """
    warnings = warnings if warnings is not None else []
    tok = model_dir / "tokenizer.json"
    if tok.is_file() and not tok.is_symlink():
        doc = _read(tok, "tokenizer.json", warnings)
        if isinstance(doc, dict):
            vocab: dict[int, str] = {}
            model = doc.get("model")
            raw = model.get("vocab") if isinstance(model, dict) else None
            if isinstance(raw, dict):
                vocab.update({i: str(t) for t, i in raw.items() if isinstance(i, int) and not isinstance(i, bool)})
            elif isinstance(raw, list):
                vocab.update({i: str(e[0]) for i, e in enumerate(raw) if isinstance(e, list) and e})
            for added in doc.get("added_tokens") or []:
                if isinstance(added, dict) and isinstance(added.get("id"), int) and "content" in added:
                    vocab[added["id"]] = str(added["content"])
            if vocab:
                return {i: t for i, t in vocab.items() if i >= 0}
    txt = model_dir / "vocab.txt"
    if txt.is_file() and not txt.is_symlink():
        try:
            with open_nofollow(txt) as fh:
                data = fh.read(MAX_JSON_BYTES)
        except OSError as exc:
            warnings.append(EvidenceWarning("vocab.txt", None, f"cannot read: {exc.strerror or exc}"))
            return {}
        return dict(enumerate(data.decode("utf-8", errors="replace").splitlines()))
    return {}
