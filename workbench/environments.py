"""The captured Python environments of a case, found from the inventory alone (nothing is opened to decide).

Three things are found, every path relative to the case root, never inside a model folder:

* **Environments.** A folder holding a ``NAME-VERSION.dist-info`` folder with a ``RECORD`` or ``METADATA`` in it is
  a ``site-packages`` copy (the folder itself is the root, so a whole virtual environment in the case is found at its
  ``lib/pythonX.Y/site-packages``); a folder holding :data:`CAPTURE_FILE` and :data:`FILES_FILE` is an inventory
  capture (``contain assess`` writes them under ``python-env/``). An environment inside another one is part of it.
* **Its role.** An environment with a path component in :data:`REFERENCE_NAMES` (``environments/previous/...``,
  ``python-env/known-good/...``) is a previous capture, the baseline of the others; every other one is examined.
* **Wheels.** Folders holding ``*.whl`` files (outside every environment): the wheels that should have been
  installed, compared with the installed files.

Files inside an environment have the role ``environment``: the evidence loaders leave them to the installed-package
analysis (:mod:`workbench.pyenv`), so a ``requirements.txt`` shipped inside a package is not taken for the case's
own baseline.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "CAPTURE_FILE",
    "CAPTURE_FORMAT",
    "FILES_FILE",
    "REFERENCE_NAMES",
    "TREE_DIR",
    "Environment",
    "find_environments",
    "find_wheel_folders",
    "inside",
]

#: the inventory's header file and its ``format`` value
CAPTURE_FILE = "capture.json"
CAPTURE_FORMAT = "workbench-python-env"
#: one JSON object per file of the captured site-packages
FILES_FILE = "files.jsonl"
#: the copies of the files the checks read, inside an inventory capture
TREE_DIR = "tree"
#: folder names that mark an environment as a previous (known-good) capture
REFERENCE_NAMES = frozenset({"reference", "previous", "baseline", "known-good", "known_good"})
_DIST_INFO = re.compile(r"^[^/]+-[^/-]+\.dist-info$")


@dataclass(frozen=True, slots=True)
class Environment:
    """One captured environment.

    Attributes:
        root: folder relative to the case root (``"."`` for the case folder itself).
        kind: ``folder`` (a site-packages copy) or ``inventory``.
        role: ``suspect`` (examined) or ``reference`` (a previous capture, the baseline).
    """

    root: str
    kind: str
    role: str

    def holds(self, relpath: str) -> bool:
        """Whether a case file lies inside this environment."""
        return inside(relpath, self.root)


def inside(relpath: str, folder: str) -> bool:
    """Whether ``relpath`` lies in ``folder`` (both relative to the case root; ``"."`` is the root)."""
    return folder == "." or relpath.startswith(folder + "/")


def _parent(relpath: str, levels: int = 1) -> str:
    parts = relpath.split("/")
    return "/".join(parts[:-levels]) or "."


def find_environments(relpaths: Iterable[str], excluded: Iterable[str] = ()) -> list[Environment]:
    """The environments among the case's files (module docstring), outermost only, by path.

    Args:
        relpaths: the inventoried files.
        excluded: folders never searched (the model folders).
    """
    skip, relpaths = tuple(excluded), list(relpaths)  # read twice (an inventory needs both of its files)
    roots: dict[str, str] = {}
    for rel in relpaths:
        if any(inside(rel, d) for d in skip):
            continue
        parts = rel.split("/")
        name = parts[-1]
        if name in (CAPTURE_FILE, FILES_FILE):
            roots.setdefault(_parent(rel), "inventory-candidate")
        elif len(parts) >= 2 and name in ("RECORD", "METADATA") and _DIST_INFO.match(parts[-2]):
            roots.setdefault(_parent(rel, 2), "folder")
    present = set(relpaths) if any(k == "inventory-candidate" for k in roots.values()) else set()
    kinds: dict[str, str] = {}
    for root, kind in roots.items():
        if kind == "inventory-candidate":
            prefix = "" if root == "." else root + "/"
            if f"{prefix}{CAPTURE_FILE}" in present and f"{prefix}{FILES_FILE}" in present:
                kinds[root] = "inventory"
        else:
            kinds[root] = kind
    outer = [r for r in sorted(kinds) if not any(o != r and inside(r, o) for o in kinds)]
    return [Environment(r, kinds[r], _role(r)) for r in outer]


def _role(root: str) -> str:
    return "reference" if any(p.lower() in REFERENCE_NAMES for p in root.split("/")) else "suspect"


def find_wheel_folders(relpaths: Iterable[str], environments: Iterable[Environment],
                       excluded: Iterable[str] = ()) -> list[str]:  # fmt: skip
    """Folders holding ``*.whl`` files, outside every environment and every excluded folder, by path."""
    envs, skip = list(environments), tuple(excluded)
    found = {_parent(rel) for rel in relpaths if rel.lower().endswith(".whl")
             and not any(e.holds(rel) for e in envs) and not any(inside(rel, d) for d in skip)}  # fmt: skip
    return sorted(found)
