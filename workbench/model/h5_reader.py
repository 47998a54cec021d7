"""The Keras attributes of an HDF5 file (``model_config``, ``training_config`` …), read with h5py in a child process.

HDF5 is a complex binary format parsed by a C library; a hostile file may crash it, hang it or make it allocate
without bound. So h5py never runs in the workbench's process: :func:`read_h5_attrs` starts ``python -m
workbench.model.h5_reader`` with the file's open descriptor (a file on disk, opened by the caller through
:mod:`workbench.safeio`) or the member's bytes on stdin (an archive member), under an address-space limit
(:data:`MEMORY_LIMIT`), a CPU-time limit and a wall-clock timeout, with HDF5 filter plugins disabled
(``HDF5_PLUGIN_PRELOAD=::``). The child opens the file read-only, reads only root attributes (never a dataset, so
no external link, external storage or virtual dataset is followed), and prints one JSON document. A crash, a
timeout or an error becomes :attr:`H5Attrs.error`.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

__all__ = ["KERAS_ATTRIBUTES", "MEMORY_LIMIT", "TIMEOUT", "H5Attrs", "read_h5_attrs"]

#: root attributes read (what Keras and tf.keras store there)
KERAS_ATTRIBUTES = ("model_config", "training_config", "keras_version", "backend")
#: address-space limit of the child (h5py and numpy start in under 300 MiB of it; a 150 MB attribute still reads)
MEMORY_LIMIT = 1024 * 1024 * 1024
#: CPU seconds and wall-clock seconds the child may take (a real Keras file takes well under a second)
CPU_SECONDS, TIMEOUT = 30, 60
#: root attribute names listed
MAX_NAMES = 256


@dataclass(frozen=True, slots=True)
class H5Attrs:
    """What the child read.

    Attributes:
        attrs: name -> text of each attribute of :data:`KERAS_ATTRIBUTES` present (cut at the byte cap).
        names: the root attribute names (at most 256).
        error: why nothing could be read (not HDF5, crash, timeout, h5py missing), or None.
        cut: attributes longer than the byte cap (their text is cut).
    """

    attrs: dict[str, str] = field(default_factory=dict)
    names: tuple[str, ...] = ()
    error: str | None = None
    cut: tuple[str, ...] = ()


def read_h5_attrs(*, fd: int | None = None, data: bytes | None = None, max_bytes: int = 32 * 1024 * 1024) -> H5Attrs:
    """Read the Keras root attributes of an HDF5 file in a child process.

    Args:
        fd: an open descriptor of the file (the child reads through it; the caller keeps it open).
        data: the file's bytes, when it is an archive member.
        max_bytes: longest attribute text returned.

    Returns:
        The :class:`H5Attrs` (``error`` set when the child could not read the file).
    """
    args = [sys.executable, "-I", "-m", "workbench.model.h5_reader", "--max-bytes", str(max_bytes)]
    args += ["--fd", str(fd)] if fd is not None else ["--stdin"]
    env = {**os.environ, "HDF5_PLUGIN_PRELOAD": "::", "HDF5_USE_FILE_LOCKING": "FALSE", "OPENBLAS_NUM_THREADS": "1",
           "OMP_NUM_THREADS": "1"}  # fmt: skip
    try:
        proc = subprocess.run(  # noqa: S603 - our own module, fixed arguments
            args, input=data if fd is None else None, capture_output=True, timeout=TIMEOUT, check=False, env=env,
            pass_fds=(fd,) if fd is not None else (),
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return H5Attrs(error=f"h5py did not finish within {TIMEOUT} s")
    except OSError as exc:
        return H5Attrs(error=f"h5py child could not start: {exc}")
    if proc.returncode < 0:
        return H5Attrs(error=f"h5py crashed (signal {-proc.returncode})")
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
        return H5Attrs(error=f"h5py failed ({tail[0][:200]})")
    try:
        doc = json.loads(proc.stdout.decode("utf-8"))
    except ValueError:
        return H5Attrs(error="h5py child printed no result")
    return H5Attrs(dict(doc.get("attrs") or {}), tuple(doc.get("names") or ()), doc.get("error"),
                   tuple(doc.get("cut") or ()))  # fmt: skip


# ---------------------------------------------------------------------------------------------------- the child
def _text(value: Any, cap: int) -> tuple[str, bool]:
    if hasattr(value, "shape") and getattr(value, "size", 0) == 1 and hasattr(value, "item"):
        value = value.reshape(-1)[0] if getattr(value, "ndim", 0) else value.item()
    if isinstance(value, bytes | bytearray):
        text = bytes(value[: cap + 1]).decode("utf-8", "replace")
    elif isinstance(value, str):
        text = value[: cap + 1]
    else:
        text = f"<{type(value).__name__}>"
    return text[:cap], len(text) > cap


def _child(argv: list[str]) -> int:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))
    cap = int(argv[argv.index("--max-bytes") + 1])
    out: dict[str, Any] = {"attrs": {}, "names": [], "error": None, "cut": []}
    try:
        import h5py
    except ImportError:
        out["error"] = "h5py is not installed"
        _emit(out)
        return 0
    if "--fd" in argv:
        fh: Any = os.fdopen(int(argv[argv.index("--fd") + 1]), "rb", closefd=False)
        fh.seek(0)
    else:
        fh = io.BytesIO(sys.stdin.buffer.read())
    try:
        with h5py.File(fh, "r") as f:
            attrs = f.attrs
            for i, name in enumerate(attrs):
                if i >= MAX_NAMES:
                    break
                out["names"].append(str(name)[:200])
            for name in KERAS_ATTRIBUTES:
                if name in attrs:
                    text, cut = _text(attrs[name], cap)
                    out["attrs"][name] = text
                    if cut:
                        out["cut"].append(name)
    except Exception as exc:  # noqa: BLE001 - the child reports any failure of h5py on hostile bytes as its result
        out["error"] = f"h5py could not read it ({type(exc).__name__}: {str(exc)[:200]})"
    _emit(out)
    return 0


def _emit(out: dict[str, Any]) -> None:
    """The result as one UTF-8 JSON document (not ASCII-escaped: the text stays near its own size)."""
    sys.stdout.buffer.write(json.dumps(out, ensure_ascii=False).encode("utf-8", "replace"))
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
