"""Where the notebooks and templates are: the repository checkout, or the copies packaged in the wheel."""

from __future__ import annotations

from pathlib import Path

__all__ = ["notebook_path", "templates_dir"]

_PKG = Path(__file__).resolve().parent
_CANDIDATES = (_PKG.parent, _PKG / "_resources")


def _find(sub: str) -> Path:
    for base in _CANDIDATES:
        candidate = base / sub
        if candidate.exists():
            return candidate
    raise FileNotFoundError(
        f"{sub} not found next to the workbench package (looked in {', '.join(map(str, _CANDIDATES))})"
    )


def notebook_path(name: str = "investigate.ipynb") -> Path:
    """Path of a bundled notebook."""
    return _find(f"notebooks/{name}")


def templates_dir() -> Path:
    """The folder holding the nbconvert report template and the comms templates."""
    return _find("templates")
