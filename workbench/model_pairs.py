"""The model folders of a case and how they pair up: each suspect folder with the reference folder of its name.

Where model folders are found (all paths relative to the case root, decided from the inventory alone, so a
symlinked or empty folder is never a model and nothing outside the evidence tree is looked at):

* **Locations.** ``models/suspect`` holds suspect models, ``models/reference`` known-good copies; ``case.yaml``
  ``suspect_model`` / ``reference_model`` may name a folder anywhere in the case.
* **One model or several.** A location is *one* model (named after the location's own folder, e.g. ``suspect``)
  when it holds no subfolder, when it holds model files directly (a weights file, ``config.json``, a signature;
  see :data:`MODEL_FILE_SUFFIXES` and :data:`MODEL_FILE_NAMES`), or when none of its subfolders looks like a model
  folder (holds such files directly): so a model with a ``tokenizer/`` subfolder is one model. Otherwise *each*
  subfolder is a model (``models/suspect/<model>/``), whatever it holds, so an oddly named artefact in its own
  folder is still scanned; loose files next to those subfolders belong to no model and a case warning names them.
  Subfolders are never split further: ``models/suspect/<model>/unet/`` is part of ``<model>``.
* **Pairing.** ``models/suspect/<a>`` pairs with ``models/reference/<a>``: same folder name, compared exactly
  (case-sensitive). A flat ``models/suspect`` pairs with a flat ``models/reference``. A folder without a counterpart
  is a pair with one side missing; it is still analysed and reported.
* **The primary pair.** ``case.yaml`` ``suspect_model`` / ``reference_model`` make the primary pair (a configured
  suspect takes the reference folder of its name unless ``reference_model`` is given; a configured reference goes
  to the suspect of its name, else to the default primary's suspect). Without them the primary is the only pair
  that has a suspect, else the first of ``case.yaml affected_models`` that names one, else the first by name.
  Discovered folders inside (or holding) a configured folder are not analysed twice: a case warning says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from workbench.records import EvidenceWarning

__all__ = [
    "MODEL_FILE_NAMES",
    "MODEL_FILE_SUFFIXES",
    "REFERENCE_LOCATION",
    "SUSPECT_LOCATION",
    "ModelPair",
    "find_model_pairs",
    "is_model_file",
]

SUSPECT_LOCATION = "models/suspect"
REFERENCE_LOCATION = "models/reference"
#: file names that make a folder a model folder
MODEL_FILE_NAMES = frozenset({"config.json", "model.sig", "model_index.json", "adapter_config.json", "params.json"})
#: file suffixes (lower case) of weights and serialised models
MODEL_FILE_SUFFIXES = frozenset({
    ".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".onnx", ".gguf", ".ggml", ".h5", ".hdf5", ".keras", ".pb",
    ".tflite", ".pkl", ".pickle", ".joblib", ".npz", ".npy", ".msgpack", ".mlmodel", ".pte", ".ot",
})  # fmt: skip
SIGNATURE_DIR = ".signatures"
#: files the responders add to a folder (``COMPROMISED.txt``); they do not make a folder a model
RESPONDER_MARKERS = frozenset({"COMPROMISED.txt"})


@dataclass(frozen=True, slots=True)
class ModelPair:
    """One model of the case: its suspect folder and the reference folder it is compared with.

    Attributes:
        name: the model id shown in titles (the suspect folder's name, else the reference folder's; unique).
        suspect: the suspect folder relative to the case, or None (a reference with no suspect counterpart).
        reference: the reference folder relative to the case, or None (no known-good copy in the case).
        primary: the pair the case is about (``case.yaml`` or the default rule); exactly one pair is primary.
    """

    name: str
    suspect: str | None
    reference: str | None
    primary: bool = False

    @property
    def folders(self) -> tuple[str, ...]:
        """The pair's folders that exist (suspect first)."""
        return tuple(f for f in (self.suspect, self.reference) if f is not None)

    @property
    def status(self) -> str:
        """``paired``, ``suspect_only`` or ``reference_only``."""
        if self.suspect and self.reference:
            return "paired"
        return "suspect_only" if self.suspect else "reference_only"


def is_model_file(name: str) -> bool:
    """Whether a file name is a weights file, a serialised model, a model config or a signature bundle."""
    return name in MODEL_FILE_NAMES or PurePosixPath(name).suffix.lower() in MODEL_FILE_SUFFIXES


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _overlap(a: str, b: str) -> bool:
    return _inside(a, b) or _inside(b, a)


def _children(files: Iterable[str], folder: str) -> tuple[list[str], dict[str, list[str]]]:
    """Direct files of ``folder`` and, per subfolder name, the paths below it relative to that subfolder."""
    prefix = folder.rstrip("/") + "/"
    direct: list[str] = []
    below: dict[str, list[str]] = {}
    for rel in files:
        if not rel.startswith(prefix):
            continue
        head, sep, rest = rel[len(prefix) :].partition("/")
        if sep:
            below.setdefault(head, []).append(rest)
        else:
            direct.append(head)
    return direct, below


def _looks_like_model(direct: Sequence[str], subdirs: Iterable[str]) -> bool:
    return any(is_model_file(n) for n in direct) or SIGNATURE_DIR in subdirs


def discover_models(files: Sequence[str], location: str, warnings: list[EvidenceWarning]) -> dict[str, str]:
    """``{key: folder}`` of the models in one location (see the module docstring); key ``"."`` for a flat one."""
    direct, below = _children(files, location)
    direct = [n for n in direct if n not in RESPONDER_MARKERS]
    subdirs = {d: paths for d, paths in below.items() if d != SIGNATURE_DIR}
    if not direct and not below:
        return {}
    if not subdirs or SIGNATURE_DIR in below:
        return {".": location}
    if direct:
        model_like = [d for d, paths in subdirs.items() if _looks_like_model(*_split(paths))]
        if _looks_like_model(direct, below) or not model_like:
            return {".": location}
        for name in sorted(direct):
            warnings.append(EvidenceWarning(f"{location}/{name}", None, f"next to the model folders of {location}, "
                                            "in none of them: inventoried, not analysed as a model"))  # fmt: skip
    return {d: f"{location}/{d}" for d in sorted(subdirs)}


def _split(paths: Sequence[str]) -> tuple[list[str], set[str]]:
    direct = [p for p in paths if "/" not in p]
    return direct, {p.split("/", 1)[0] for p in paths if "/" in p}


def _drop_overlapping(found: dict[str, str], configured: Sequence[str], warnings: list[EvidenceWarning]) -> None:
    for key, folder in list(found.items()):
        for chosen in configured:
            if _overlap(folder, chosen):
                del found[key]
                if folder != chosen:
                    warnings.append(EvidenceWarning(folder, None, f"overlaps the case.yaml model folder {chosen}: "
                                                    f"analysed only as part of {chosen}"))  # fmt: skip
                break


def _default_key(keys: Sequence[str], names: dict[str, str], affected: Sequence[str]) -> str | None:
    if not keys:
        return None
    if len(keys) == 1:
        return keys[0]
    by_name = {names[k]: k for k in keys}
    return next((by_name[a] for a in affected if a in by_name), min(keys, key=lambda k: names[k]))


def find_model_pairs(
    files: Sequence[str],
    *,
    suspect_model: str | None = None,
    reference_model: str | None = None,
    affected_models: Sequence[str] = (),
    warnings: list[EvidenceWarning] | None = None,
) -> list[ModelPair]:
    """Every model folder of a case, paired by name, the primary pair first, then by name.

    Args:
        files: the inventory (case-relative POSIX paths of regular files).
        suspect_model / reference_model: ``case.yaml`` choices, already checked to be folders inside the case.
        affected_models: ``case.yaml affected_models``, to choose the primary among several pairs.
        warnings: receives a warning per loose file and per folder absorbed by a configured one.

    Returns:
        The pairs (empty when the case holds no model folder); exactly one is primary when any exists.
    """
    warnings = warnings if warnings is not None else []
    sus = discover_models(files, SUSPECT_LOCATION, warnings)
    ref = discover_models(files, REFERENCE_LOCATION, warnings)
    configured = [c for c in (suspect_model, reference_model) if c]
    _drop_overlapping(sus, configured, warnings)
    _drop_overlapping(ref, configured, warnings)
    names = {k: PurePosixPath(v).name for k, v in (*ref.items(), *sus.items())}
    primary: ModelPair | None = None
    if configured:
        s, r = suspect_model, reference_model
        if s is None:
            key = PurePosixPath(r or "").name
            key = key if key in sus else _default_key(sorted(sus), names, affected_models)
            s = sus.pop(key) if key is not None else None
        if r is None:
            r = ref.pop(PurePosixPath(s or "").name, None)
        primary = ModelPair(PurePosixPath(s or r or "").name, s, r, True)
    else:
        key = _default_key(sorted(sus), names, affected_models)
        key = key if key is not None else _default_key(sorted(ref), names, affected_models)
        if key is not None:
            primary = ModelPair(names[key], sus.pop(key, None), ref.pop(key, None), True)
    pairs = [primary] if primary else []
    taken = {primary.name} if primary else set()
    for key in sorted(set(sus) | set(ref), key=lambda k: names[k]):
        s, r = sus.get(key), ref.get(key)
        name = names[key] if names[key] not in taken else (s or r or key)
        taken.add(name)
        pairs.append(ModelPair(name, s, r))
    return pairs
