"""The checkpoints of a model folder, by format, with every tensor located: what the tensor diff pairs and compares.

Each file is recognised by content (safetensors header, PyTorch zip with ``<archive>/data.pkl``, legacy stacked or
tar PyTorch checkpoint, GGUF magic) and read by its format's reader into a
:class:`~workbench.model.tensor_io.FileTensors`. Files of one family form one :class:`Checkpoint` (all the
safetensors shards of the folder are one checkpoint, all its PyTorch files another; each GGUF file is its own, but
the shards of a split GGUF, ``name-00001-of-00003.gguf``..., are one),
tensors named across its shards. A sharding index (``model.safetensors.index.json``, ``pytorch_model.bin.index.json``:
``weight_map`` tensor -> shard) decides which copy counts when two shards hold one name, and its disagreements with the
shards are warnings: a tensor it maps to a shard that does not hold it, a shard it never names (a loader following
the index does not read it).
A PyTorch training checkpoint (Lightning's ``.ckpt``: ``state_dict`` beside ``optimizer_states``, ``callbacks``...)
names its model tensors without ``state_dict.`` and keeps the training state apart (listed in ``limits``, never
compared as model weights).

:func:`pair_checkpoints` pairs the suspect's checkpoints with the reference's: same family first, then one leftover
checkpoint on each side of the same family (two GGUF files named differently), then one leftover safetensors
checkpoint against one leftover PyTorch checkpoint (the same model in two formats: names matched, dtypes and shapes
checked). A checkpoint left unpaired is returned with None: :mod:`workbench.model.checkpoint_diff` reports its tensors
as added or removed when only one side has such leftovers, as not compared (``unexamined``) when both do (a GGUF
suspect against a safetensors reference). Nothing is unpickled or imported.
"""

from __future__ import annotations

import json
import re
import tarfile
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

from workbench import safeio
from workbench.model import formats
from workbench.model.archives import central_directory_bytes
from workbench.model.gguf_tensors import read_gguf
from workbench.model.limits import ScanLimits
from workbench.model.safetensors_format import header_findings, looks_like_safetensors, read_header
from workbench.model.tensor_io import FileTensors, TensorSource
from workbench.model.torch_checkpoint import is_legacy_stacked, read_torch
from workbench.records import EvidenceWarning, Finding

__all__ = ["Checkpoint", "digest_only_format", "pair_checkpoints", "read_checkpoints", "read_file", "sniff_checkpoint"]

#: largest sharding index read
MAX_INDEX_BYTES = 64 * 1024 * 1024
_FAMILY = {"safetensors": "safetensors", "pytorch-zip": "pytorch", "pytorch-legacy": "pytorch",
           "pytorch-tar": "pytorch", "gguf": "gguf"}  # fmt: skip
_TAR_MEMBERS = {"storages", "tensors", "pickle"}
#: weights formats no tensor reader takes, by extension (a file of these is compared by digest only)
_DIGEST_ONLY_EXT = {
    ".pt2": "torch.export (.pt2)", ".onnx": "ONNX", ".h5": "HDF5 (Keras .h5)", ".hdf5": "HDF5",
    ".keras": "Keras (.keras)", ".npz": "NumPy (.npz)", ".npy": "NumPy (.npy)", ".ptl": "PyTorch Lite (.ptl)",
    ".pt": "PyTorch (not a zip, legacy or tar checkpoint)", ".pth": "PyTorch (not a zip, legacy or tar checkpoint)",
    ".bin": "PyTorch (not a zip, legacy or tar checkpoint)", ".ckpt": "PyTorch (not a zip, legacy or tar checkpoint)",
    ".pkl": "pickle", ".pickle": "pickle", ".joblib": "joblib", ".jbl": "joblib", ".tflite": "TensorFlow Lite",
    ".pb": "TensorFlow graph", ".msgpack": "Flax (.msgpack)", ".mlmodel": "Core ML", ".pdparams": "PaddlePaddle",
    ".gguf": "GGUF (no GGUF header)", ".ggml": "GGML", ".safetensors": "safetensors (header unreadable)",
}  # fmt: skip
#: keys of a training checkpoint holding the model's state dict, and those holding training state
_MODEL_KEYS = {"state_dict", "model_state_dict", "model"}
_TRAINING_KEYS = {
    "optimizer_states", "optimizer_state_dict", "optimizer", "optim", "lr_schedulers", "lr_scheduler", "scheduler",
    "callbacks", "loops", "scaler", "grad_scaler", "amp", "native_amp_scaling_state", "MixedPrecision",
    "torch_rng_state", "cuda_rng_state", "rng_state", "rng_states",
}  # fmt: skip
#: training-state tensor names shown in the note
_TRAINING_SHOWN = 8
#: member names of a torch.export archive (``archive_format``, the serialized program of older versions)
_PT2_MEMBERS = {"archive_format", "serialized_exported_program.json", "serialized_state_dict.pt"}
#: weights formats by content (magic numbers, :func:`workbench.model.formats.sniff` kinds)
_DIGEST_ONLY_KIND = {"hdf5": "HDF5 (Keras .h5)", "npy": "NumPy (.npy)", "onnx": "ONNX", "pickle": "pickle",
                     "joblib": "joblib", "compressed_pickle": "compressed pickle"}  # fmt: skip
#: the shard suffix of a GGUF split by ``llama-gguf-split`` (``model-00001-of-00003.gguf``)
_GGUF_SPLIT = re.compile(r"-\d{5}-of-\d{5}(?=\.gguf$)")


@dataclass(slots=True)
class Checkpoint:
    """One side's checkpoint: files of one family, tensors by name across them.

    Attributes:
        key: ``safetensors``, ``pytorch`` or ``gguf:<file>``; family: the first part.
        files: what each file's reader found.
        tensors: name -> source (the first copy, or the one the sharding index names).
        aliases: name -> another name of the same bytes (tied PyTorch weights).
        listed: names found but not comparable (each in ``unexamined``): never reported as added or removed.
        by_rel: each file by its path relative to the model root; index: the sharding index's tensor -> shard
            (relative to the model root), when there is one.
        training: the training state of a training checkpoint (optimizer moments, schedulers, callbacks: see
            :func:`_split_training`), by full name: listed, never compared as model weights.
    """

    key: str
    family: str
    files: list[FileTensors] = field(default_factory=list)
    tensors: dict[str, TensorSource] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    listed: set[str] = field(default_factory=set)
    by_rel: dict[str, FileTensors] = field(default_factory=dict)
    index: dict[str, str] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    warnings: list[EvidenceWarning] = field(default_factory=list)
    unexamined: list[str] = field(default_factory=list)
    limits: list[str] = field(default_factory=list)
    training: dict[str, TensorSource] = field(default_factory=dict)

    @property
    def formats(self) -> str:
        return "+".join(sorted({f.format for f in self.files}))


def sniff_checkpoint(path: Path) -> str | None:
    """The checkpoint format of a file by its content (a :data:`FileTensors.format` value), or None."""
    try:
        with safeio.open_evidence(path) as fh:
            head = fh.read(512)
            if head[:4] == b"GGUF":
                return "gguf"
            if is_legacy_stacked(head):
                return "pytorch-legacy"
            if head[:4] == b"PK\x03\x04" or path.suffix in (".pt", ".pth", ".bin", ".ckpt"):
                fh.seek(0)
                if _torch_zip(fh):
                    return "pytorch-zip"
            if head[257:262] == b"ustar":
                fh.seek(0)
                if _torch_tar(fh):
                    return "pytorch-tar"
    except OSError:
        return None
    return "safetensors" if path.suffix == ".safetensors" or looks_like_safetensors(path) else None


def digest_only_format(path: Path, name: str) -> str | None:
    """The weights format of a file that no tensor reader takes (:func:`sniff_checkpoint` gives None), or None when
    it is not weights: a torch.export ``.pt2``, ONNX, Keras ``.h5`` / ``.keras``, NumPy ``.npz`` / ``.npy``, a plain
    pickle or joblib file, TensorFlow, and the like. Such a file is compared by digest only. Read: the first bytes
    and, for a zip, its central directory (names only)."""
    try:
        with safeio.open_evidence(path) as fh:
            head = fh.read(4096)
            size = path.stat().st_size
            members: list[str] = []
            if head[:4] == b"PK\x03\x04":
                fh.seek(0)
                members = _zip_names(fh)
    except OSError:
        return None
    suffix = PurePosixPath(name).suffix.lower()
    if members:
        if suffix == ".pt2" or any(PurePosixPath(m).name in _PT2_MEMBERS for m in members):
            return "torch.export (.pt2)"
        if suffix == ".keras" or "model.weights.h5" in members:
            return "Keras (.keras)"
        if suffix == ".npz" or all(m.endswith(".npy") for m in members):
            return "NumPy (.npz)"
    kind = formats.sniff(head, name, size).kind if head else "empty"
    return _DIGEST_ONLY_KIND.get(kind) or _DIGEST_ONLY_EXT.get(suffix)


def _zip_names(fh: object) -> list[str]:
    """Member names from the central directory (not listed past ``ScanLimits.max_central_bytes``: :mod:`zipfile`
    holds every entry in memory, about 370 bytes each; such a zip is left to the scan, which says so)."""
    declared = central_directory_bytes(fh)  # type: ignore[arg-type]
    if declared is None or declared > ScanLimits().max_central_bytes:
        return []
    try:
        return zipfile.ZipFile(fh).namelist()  # type: ignore[arg-type] - the central directory only
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, NotImplementedError):
        return []


def _torch_zip(fh: object) -> bool:
    names = _zip_names(fh)
    return any(n.endswith("/data.pkl") and n.count("/") == 1 for n in names)


def _torch_tar(fh: object) -> bool:
    names: set[str] = set()
    try:
        with tarfile.open(fileobj=fh, mode="r:") as tf:  # type: ignore[call-overload] - listed, never extracted
            for _ in range(16):
                info = tf.next()
                if info is None:
                    break
                names.add(info.name)
    except (tarfile.TarError, OSError, EOFError, ValueError):
        return False
    return names >= _TAR_MEMBERS


def read_file(path: Path, display: str, kind: str) -> FileTensors:
    """Read one checkpoint file of format ``kind`` (see :func:`sniff_checkpoint`)."""
    if kind == "gguf":
        return read_gguf(path, display)
    if kind.startswith("pytorch-"):
        return read_torch(path, display, kind.removeprefix("pytorch-"))
    out = FileTensors(path, display, "safetensors")
    header = read_header(path)
    out.findings += header_findings(header, display)
    out.tensors = [TensorSource(t.name, t.dtype, t.shape, path, t.start, display) for t in header.tensors]
    if not header.parsed:
        out.not_compared("safetensors header", "; ".join(v.reason for v in header.violations[:3]))
    return out


def read_checkpoints(root: Path, files: list[tuple[str, str]], display_prefix: str) -> list[Checkpoint]:
    """Every checkpoint among ``files`` (``(path on disk, path shown)`` relative to ``root``; ``("", "")`` for
    ``root`` itself), grouped by family, with the sharding indexes applied."""
    prefix = display_prefix.rstrip("/") + "/" if display_prefix else ""
    found: dict[str, Checkpoint] = {}
    indexes: list[tuple[str, Path, str]] = []
    for disk, rel in files:
        path = root / disk if disk else root
        display = prefix + rel if rel else display_prefix or root.name
        if rel.endswith(".index.json"):
            indexes.append((rel, path, display))
            continue
        kind = sniff_checkpoint(path)
        if kind is None:
            continue
        family = _FAMILY[kind]
        key = f"gguf:{_GGUF_SPLIT.sub('', rel or path.name)}" if family == "gguf" else family
        ckpt = found.setdefault(key, Checkpoint(key, family))
        ckpt.files.append(read_file(path, display, kind))
        ckpt.by_rel[rel or path.name] = ckpt.files[-1]
    for rel, path, display in indexes:
        _apply_index(found, rel, path, display)
    for ckpt in found.values():
        _merge(ckpt)
        if ckpt.family == "pytorch":
            _split_training(ckpt)
    return list(found.values())


def _apply_index(found: dict[str, Checkpoint], rel: str, path: Path, display: str) -> None:
    try:
        doc = json.loads(safeio.read_bytes(path, limit=MAX_INDEX_BYTES))
    except (OSError, ValueError) as exc:
        target = found.get("safetensors" if ".safetensors" in rel else "pytorch")
        if target is not None:
            target.warnings.append(EvidenceWarning(display, None, f"sharding index not read: {exc}"))
        return
    weight_map = doc.get("weight_map") if isinstance(doc, dict) else None
    if not isinstance(weight_map, dict):
        return
    shards = {str(v) for v in weight_map.values()}
    family = "safetensors" if all(s.endswith(".safetensors") for s in shards) else "pytorch"
    ckpt = found.get(family)
    if ckpt is None:
        return
    folder = PurePosixPath(rel).parent
    by_rel = ckpt.by_rel
    held = {name: f for f in ckpt.files for name in (t.name for t in f.tensors)}
    for name, shard in weight_map.items():
        target = by_rel.get((folder / str(shard)).as_posix())
        if target is None:
            ckpt.warnings.append(EvidenceWarning(display, None, f"maps tensor {name!r} to {shard!r}, which is not a "
                                                 "checkpoint of this folder"))  # fmt: skip
        elif held.get(name) is not target:
            where = f"it is in {held[name].display}" if name in held else "no shard holds it"
            ckpt.warnings.append(EvidenceWarning(display, None, f"maps tensor {name!r} to {shard!r}, which does not "
                                                 f"hold it ({where})"))  # fmt: skip
    for relpath, f in by_rel.items():
        if PurePosixPath(relpath).name not in shards and PurePosixPath(relpath).parent == folder:
            why = f"not named by the sharding index {rel}: a loader following the index never reads it (compared)"
            ckpt.warnings.append(EvidenceWarning(f.display, None, why))
    ckpt.limits.append(f"{display}: sharding index of {len(weight_map)} tensors in {len(shards)} shard(s) applied")
    ckpt.index = {str(k): (folder / str(v)).as_posix() for k, v in weight_map.items()}


def _merge(ckpt: Checkpoint) -> None:
    """Name every tensor once across the checkpoint's files (the index's shard wins, else the first copy)."""
    owner: dict[str, FileTensors] = {}
    for rel, f in ckpt.by_rel.items():
        ckpt.findings += f.findings
        ckpt.warnings += f.warnings
        ckpt.unexamined += f.unexamined
        ckpt.limits += f.limits
        for src in f.tensors:
            if src.name in ckpt.tensors:
                first = owner[src.name]
                keep_new = ckpt.index.get(src.name) == rel
                ignored = first if keep_new else f
                kept = (f if keep_new else first).display
                why = f"tensor {src.name!r} also in {kept}; this copy ignored"
                ckpt.warnings.append(EvidenceWarning(ignored.display, None, why))
                if not keep_new:
                    continue
            ckpt.tensors[src.name] = src
            owner[src.name] = f
        ckpt.aliases.update(f.aliases)
        ckpt.listed.update(f.listed)


def _split_training(ckpt: Checkpoint) -> None:
    """A training checkpoint (PyTorch Lightning's ``.ckpt``: ``state_dict`` beside ``optimizer_states``,
    ``lr_schedulers``, ``callbacks``...; a hand-written ``{"model_state_dict", "optimizer_state_dict"}``): its model
    tensors are named without the model key (``state_dict.encoder.weight`` -> ``encoder.weight``, as the model
    itself and its exports name them), the others are set aside in ``training``. Applies when every tensor sits
    under one model key or a training-state key, and some under a training-state key (or the key is ``state_dict``).
    """
    heads = {n.split(".", 1)[0] for n in [*ckpt.tensors, *ckpt.listed]}
    model, training = heads & _MODEL_KEYS, heads & _TRAINING_KEYS
    if len(model) != 1 or heads - _MODEL_KEYS - _TRAINING_KEYS or not (training or model == {"state_dict"}):
        return
    prefix = model.pop() + "."

    def strip(name: str) -> str:
        return name[len(prefix) :] if name.startswith(prefix) else name

    kept: dict[str, TensorSource] = {}
    for name, src in ckpt.tensors.items():
        if name.split(".", 1)[0] in _TRAINING_KEYS:
            ckpt.training[name] = src
        else:  # under the model key (a tensor named as the key itself keeps its name)
            kept[strip(name)] = replace(src, name=strip(name))
    ckpt.tensors = kept
    ckpt.aliases = {strip(k): strip(v) for k, v in ckpt.aliases.items() if k.startswith(prefix)}
    ckpt.listed = {strip(n) for n in ckpt.listed}
    files = ", ".join(f.display for f in ckpt.files)
    note = f"{files}: a training checkpoint: model tensors under {prefix!r} compared without that prefix"
    if ckpt.training:
        groups: dict[str, int] = {}
        for name in ckpt.training:
            groups[name.split(".", 1)[0]] = groups.get(name.split(".", 1)[0], 0) + 1
        counts = ", ".join(f"{k}: {v}" for k, v in sorted(groups.items()))
        shown = ", ".join(sorted(ckpt.training)[:_TRAINING_SHOWN])
        more = f" and {len(ckpt.training) - _TRAINING_SHOWN} more" if len(ckpt.training) > _TRAINING_SHOWN else ""
        note += (f"; {len(ckpt.training)} training-state tensor(s) ({counts}) listed, not compared as model weights: "
                 f"{shown}{more}")  # fmt: skip
    ckpt.limits.append(note)


def pair_checkpoints(
    suspect: list[Checkpoint], reference: list[Checkpoint]
) -> list[tuple[Checkpoint | None, Checkpoint | None]]:
    """Suspect and reference checkpoints paired (see the module docstring); the unpaired ones with None."""
    sus, ref = {c.key: c for c in suspect}, {c.key: c for c in reference}
    pairs: list[tuple[Checkpoint | None, Checkpoint | None]] = [(sus[k], ref[k]) for k in sus if k in ref]
    left_s = [c for k, c in sus.items() if k not in ref]
    left_r = [c for k, c in ref.items() if k not in sus]
    for family in ("gguf", "safetensors", "pytorch"):
        s = [c for c in left_s if c.family == family]
        r = [c for c in left_r if c.family == family]
        if len(s) == 1 and len(r) == 1:
            pairs.append((s[0], r[0]))
            left_s.remove(s[0])
            left_r.remove(r[0])
    cross = {"safetensors", "pytorch"}
    if len(left_s) == 1 and len(left_r) == 1 and {left_s[0].family, left_r[0].family} == cross:
        pairs.append((left_s[0], left_r[0]))
        left_s, left_r = [], []
    pairs += [(c, None) for c in left_s] + [(None, c) for c in left_r]
    return pairs
