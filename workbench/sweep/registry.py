"""The models of a registry: folders of model folders, versioned sub-folders (``name/revision/``) included.

A folder is a model when it holds a model file directly (:func:`workbench.model_pairs.is_model_file`: weights,
serialised models, ``config.json``, a signature bundle); everything below it belongs to that model (a ``tokenizer/``
sub-folder is part of it), and the walk does not look for models inside it. Other folders are walked further, so
``org/name/revision/`` and ``name/`` layouts are both found. Folders are read with :func:`os.scandir`, symlinks are
never followed (a symlinked model folder is listed as skipped), and caps bound the walk: what is past them is
reported, never dropped silently.
"""

from __future__ import annotations

import os
import stat
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from workbench.model_pairs import SIGNATURE_DIR, is_model_file

__all__ = ["MAX_FILES_PER_MODEL", "MAX_MODELS", "ModelFile", "ModelRef", "Registry", "walk_registry"]

#: models found at most per registry root (past it: reported in ``Registry.skipped``)
MAX_MODELS = 1_000_000
#: files of one model at most
MAX_FILES_PER_MODEL = 100_000
#: folder depth searched for model folders below the root
MAX_DEPTH = 8


@dataclass(frozen=True, slots=True)
class ModelFile:
    """One regular file of a model: path relative to the model folder, size, mtime (ns)."""

    rel: str
    size: int
    mtime_ns: int


@dataclass(frozen=True, slots=True)
class ModelRef:
    """One model of a registry.

    Attributes:
        root: the registry root (absolute).
        rel: the model folder relative to the root (POSIX), e.g. ``acme/embedder/r3``.
        files: its regular files, by path.
        skipped: ``"path: reason"`` for what was not taken in (symlinks, special files, past the cap).
    """

    root: str
    rel: str
    files: tuple[ModelFile, ...]
    skipped: tuple[str, ...] = ()

    @property
    def path(self) -> Path:
        return Path(self.root) / self.rel

    @property
    def key(self) -> str:
        """``root::rel``: unique across the registries of one sweep."""
        return f"{self.root}::{self.rel}"


@dataclass(slots=True)
class Registry:
    """What :func:`walk_registry` found under one root."""

    root: str
    models: list[ModelRef] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _entries(folder: Path, skipped: list[str], shown: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError as exc:
        skipped.append(f"{shown or '.'}: not readable ({exc.strerror or exc})")
        return []


def _model_files(folder: Path, rel: str) -> tuple[list[ModelFile], list[str]]:
    files: list[ModelFile] = []
    skipped: list[str] = []
    queue: deque[tuple[Path, str]] = deque([(folder, "")])
    while queue:
        here, prefix = queue.popleft()
        for e in _entries(here, skipped, f"{rel}/{prefix}".rstrip("/")):
            name = f"{prefix}{e.name}"
            st = e.stat(follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                skipped.append(f"{rel}/{name}: symbolic link, not followed")
            elif stat.S_ISDIR(st.st_mode):
                queue.append((Path(e.path), name + "/"))
            elif not stat.S_ISREG(st.st_mode):
                skipped.append(f"{rel}/{name}: not a regular file")
            elif len(files) >= MAX_FILES_PER_MODEL:
                skipped.append(f"{rel}/{name}: past {MAX_FILES_PER_MODEL} files of one model, not examined")
            else:
                files.append(ModelFile(name, st.st_size, st.st_mtime_ns))
    return sorted(files, key=lambda f: f.rel), skipped


def walk_registry(root: str | Path) -> Registry:
    """Every model folder under ``root`` (module docstring), by path.

    Raises:
        NotADirectoryError: ``root`` is not a folder (or is a symlink).
    """
    base = Path(root).absolute()
    if base.is_symlink() or not base.is_dir():
        raise NotADirectoryError(f"{root}: not a registry folder")
    reg = Registry(str(base))
    queue: deque[tuple[Path, str, int]] = deque([(base, "", 0)])
    while queue:
        here, rel, depth = queue.popleft()
        entries = _entries(here, reg.skipped, rel)
        names = [e.name for e in entries if e.is_file(follow_symlinks=False)]
        if any(is_model_file(n) for n in names) or any(e.name == SIGNATURE_DIR for e in entries):
            shown = rel or "."  # the root itself is one model
            if len(reg.models) >= MAX_MODELS:
                reg.skipped.append(f"{shown}: past {MAX_MODELS} models, not examined")
                continue
            files, skipped = _model_files(here, shown)
            reg.models.append(ModelRef(str(base), shown, tuple(files), tuple(skipped)))
            continue
        for e in entries:
            sub = f"{rel}/{e.name}" if rel else e.name
            if e.is_symlink():
                reg.skipped.append(f"{sub}: symbolic link, not followed")
            elif e.is_dir(follow_symlinks=False):
                if depth + 1 > MAX_DEPTH:
                    reg.skipped.append(f"{sub}: deeper than {MAX_DEPTH} folders, not searched")
                else:
                    queue.append((Path(e.path), sub, depth + 1))
    reg.models.sort(key=lambda m: m.rel)
    return reg
