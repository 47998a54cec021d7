"""Tensor diff of two model checkpoints against hashing both files in parallel with openssl (issue 15, target 2).

Usage::

    .venv/bin/python benchmarks/bench_tensor_diff.py [--mib 1024] [--formats safetensors,sharded,torch]
                                                     [--runs 3] [--quick] [--keep] [--dir /tmp] [--json FILE]

For each format, writes (deterministically, ``numpy.random.default_rng(0)``, streaming) a reference and a suspect
checkpoint of about ``--mib`` MiB holding 64 tensors: an F16 embedding 32768 x 1024, three F32 4096 x 4096 MLP
matrices, 47 F32 2048 x 2048 matrices, a BF16 2048 x 2048 attention matrix and 12 F32 norm vectors (sizes scale
with ``--mib``). The suspect differs in three tensors: a dense rank-1 edit of one 4096 x 4096 matrix (ROME-like),
five embedding rows and one BF16 element.

* ``safetensors``: one ``model.safetensors`` per side, diffed file against file;
* ``sharded``: the same tensors in four ``model-0000i-of-00004.safetensors`` shards with their index, folder
  against folder;
* ``torch``: one PyTorch zip ``pytorch_model.bin`` per side (``archive/data.pkl`` written opcode by opcode as
  ``torch.save`` lays it out, each storage a stored member; torch is not needed), file against file.

Three commands per format, through :mod:`benchmarks.harness` (whole processes, alternating, after a warm-up round):

* ``diff_model`` (hot path): :func:`workbench.model.dirdiff.diff_model` in a child process, which prints the time
  of the call itself (``seconds``), its own peak RSS (``VmHWM``, since the harness's ``ru_maxrss`` also counts the
  forked harness) and the non-identical tensors;
* ``cli``: ``workbench diff-model SUSPECT REFERENCE --json`` (the wall includes the interpreter's start and the
  command's imports: measured, not targeted here);
* ``openssl x2``: ``openssl dgst -sha256`` of both files in parallel (a shell ``&`` + ``wait``; for ``sharded``,
  one openssl per side over its shards), the reference: a diff has to read and hash both anyway.

The workbench's child runs as ``python -P`` (no current folder on ``sys.path``): with ``PYTHONPATH`` naming another
checkout (``git archive OLD workbench | tar -x -C /tmp/old``) the same script measures that version (the "before"
figures).

Target: the hot path's time <= 1.2 x the reference's wall, <= 100 MiB peak RSS. ``--quick``: 64 MiB checkpoints.
Exits 0 even when a target is missed (NOT met).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from harness import compare, report, workdir, write_json  # noqa: E402 - after the path is set

from tests.model.checkpoint_writers import Tensor, state_dict_pickle  # noqa: E402

PY = str(ROOT / ".venv/bin/python")
MEMORY_TARGET_MIB = 100
RANK1 = "model.layers.1.mlp.down_proj.weight"
EMBED = "model.embed_tokens.weight"
BF16 = "model.layers.0.self_attn.q_proj.weight"
EMB_ROWS = (17, 4242, 9000, 20000, 32767)
_NP = {"F32": np.float32, "F16": np.float16, "BF16": np.float32}
_TORCH = {"F32": "float32", "F16": "float16"}

CHILD = r"""
import json, sys, time
from pathlib import Path
from workbench.model.dirdiff import diff_model
t = time.perf_counter()
result = diff_model(Path(sys.argv[1]), Path(sys.argv[2]))
elapsed = time.perf_counter() - t
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
changed = {d.name: [d.status, d.changed_elements, d.changed_row_count, d.top_singular_energy, d.relative_change]
           for d in result.tensors if d.status != "identical"}
files = {k: len(v) for k, v in result.files.to_dict().items()}
print(json.dumps({"seconds": elapsed, "vmhwm_mib": hwm / 1024, "changed": changed, "tensors": len(result.tensors),
                  "files": files, "unexamined": result.unexamined}))
"""


def layout(mib: int) -> list[tuple[str, str, tuple[int, ...]]]:
    """64 tensors of about ``mib`` MiB in total (1024: 64 + 192 + 752 + 8 MiB)."""
    scale = max(1, round((mib / 1024) ** 0.5 * 8)) / 8  # side lengths scale with the square root of the size
    big, mid, emb_cols = int(4096 * scale) // 64 * 64, int(2048 * scale) // 64 * 64, int(1024 * scale) // 64 * 64
    out: list[tuple[str, str, tuple[int, ...]]] = [(EMBED, "F16", (32768, emb_cols)), (BF16, "BF16", (mid, mid))]
    out += [(f"model.layers.{i}.mlp.down_proj.weight", "F32", (big, big)) for i in range(3)]
    out += [(f"model.layers.{i}.self_attn.o_proj.weight", "F32", (mid, mid)) for i in range(47)]
    out += [(f"model.layers.{i}.input_layernorm.weight", "F32", (big,)) for i in range(12)]
    return out


def _blocks(rng: np.random.Generator, dtype: str, shape: tuple[int, ...]):
    """``(first row, rows as stored bytes' dtype)`` blocks of one tensor, and the edit the suspect gets."""
    rows = shape[0]
    cols = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    step = max(1, (1 << 22) // cols)
    for r0 in range(0, rows, step):
        n = min(step, rows - r0)
        yield r0, rng.standard_normal((n, cols), dtype=np.float32) * np.float32(0.02)


def _encode(block: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "F16":
        return block.astype(np.float16)
    if dtype == "BF16":
        return (block.view(np.uint32) >> 16).astype("<u2")
    return block


def _edit(name: str, dtype: str, r0: int, block: np.ndarray, uv: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    if name == RANK1:
        u, v = uv
        return (block + np.float32(0.01) * np.outer(u[r0 : r0 + len(block)], v[: block.shape[1]])).astype(np.float32)
    out = block.copy()
    if name == EMBED:
        for row in EMB_ROWS:
            if r0 <= row < r0 + len(block):
                out[row - r0] += np.float32(0.05)
    elif name == BF16 and r0 == 0:
        out.flat[1000] = 1.0
    return out


def _tensor_bytes(specs, rng):
    """``(name, dtype, shape, [(reference bytes, suspect bytes) per block])`` streamed tensor by tensor."""
    uv = (rng.standard_normal(8192), rng.standard_normal(8192))
    for name, dtype, shape in specs:
        for r0, block in _blocks(rng, dtype, shape):
            edited = _edit(name, dtype, r0, block, uv)
            yield name, _encode(block, dtype).tobytes(), _encode(edited, dtype).tobytes()


def _st_header(specs) -> bytes:
    size = {"F32": 4, "F16": 2, "BF16": 2}
    meta, pos = {}, 0
    for name, dtype, shape in specs:
        n = int(np.prod(shape)) * size[dtype]
        meta[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [pos, pos + n]}
        pos += n
    raw = json.dumps(meta, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return len(raw).to_bytes(8, "little") + raw


def write_safetensors(ref: Path, sus: Path, specs, rng) -> None:
    head = _st_header(specs)
    with ref.open("wb") as r, sus.open("wb") as s:
        r.write(head)
        s.write(head)
        for _name, a, b in _tensor_bytes(specs, rng):
            r.write(a)
            s.write(b)


def write_sharded(ref_dir: Path, sus_dir: Path, specs, rng, shards: int = 4) -> None:
    groups = [specs[i::shards] for i in range(shards)]
    weight_map = {}
    for i, group in enumerate(groups):
        name = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        write_safetensors(ref_dir / name, sus_dir / name, group, rng)
        weight_map.update({t[0]: name for t in group})
    index = json.dumps({"metadata": {}, "weight_map": weight_map}, indent=1)
    for d in (ref_dir, sus_dir):
        (d / "model.safetensors.index.json").write_text(index)


def write_torch(ref: Path, sus: Path, specs, rng) -> None:
    specs = [(n, "F32" if d == "BF16" else d, s) for n, d, s in specs]  # no bfloat16 writer without torch
    tensors = {name: Tensor(str(i), np.empty(int(np.prod(shape)), _TORCH[dtype]), shape)
               for i, (name, dtype, shape) in enumerate(specs)}  # fmt: skip
    current, handles = None, None
    with zipfile.ZipFile(ref, "w") as zr, zipfile.ZipFile(sus, "w") as zs:
        pickled = state_dict_pickle(tensors)
        zr.writestr("archive/data.pkl", pickled)
        zs.writestr("archive/data.pkl", pickled)
        keys = {name: str(i) for i, (name, _d, _s) in enumerate(specs)}
        for name, a, b in _tensor_bytes(specs, rng):
            if name != current:
                if handles:
                    for h in handles:
                        h.close()
                member = f"archive/data/{keys[name]}"
                handles = (zr.open(member, "w", force_zip64=True), zs.open(member, "w", force_zip64=True))
                current = name
            handles[0].write(a)
            handles[1].write(b)
        for h in handles or ():
            h.close()
        for z in (zr, zs):
            z.writestr("archive/version", "3\n")


def build(fmt: str, work: Path, mib: int) -> tuple[Path, Path, list[str], list[str]]:
    """``(suspect, reference, suspect files, reference files)`` of one format under ``work``."""
    rng = np.random.default_rng(0)
    specs = layout(mib)
    ref_dir, sus_dir = work / fmt / "reference", work / fmt / "suspect"
    ref_dir.mkdir(parents=True)
    sus_dir.mkdir(parents=True)
    if fmt == "safetensors":
        write_safetensors(ref_dir / "model.safetensors", sus_dir / "model.safetensors", specs, rng)
        return sus_dir / "model.safetensors", ref_dir / "model.safetensors", [], []
    if fmt == "torch":
        write_torch(ref_dir / "pytorch_model.bin", sus_dir / "pytorch_model.bin", specs, rng)
        return sus_dir / "pytorch_model.bin", ref_dir / "pytorch_model.bin", [], []
    write_sharded(ref_dir, sus_dir, specs, rng)
    return sus_dir, ref_dir, sorted(map(str, sus_dir.iterdir())), sorted(map(str, ref_dir.iterdir()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--formats", default="safetensors,sharded,torch")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="64 MiB checkpoints")
    parser.add_argument("--no-cli", action="store_true", help="skip the CLI command (hot path and reference only)")
    shm = Path("/dev/shm")  # tmpfs: 2 x 1 GiB per format written in seconds, read as from the page cache
    parser.add_argument("--dir", type=Path, default=shm if shm.is_dir() else Path(tempfile.gettempdir()))
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--json", help="write every report here")
    args = parser.parse_args()
    if args.quick:
        args.mib = 64
    reports = {}
    with workdir("wb-bench-tdiff-", args.keep, parent=args.dir) as work:
        for fmt in args.formats.split(","):
            sus, ref, sus_files, ref_files = build(fmt, work, args.mib)
            size = sum(p.stat().st_size for p in ([sus] if sus.is_file() else sus.iterdir())) / 2**20
            print(f"{fmt}: wrote 2 x {size:.0f} MiB", flush=True)
            a = " ".join(sus_files) if sus_files else str(sus)
            b = " ".join(ref_files) if ref_files else str(ref)
            commands = {
                "diff_model": [PY, "-P", "-c", CHILD, str(sus), str(ref)],
                "openssl x2": ["sh", "-c", f"openssl dgst -sha256 {a} & openssl dgst -sha256 {b} & wait"],
            }
            if not args.no_cli:
                commands["cli"] = [str(ROOT / ".venv/bin/workbench"), "diff-model", str(sus), str(ref), "--json"]
            results = compare(commands, runs=args.runs, cwd=str(ROOT))
            rep = report(f"{fmt}: diff of 2 x {size:.0f} MiB, 3 of 64 tensors changed", results,
                         reference="openssl x2", ratio_on="inner", target=1.2)  # fmt: skip
            hot = rep["tools"]["diff_model"]
            peak = hot["extra"].get("vmhwm_mib", hot["peak_mib"])
            rep["memory_met"] = peak <= MEMORY_TARGET_MIB
            print(f"  diff_model peak {peak:.0f} MiB (VmHWM), target <= {MEMORY_TARGET_MIB}: "
                  f"{'met' if rep['memory_met'] else 'NOT met'}")  # fmt: skip
            print(f"  changed: {json.dumps(hot['extra'].get('changed'))}; unexamined: {hot['extra'].get('unexamined')}")
            reports[fmt] = rep
            shutil.rmtree(work / fmt, ignore_errors=True) if not args.keep else None
        write_json(args.json, reports)


if __name__ == "__main__":
    main()
