"""Write the sample cases: :func:`generate` and the ``python -m workbench.samples DEST`` command line."""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Sequence
from pathlib import Path

from workbench.samples.cases import BUILDERS
from workbench.samples.readme import readme

__all__ = ["CASES", "generate", "main"]

#: Case folders owned (deleted and rewritten) by :func:`generate`.
CASES: tuple[str, ...] = ("tampered-weights", "poisoned-dependency", "false-alarm", "poisoned-package")


def generate(dest: Path) -> list[Path]:
    """Write every sample case (and ``README.md``) under ``dest``.

    Each case folder in :data:`CASES` is deleted and recreated; nothing else under ``dest`` is touched except
    ``dest/README.md``, which is overwritten.

    Returns:
        The files written, sorted.

    Raises:
        ValueError: a case path exists but is not a plain directory (e.g. a symlink).
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    truths: dict[str, dict] = {}
    for case in CASES:
        files, truths[case] = BUILDERS[case](case)
        root = dest / case
        if root.is_symlink() or (root.exists() and not root.is_dir()):
            raise ValueError(f"{root} is not a plain directory; refusing to replace it")
        if root.exists():
            shutil.rmtree(root)
        for rel in sorted(files):
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(files[rel])
            written.append(path)
    readme_path = dest / "README.md"
    readme_path.write_bytes(readme(truths).encode())
    written.append(readme_path)
    return sorted(written)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``python -m workbench.samples DEST``; prints each file written and the total size."""
    parser = argparse.ArgumentParser(
        prog="python -m workbench.samples", description="Write the bundled sample evidence cases."
    )
    parser.add_argument("dest", type=Path, help="folder to write the sample cases into (e.g. evidence-samples)")
    args = parser.parse_args(argv)
    paths = generate(args.dest)
    total = 0
    for path in paths:
        size = path.stat().st_size
        total += size
        print(f"{size:>9}  {path}")
    print(f"{len(paths)} files, {total} bytes")
    return 0
