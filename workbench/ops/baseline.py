"""Baselines of model folders: walking without following links, interruptible streaming hashes, the state file.

* :func:`scan_model` lists a folder's regular files (with their stat), symlinks (with their target, never followed),
  special files and unreadable sub-folders.
* :func:`hash_interruptible` is :func:`workbench.hashing.hash_files` made stoppable: same 1 MiB chunks and
  ``O_NOFOLLOW``, parallel threads, and a stop event checked after every chunk, so a service stops within a second
  even in the middle of a multi-gigabyte file.
* :class:`StateStore` keeps the baselines in a JSON file written atomically; an unusable state file is an error,
  never a reason to take new baselines silently.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench import safeio
from workbench.hashing import CHUNK

__all__ = ["Interrupted", "Scan", "StateError", "StateStore", "hash_interruptible", "scan_model", "unchanged"]

STATE_VERSION = 1


class Interrupted(Exception):
    """The stop event was set while a cycle was running."""


class StateError(Exception):
    """The state file exists but cannot be used (never silently replaced: that would re-baseline)."""


@dataclass(slots=True)
class Scan:
    """One walk of a model folder: regular files (with stat), symlinks (target), special files, unreadable dirs."""

    regular: dict[str, os.stat_result] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    special: list[str] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)


def scan_model(root: Path) -> Scan:
    """Walk ``root`` without following any symlink below it.

    Raises:
        FileNotFoundError / NotADirectoryError / PermissionError: the model folder itself is unusable.
    """
    out = Scan()
    with os.scandir(root):
        pass  # raises for a missing, non-directory or unreadable root
    stack = [root]
    while stack:
        current = stack.pop()
        try:
            entries = list(os.scandir(current))
        except OSError as exc:
            out.unreadable[current.relative_to(root).as_posix() or "."] = exc.strerror or str(exc)
            continue
        for entry in entries:
            rel = Path(entry.path).relative_to(root).as_posix()
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError as exc:
                out.unreadable[rel] = exc.strerror or str(exc)
                continue
            if stat.S_ISLNK(st.st_mode):
                try:
                    out.links[rel] = str(Path(entry.path).readlink())
                except OSError:
                    out.links[rel] = "?"
            elif stat.S_ISDIR(st.st_mode):
                stack.append(Path(entry.path))
            elif stat.S_ISREG(st.st_mode):
                out.regular[rel] = st
            else:
                out.special.append(rel)
    return out


def _hash_one(path: Path, stop: threading.Event) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with safeio.open_evidence(path, buffering=0) as fh:  # a file swapped for a link or a FIFO is refused
        while n := fh.readinto(buf):
            if stop.is_set():
                raise Interrupted
            digest.update(view[:n])
            size += n
    return digest.hexdigest(), size


def hash_interruptible(paths: list[Path], stop: threading.Event, workers: int = 0) -> dict[Path, Any]:
    """Streaming SHA-256 of many files in parallel threads; stops within one chunk when ``stop`` is set.

    Like :func:`workbench.hashing.hash_files` (same chunk size, O_NOFOLLOW), but interruptible, which a service
    that must stop within a second needs. Returns ``{path: (hex, size) | OSError}``.

    Raises:
        Interrupted: ``stop`` was set.
    """
    results: dict[Path, Any] = {}
    pending = iter(paths)
    lock = threading.Lock()

    def work() -> None:
        while not stop.is_set():
            with lock:
                path = next(pending, None)
            if path is None:
                return
            try:
                results[path] = _hash_one(path, stop)
            except Interrupted:
                return
            except OSError as exc:
                results[path] = exc

    count = max(1, min(workers or (os.cpu_count() or 1), 4, len(paths)))
    threads = [threading.Thread(target=work, daemon=True, name=f"hash-{i}") for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if stop.is_set():
        raise Interrupted
    return results


class StateStore:
    """Baselines on disk: ``{"version": 1, "models": {id: {"path", "established", "files": {rel: entry}}}}``.

    A file entry is ``{"sha256", "size", "mtime_ns", "ctime_ns", "ino"}`` or ``{"symlink": target}``.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.models: dict[str, dict[str, Any]] = {}

    def load(self) -> None:
        """Read the state; a missing file means no baselines yet.

        Raises:
            StateError: the file exists but is unreadable or not a state document.
        """
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        except (OSError, UnicodeDecodeError) as exc:
            raise StateError(f"{self.path}: state file cannot be read ({exc}); fix it or move it aside") from None
        try:
            doc = json.loads(text)
            models = doc["models"]
            ok = doc.get("version") == STATE_VERSION and isinstance(models, dict)
            ok = ok and all(isinstance(m, dict) and isinstance(m.get("files"), dict) for m in models.values())
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
            ok = False
        if not ok:
            raise StateError(
                f"{self.path}: not a monitor state file (version {STATE_VERSION}); refusing to start rather than "
                "re-baseline silently: fix it, or move it aside to take new baselines"
            )
        self.models = models

    def save(self) -> None:
        """Write atomically (temporary sibling, fsync, rename)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump({"version": STATE_VERSION, "models": self.models}, fh, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(self.path)


def unchanged(entry: dict[str, Any], st: os.stat_result) -> bool:
    return (
        "sha256" in entry
        and entry.get("size") == st.st_size
        and entry.get("mtime_ns") == st.st_mtime_ns
        and entry.get("ctime_ns") == st.st_ctime_ns
        and entry.get("ino") == st.st_ino
    )
