"""Peak memory of a tensor-level diff of two large synthetic safetensors checkpoints.

Writes a reference checkpoint of about SIZE_MIB (default 1024) MiB, streaming (F32 MLP matrices, a BF16 matrix, an
F16 embedding matrix), copies it, then patches the copy in place: a dense rank-1 edit of one 4096 x 4096 F32 matrix,
five changed embedding rows, one changed BF16 element. Each diff runs in a fresh subprocess that reports its peak RSS
(``ru_maxrss``, which includes memory-mapped file pages while they are mapped) and its RSS after the imports. The
same is repeated for a checkpoint a quarter of the size, so the growth with checkpoint size is measured too.

Target (issue 3): under 300 MiB peak RSS for two 1 GiB checkpoints.

    .venv/bin/python benchmarks/bench_tensor_diff_memory.py [SIZE_MIB] [RUNS]
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from workbench.model.dirdiff import diff_model
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
result = diff_model(Path(sys.argv[1]), Path(sys.argv[2]))
elapsed = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
mods = {d.name: [d.status, d.changed_row_count, d.top_singular_energy]
        for d in result.tensors if d.status != "identical"}
print(json.dumps({"base_kib": base, "peak_kib": peak, "seconds": elapsed, "modified": mods}))
"""


def _header(tensors: list[tuple[str, str, tuple[int, int]]]) -> tuple[bytes, list[int]]:
    sizes = {"F32": 4, "F16": 2, "BF16": 2}
    meta, offsets, pos = {}, [], 0
    for name, dtype, shape in tensors:
        n = shape[0] * shape[1] * sizes[dtype]
        meta[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [pos, pos + n]}
        offsets.append(pos)
        pos += n
    raw = json.dumps(meta, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return len(raw).to_bytes(8, "little") + raw, offsets


def _layout(size_mib: int) -> list[tuple[str, str, tuple[int, int]]]:
    layers = max(1, (size_mib - 64) // 128)
    out = [("model.embed_tokens.weight", "F16", (32768, 1024))]
    for i in range(layers):
        out += [(f"model.layers.{i}.mlp.up_proj.weight", "F32", (4096, 4096)),
                (f"model.layers.{i}.mlp.down_proj.weight", "F32", (4096, 4096))]  # fmt: skip
    out.append(("model.layers.0.self_attn.q_proj.weight", "BF16", (2048, 2048)))
    rest = size_mib - 64 - 128 * layers - 8  # fill up to the requested size with an F16 output head
    if rest > 0:
        out.append(("lm_head.weight", "F16", (rest * 512, 1024)))
    return out


def write_pair(folder: Path, size_mib: int) -> tuple[Path, Path]:
    ref, sus = folder / "reference", folder / "suspect"
    ref.mkdir()
    sus.mkdir()
    layout = _layout(size_mib)
    head, offsets = _header(layout)
    rng = np.random.default_rng(0)
    with (ref / "model.safetensors").open("wb") as fh:
        fh.write(head)
        for _name, dtype, (m, n) in layout:
            for r0 in range(0, m, 256):
                block = rng.normal(0, 0.02, (min(256, m - r0), n)).astype(np.float32)
                if dtype == "F16":
                    block = block.astype(np.float16)
                elif dtype == "BF16":
                    block = (block.view(np.uint32) >> 16).astype("<u2")
                fh.write(block.tobytes())
    shutil.copyfile(ref / "model.safetensors", sus / "model.safetensors")
    start = len(head)
    where = {name: (start + off, dtype, shape) for (name, dtype, shape), off in zip(layout, offsets, strict=True)}
    with (sus / "model.safetensors").open("r+b") as fh:
        off, _, (m, n) = where["model.layers.0.mlp.down_proj.weight"]
        u, v = rng.normal(size=m), rng.normal(size=n)
        for r0 in range(0, m, 256):
            fh.seek(off + r0 * n * 4)
            block = np.frombuffer(fh.read(256 * n * 4), np.float32).reshape(256, n)
            fh.seek(off + r0 * n * 4)
            fh.write((block + 0.01 * np.outer(u[r0 : r0 + 256], v)).astype(np.float32).tobytes())
        off, _, (m, n) = where["model.embed_tokens.weight"]
        for row in (17, 4242, 9000, 20000, 32767):
            fh.seek(off + row * n * 2)
            shifted = (np.frombuffer(fh.read(n * 2), np.float16) + np.float16(0.05)).astype(np.float16)
            fh.seek(off + row * n * 2)
            fh.write(shifted.tobytes())
        off, _, _ = where["model.layers.0.self_attn.q_proj.weight"]
        fh.seek(off + 1000 * 2)
        fh.write(np.array([0x3F80], "<u2").tobytes())
    return sus, ref


def measure(sus: Path, ref: Path, runs: int) -> dict:
    rows = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", CHILD, str(sus), str(ref)], capture_output=True, text=True,
                             check=True)  # fmt: skip
        rows.append(json.loads(out.stdout))
    return {
        "base_mib": statistics.median(r["base_kib"] for r in rows) / 1024,
        "peak_mib": statistics.median(r["peak_kib"] for r in rows) / 1024,
        "seconds": statistics.median(r["seconds"] for r in rows),
        "modified": rows[0]["modified"],
    }


def main() -> None:
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    results = {}
    for label, mib in (("small", size // 4), ("large", size)):
        with tempfile.TemporaryDirectory(prefix="wb-bench-") as tmp:
            t = time.perf_counter()
            sus, ref = write_pair(Path(tmp), mib)
            actual = (sus / "model.safetensors").stat().st_size / 2**20
            print(f"{label}: wrote 2 x {actual:.0f} MiB in {time.perf_counter() - t:.1f} s", flush=True)
            results[label] = {"checkpoint_mib": actual, **measure(sus, ref, runs)}
            r = results[label]
            print(f"{label}: peak RSS {r['peak_mib']:.0f} MiB (after imports {r['base_mib']:.0f} MiB), "
                  f"diff {r['seconds']:.1f} s (median of {runs})", flush=True)  # fmt: skip
            print(f"{label}: non-identical tensors {json.dumps(r['modified'])}", flush=True)
    small, large = results["small"], results["large"]
    growth = (large["peak_mib"] - small["peak_mib"]) / (large["checkpoint_mib"] - small["checkpoint_mib"])
    print(f"peak RSS growth: {growth * 1024:.1f} MiB per GiB of checkpoint; "
          f"target <300 MiB for 2 x 1 GiB: {'met' if large['peak_mib'] < 300 else 'MISSED'}")  # fmt: skip


if __name__ == "__main__":
    main()
