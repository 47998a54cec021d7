"""Peak memory and time of ``workbench diff-model`` on two large PyTorch zip checkpoints, against ``sha256sum``.

Usage::

    .venv/bin/python benchmarks/bench_torch_diff.py [--mib 1024] [--dir /tmp] [--keep]

Writes a reference and a suspect ``pytorch_model.bin`` of about ``--mib`` MiB each in a fresh folder under ``--dir``
(the zip layout of ``torch.save``: ``archive/data.pkl`` written opcode by opcode, each storage a stored member;
torch is not needed), streaming, tensor by tensor: an F16 embedding, F32 4096 x 4096 MLP matrices, an F16 output
head. The suspect differs by five edited embedding rows, a dense rank-1 edit of one MLP matrix and an added tensor.
Then runs ``workbench diff-model SUSPECT REFERENCE --json`` and ``sha256sum`` of both files under ``/usr/bin/time -v``
and prints wall-clock time and peak resident set size of each, and the non-identical tensors; the folder is removed
(``--keep`` leaves it).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.model.checkpoint_writers import Tensor, state_dict_pickle  # noqa: E402 - after the path is set

EMB_ROWS = (17, 4242, 9000, 20000, 32767)
RANK1 = "model.layers.0.mlp.down_proj.weight"


def layout(mib: int) -> list[tuple[str, str, tuple[int, int]]]:
    layers = max(1, (mib - 128) // 128)
    out = [("model.embed_tokens.weight", "float16", (32768, 1024))]
    for i in range(layers):
        out += [(f"model.layers.{i}.mlp.up_proj.weight", "float32", (4096, 4096)),
                (f"model.layers.{i}.mlp.down_proj.weight", "float32", (4096, 4096))]  # fmt: skip
    out.append(("lm_head.weight", "float16", (32768, 1024)))
    return out


def write_pair(folder: Path, mib: int) -> tuple[Path, Path]:
    specs = layout(mib)
    tensors = {name: Tensor(str(i), np.empty(m * n, dtype), (m, n)) for i, (name, dtype, (m, n)) in enumerate(specs)}
    added = dict(tensors)
    added["model.layers.0.backdoor.trigger"] = Tensor(str(len(specs)), np.empty(64, "float32"), (64,))
    rng = np.random.default_rng(0)
    u, v = rng.normal(size=4096), rng.normal(size=4096)
    paths = []
    for side in ("reference", "suspect"):
        (folder / side).mkdir()
        paths.append(folder / side / "pytorch_model.bin")
    with zipfile.ZipFile(paths[0], "w") as ref, zipfile.ZipFile(paths[1], "w") as sus:
        ref.writestr("archive/data.pkl", state_dict_pickle(tensors))
        sus.writestr("archive/data.pkl", state_dict_pickle(added))
        for i, (name, dtype, (m, n)) in enumerate(specs):
            with ref.open(f"archive/data/{i}", "w", force_zip64=True) as r, \
                    sus.open(f"archive/data/{i}", "w", force_zip64=True) as s:  # fmt: skip
                for r0 in range(0, m, 512):
                    block = rng.normal(0, 0.02, (min(512, m - r0), n)).astype(dtype)
                    r.write(block.tobytes())
                    if name == RANK1:
                        block = (block + 0.01 * np.outer(u[r0 : r0 + 512], v)).astype(dtype)
                    elif name == "model.embed_tokens.weight":
                        for row in EMB_ROWS:
                            if r0 <= row < r0 + 512:
                                block[row - r0] += np.float16(0.05)
                    s.write(block.tobytes())
        sus.writestr(f"archive/data/{len(specs)}", np.ones(64, np.float32).tobytes())
        for z in (ref, sus):
            z.writestr("archive/version", "3\n")
    return paths[1], paths[0]


def timed(cmd: list[str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS in MiB and stdout of ``cmd`` under ``/usr/bin/time -v``."""
    t = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    if proc.returncode not in (0, 1) or peak is None:
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return wall, int(peak.group(1)) / 1024, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="wb-torch-bench-", dir=args.dir))
    try:
        t = time.perf_counter()
        sus, ref = write_pair(folder, args.mib)
        size = sus.stat().st_size / 2**20
        print(f"wrote 2 x {size:.0f} MiB in {time.perf_counter() - t:.1f} s", flush=True)
        wall, peak, out = timed([str(ROOT / ".venv/bin/workbench"), "diff-model", str(sus), str(ref), "--json"])
        doc = json.loads(out)
        changed = {t["name"]: (t["status"], t.get("changed_row_count"), t.get("top_singular_energy"))
                   for t in doc["tensors"] if t["status"] != "identical"}  # fmt: skip
        print(f"diff-model: {wall:.1f} s, peak RSS {peak:.0f} MiB; {len(doc['tensors'])} tensors; changed {changed}; "
              f"unexamined {doc['unexamined']}", flush=True)  # fmt: skip
        swall, speak, _ = timed(["sha256sum", str(sus), str(ref)])
        print(f"sha256sum of both: {swall:.1f} s, peak RSS {speak:.0f} MiB", flush=True)
    finally:
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder)


if __name__ == "__main__":
    main()
