"""Speed and memory of ``scan_model`` against picklescan (the reference tool), on synthetic PyTorch artefacts.

Builds, in a temporary folder: a state-dict pickle of N tensor records written opcode by opcode (what
``torch.save`` emits, memoised globals included), the same pickle inside a stored PyTorch zip with S MiB of
storage data, and a legacy (non-zip) checkpoint. Reports medians of R runs for:

* genops analysis (``analyse_pickle_file``) vs ``picklescan.scanner.scan_bytes`` on the raw pickle (ratio);
* ``scan_model`` of the zip (inventory + CRC of every member + pickle analysis + picklescan) vs picklescan alone;
* peak RSS of one ``scan_model`` in a fresh process (``resource.getrusage``), against the zip's size.

Run: ``.venv/bin/python benchmarks/bench_scan_model.py [--tensors 20000] [--storage-mib 512] [--runs 5]``.
"""

from __future__ import annotations

import argparse
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path


def uni(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def state_dict_pickle(n: int) -> bytes:
    """Protocol 2 state dict of n tensors, with the globals memoised once and fetched with BINGET (as pickle does)."""
    out = [b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01("]
    out.append(b"ctorch._utils\n_rebuild_tensor_v2\nq\x02")
    out.append(b"ctorch\nFloatStorage\nq\x03")
    out.append(b"00")  # drop the two globals again (they stay in the memo)
    for i in range(n):
        if i and i % 1000 == 0:
            out.append(b"u(")  # SETITEMS then a new MARK, as the pickler batches dict items
        key = f"encoder.layer.{i // 16}.weight_{i % 16}"
        record = (uni(key) + b"h\x02((" + uni("storage") + b"h\x03" + uni(str(i)) + uni("cpu") + b"M\x00\x01tQ"
                  + b"K\x00K\x10K\x10\x86K\x10K\x01\x86\x89h\x00)RtR")  # fmt: skip
        out.append(record)
    out.append(b"u.")
    return b"".join(out)


def torch_zip(pickle_bytes: bytes, storage_mib: int, path: Path) -> None:
    block = bytes(range(256)) * 4096  # 1 MiB
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data.pkl", pickle_bytes)
        for i in range(storage_mib):
            zf.writestr(f"archive/data/{i}", block)
        zf.writestr("archive/version", b"3\n")


def median_time(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def peak_rss_mib(target: Path) -> float:
    code = (
        "import resource, sys\n"
        "from workbench.model.scan import scan_model\n"
        f"scan_model({str(target)!r})\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tensors", type=int, default=20000)
    ap.add_argument("--storage-mib", type=int, default=512)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()

    from picklescan import scanner

    from workbench.model.pickles import analyse_pickle_file
    from workbench.model.scan import scan_model

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = state_dict_pickle(args.tensors)
        raw = root / "raw" / "state.pkl"
        raw.parent.mkdir()
        raw.write_bytes(data)
        zdir = root / "zip"
        zdir.mkdir()
        torch_zip(data, args.storage_mib, zdir / "pytorch_model.bin")
        report = analyse_pickle_file(raw)
        assert len(report.imports) == 3 and report.streams[0].end == len(data), report.problems

        def picklescan_raw() -> None:
            with raw.open("rb") as fh:
                scanner.scan_bytes(fh, "state.pkl", ".pkl")

        def picklescan_zip() -> None:
            with (zdir / "pytorch_model.bin").open("rb") as fh:
                scanner.scan_bytes(fh, "pytorch_model.bin", ".bin")

        ours_raw = median_time(lambda: analyse_pickle_file(raw), args.runs)
        ref_raw = median_time(picklescan_raw, args.runs)
        ours_zip = median_time(lambda: scan_model(zdir), args.runs)
        ref_zip = median_time(picklescan_zip, args.runs)
        rss = peak_rss_mib(zdir)
        print(f"pickle: {len(data) / 1e6:.1f} MB, {report.streams[0].opcodes} opcodes, {args.tensors} tensors")
        print(f"  genops analysis {ours_raw:.3f} s, picklescan {ref_raw:.3f} s, ratio {ours_raw / ref_raw:.2f}")
        size = (zdir / "pytorch_model.bin").stat().st_size / 2**20
        print(f"torch zip: {size:.0f} MiB ({args.storage_mib} storage members)")
        print(f"  scan_model {ours_zip:.3f} s, picklescan {ref_zip:.3f} s, ratio {ours_zip / ref_zip:.2f}")
        print(f"  peak RSS of scan_model in a fresh process: {rss:.0f} MiB")
        print(f"medians of {args.runs} runs")


if __name__ == "__main__":
    main()
