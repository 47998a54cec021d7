"""Tensor diff of two models' checkpoints, whatever their formats: pairing, comparison, findings.

:func:`diff_checkpoint_tensors` reads both sides' checkpoints (:mod:`workbench.model.checkpoints`), pairs them by
format, and compares every tensor of each pair by name (:func:`workbench.model.tensors.diff_tensor`, memory-mapped
windows, nothing loaded whole): added, removed, shape or dtype changed, modified with changed rows and the share of
the change in its top singular value. A name only one side has that is a tied alias of a name both sides have (a
PyTorch checkpoint keeps both names, a safetensors conversion drops one) is not reported as added or removed, nor is
a name the other side holds but could not locate (it is ``unexamined`` there). When the two sides share no name but
every name of one side carries one extra leading component (``module.`` of a ``DataParallel`` save), it is removed
(a ``limits`` note says so).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from workbench.model import configdiff
from workbench.model import tensors as tdiff
from workbench.model.checkpoints import Checkpoint, pair_checkpoints, read_checkpoints
from workbench.model.pair_pass import Changes, pair_key
from workbench.model.tensor_findings import tensor_findings
from workbench.model.tensor_io import FileTensors
from workbench.model.torch_checkpoint import member_digests
from workbench.records import EvidenceWarning, Finding
from workbench.textsafe import clean_text

__all__ = ["TensorComparison", "diff_checkpoint_tensors"]

_Sources = dict[str, Any]


@dataclass(slots=True)
class TensorComparison:
    """Every tensor diff of a model pair, with the heat grids, findings and what was not compared."""

    tensors: list[tdiff.TensorDiff] = field(default_factory=list)
    heat: dict[str, np.ndarray] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    warnings: list[EvidenceWarning] = field(default_factory=list)
    unexamined: list[str] = field(default_factory=list)
    limits: list[str] = field(default_factory=list)
    #: the suspect's files a tensor reader took (as displayed): the others are compared by digest only
    read: set[str] = field(default_factory=set)


def diff_checkpoint_tensors(
    suspect: Path,
    reference: Path,
    suspect_files: list[tuple[str, str]],
    reference_files: list[tuple[str, str]],
    *,
    model_id: str,
    display_prefix: str,
    reference_label: str,
    chunk_elements: int = tdiff.CHUNK_ELEMENTS,
    progress: Any = None,
    changes: Mapping[tuple[str, str], Changes] | None = None,
) -> TensorComparison:
    """Compare the tensors of every checkpoint of ``suspect`` with ``reference``'s (folders or single files).

    Args:
        suspect_files / reference_files: ``(path on disk, path shown)`` of each side's files relative to its root
            (``[("", "")]`` for a single file).
        display_prefix / reference_label: how each side's paths are shown.
        chunk_elements: tensor block size (memory bound).
        progress: receives the bytes of tensors compared per suspect file.
        changes: where each pair of files differs (:func:`workbench.model.pair_pass.pair_key` -> ranges), from the
            pass that hashed them: a tensor at the same offsets in both files of a pair is read back only where
            they differ (and not at all when they do not); None or a pair not listed: compared block by block.
    """
    out = TensorComparison()
    sus = read_checkpoints(suspect, suspect_files, display_prefix)
    ref = read_checkpoints(reference, reference_files, reference_label)
    out.read = {f.display for ckpt in sus for f in ckpt.files}
    for ckpt in sus + ref:
        out.findings += ckpt.findings
        out.warnings += ckpt.warnings
        out.unexamined += ckpt.unexamined
        out.limits += ckpt.limits
    vocab = configdiff.load_vocab(reference if reference.is_dir() else reference.parent, out.warnings)
    pairs = pair_checkpoints(sus, ref)
    alone_s = [s for s, r in pairs if r is None]
    alone_r = [r for s, r in pairs if s is None]
    if alone_s and alone_r:  # checkpoints of formats that cannot be paired on both sides: not compared
        pairs = [(s, r) for s, r in pairs if s is not None and r is not None]
        for side, mine, theirs in (("reference", alone_s, alone_r), ("suspect", alone_r, alone_s)):
            formats = ", ".join(sorted({c.formats for c in theirs}))
            for f in (f for c in mine for f in c.files):
                out.unexamined.append(f"{f.display}: tensors not compared: the {side} has no checkpoint of this "
                                      f"format ({f.format}) to pair it with, only {formats}")  # fmt: skip
    try:
        for s, r in pairs:
            if s is not None and r is not None and s.family != r.family:
                out.limits.append(f"{s.formats} checkpoint compared with a {r.formats} reference: tensors matched "
                                  "by name, dtypes and shapes checked")  # fmt: skip
            _compare(s, r, out, vocab, chunk_elements, progress, changes or {})
            _compare_members(s, r, out)
    finally:
        for ckpt in sus + ref:
            for f in ckpt.files:
                f.release()  # inflated members' temporary files
    out.tensors.sort(key=lambda d: d.name)
    out.findings += tensor_findings(out.tensors, model_id=model_id)
    return out


def _compare(s: Checkpoint | None, r: Checkpoint | None, out: TensorComparison, vocab: Any, chunk: int,
             progress: Any, changes: Mapping[tuple[str, str], Changes]) -> None:  # fmt: skip
    sus = s.tensors if s is not None else {}
    ref = r.tensors if r is not None else {}
    sus, ref, note = _align(sus, ref)
    if note:
        out.limits.append(note)
    todo: dict[str, int] = {}  # bytes of the suspect's tensors to compare, per file (the progress counter)
    for name in set(sus) & set(ref):
        todo[sus[name].display] = todo.get(sus[name].display, 0) + sus[name].nbytes
    done = dict.fromkeys(todo, 0)
    tied = 0
    for name in sorted(set(sus) | set(ref)):
        if name not in ref or name not in sus:
            side, other = (s, r) if name not in ref else (r, s)
            alias = side.aliases.get(name) if side is not None else None
            if alias is not None and alias in sus and alias in ref:
                tied += 1
                continue
            if other is not None and name in other.listed:
                continue  # found on the other side but not comparable there: unexamined, neither added nor removed
            src = sus.get(name) or ref[name]
            if name in sus:
                out.tensors.append(tdiff.TensorDiff(name, "added", src.display, src.dtype, src.shape))
            else:
                out.tensors.append(tdiff.TensorDiff(name, "removed", src.display, None, None, src.dtype, src.shape,
                                                    reference_path=src.display))  # fmt: skip
            continue
        a, b = sus[name], ref[name]
        try:
            diff, heat = tdiff.diff_tensor(a, b, vocab=vocab, chunk_elements=chunk,
                                           changes=changes.get(pair_key(a.path, b.path)))  # fmt: skip
        except (OSError, ValueError) as exc:
            out.warnings.append(EvidenceWarning(a.display, None, f"tensor {name!r} not compared: {exc}"))
            out.unexamined.append(f"{a.display}: tensor {name} not compared: {exc}")
            continue
        finally:
            done[a.display] += a.nbytes
            if progress is not None:
                progress.task(f"tensor diff {a.display}", done[a.display], todo[a.display])
        out.tensors.append(diff)
        if heat is not None:
            out.heat.setdefault(name, heat)
    if tied:
        out.limits.append(f"{tied} tied tensor name(s) present on one side only (an alias of a tensor both sides "
                          "hold) compared through the name both sides have")  # fmt: skip


def _compare_members(s: Checkpoint | None, r: Checkpoint | None, out: TensorComparison) -> None:
    """The members of paired PyTorch zip files that are not tensors (TorchScript ``code/``, ``constants.pkl``,
    ``extra/``...) compared by SHA-256: one that differs is ``unexamined`` (no finer diff), one the reference lacks a
    ``limits`` note (its code is the scan's to judge)."""
    if s is None or r is None:
        return
    files: list[tuple[FileTensors, FileTensors]]
    if len(s.files) == 1 and len(r.files) == 1:
        files = [(s.files[0], r.files[0])]
    else:
        files = [(s.by_rel[k], r.by_rel[k]) for k in s.by_rel if k in r.by_rel]
    for fs, fr in files:
        if fs.format != "pytorch-zip" or fr.format != "pytorch-zip":
            continue
        (mine, why_s), (theirs, why_r) = member_digests(fs.path), member_digests(fr.path)
        for f, why in ((fs, why_s), (fr, why_r)):
            if why is not None:
                out.unexamined.append(f"{f.display}: archive members other than tensors not all compared: "
                                      f"{clean_text(why)[0]}")  # fmt: skip
        differ = sorted(k for k in mine.keys() & theirs.keys() if mine[k] != theirs[k])
        alone = sorted(mine.keys() - theirs.keys())
        if differ:
            what = "TorchScript code" if any(k.startswith("code/") for k in differ) else "these archive members"
            out.unexamined.append(f"{fs.display}: member(s) {_names(differ)} differ from the reference's: compared "
                                  f"by digest only: no tensor-level diff for {what}")  # fmt: skip
        if alone:
            out.limits.append(f"{fs.display}: member(s) {_names(alone)} have no counterpart in the reference: not "
                              "compared (TorchScript code is judged by the scan)")  # fmt: skip


def _names(names: list[str], shown: int = 6) -> str:
    text = ", ".join(clean_text(n)[0] for n in names[:shown])
    return text + (f" and {len(names) - shown} more" if len(names) > shown else "")


def _align(sus: _Sources, ref: _Sources) -> tuple[_Sources, _Sources, str | None]:
    """When no name is shared but every name of one side starts with one component (``module.`` of
    ``DataParallel``, ``_orig_mod.`` of ``torch.compile``) whose removal makes names shared, remove it."""
    if not sus or not ref or set(sus) & set(ref):
        return sus, ref, None
    for side, names, other in (("suspect", sus, ref), ("reference", ref, sus)):
        heads = {n.split(".", 1)[0] for n in names}
        if len(heads) != 1 or not all("." in n for n in names):
            continue
        prefix = heads.pop() + "."
        stripped = {n[len(prefix) :]: replace(v, name=n[len(prefix) :]) for n, v in names.items()}
        if set(stripped) & set(other):
            note = f"every {side} tensor name starts with {prefix!r}; compared without it"
            return (stripped, ref, note) if side == "suspect" else (sus, stripped, note)
    return sus, ref, None
