"""Scanner evaluation (issue 12): every issue-12 class and the benign set, through our scanner and the others.

Usage::

    .venv/bin/python benchmarks/eval_scanners.py [--quick] [--markdown] [--out FILE] [--fp-report FILE]
        [--scanners workbench,picklescan,modelscan,fickling,modelaudit] [--keep DIR]

It writes the corpus of ``benchmarks/eval_corpus.py`` (the issue-12 classes of ``tests/hostile/corpus.yaml``, the
extra classes built there, the benign set ``tests/data/benign/`` and the MiniLM test model) into a temporary folder,
runs each scanner over it, each call a child process (timed, its peak memory measured, its address space capped at
:data:`MEMORY_CAP`), and prints two tables: per malicious class, what each scanner made of it; per benign group, how
many files each scanner called high or critical (false positives).

The scanners:

* ``workbench``: :func:`workbench.model.scan.scan_model` (picklescan's opinion included, as ``scan-model`` runs it),
  in a child of this interpreter; a class counts as detected when the outcome stated in ``corpus.yaml``/
  ``eval_corpus.py`` holds (finding category, minimum severity, file named; or the scan's coverage partial).
* ``picklescan``: ``picklescan.scanner.scan_file_path`` (what its CLI does for a file), in the project's venv.
* ``modelscan``, ``fickling``, ``modelaudit``: their CLIs, from throwaway venvs (never the project's)::

      for s in modelscan fickling modelaudit; do python3 -m venv /tmp/scanner-venvs/$s; \\
          /tmp/scanner-venvs/$s/bin/pip install $s; done

  A scanner that is not installed is left out of the tables and named. ``fickling`` runs ``--check-safety`` only
  (its ``load`` executes pickles it judges safe: never used).

Severity is mapped onto ours: picklescan dangerous = critical, suspicious = medium; modelscan's own levels;
fickling OVERTLY/LIKELY_OVERTLY_MALICIOUS = critical, LIKELY_UNSAFE = high, SUSPICIOUS/POSSIBLY_UNSAFE = medium;
ModelAudit critical = critical, warning = medium. Cells: ``✓`` detected (high or critical, or for a coverage class
the file said not fully scanned), ``~`` only a medium or lower finding, ``✗`` called clean, ``err`` the scanner
failed or said it could not read the file, ``skip`` it did not look at the file, ``crash`` our scanner raised.
Benign: our file-type notice (``dangerous_file_type`` high, "pickle-based") is not a false positive (see
``tests/model/test_benign.py``); every other high or critical finding is.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import eval_corpus as corpus
import eval_scanner_report as report
import eval_scanner_tools as tools

ROOT = corpus.ROOT
MEMORY_CAP = 4 * 1024**3
TIMEOUT_S = 600
Run = tools.Run
#: benign files given to fickling: names of pickle files and of the formats that hold one
PICKLE_SUFFIXES = {".pkl", ".pickle", ".joblib", ".pt", ".pth", ".bin", ".ckpt", ".ptl", ".pt2", ".npy", ".npz"}


# ------------------------------------------------------------------------------------------------ child processes
def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def run_child(argv: list[str], *, cwd: Path, timeout: float = TIMEOUT_S) -> tuple[int, str, str, float, float]:
    """Run ``argv`` (capped address space, timeout); return exit code (-9: killed at the timeout), stdout, stderr,
    seconds and the child's peak resident memory in MiB."""
    with tempfile.TemporaryFile() as out_f, tempfile.TemporaryFile() as err_f:
        start = time.monotonic()
        proc = subprocess.Popen(argv, cwd=cwd, stdout=out_f, stderr=err_f, stdin=subprocess.DEVNULL, preexec_fn=_limit)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                code = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() - start > timeout:
                proc.kill()
                _, _, usage = os.wait4(proc.pid, 0)
                code = -9
                break
            time.sleep(0.02)
        proc.returncode = code  # reaped by wait4
        seconds = time.monotonic() - start
        out_f.seek(0)
        err_f.seek(0)
        out, err = out_f.read().decode("utf-8", "replace"), err_f.read().decode("utf-8", "replace")
    return code, out, err, seconds, usage.ru_maxrss / 1024


# ------------------------------------------------------------------------------------------------ the scanners
class Scanner:
    """One scanner: ``name``, ``version()`` (None when not installed), ``scan(folder, files)`` -> :class:`Run`."""

    name = ""

    def version(self) -> str | None:
        raise NotImplementedError

    def scan(self, folder: Path, files: list[Path], *, each: bool) -> Run:
        raise NotImplementedError


class Workbench(Scanner):
    name = "workbench"

    def version(self) -> str | None:
        from workbench import __version__

        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "workbench"], cwd=ROOT, capture_output=True, text=True)
        return f"{__version__} ({head.stdout.strip()}{' + uncommitted changes' if dirty.stdout.strip() else ''})"

    def scan(self, folder: Path, files: list[Path], *, each: bool) -> Run:
        argv = [sys.executable, str(Path(tools.__file__)), "workbench", str(folder)]
        argv += ["--each", *map(str, files)] if each else []
        return tools.parse_worker(run_child(argv, cwd=ROOT), folder, files, tools.workbench_outcomes)


class Picklescan(Scanner):
    name = "picklescan"

    def version(self) -> str | None:
        return tools.dist_version(sys.executable, "picklescan")

    def scan(self, folder: Path, files: list[Path], *, each: bool) -> Run:
        argv = [sys.executable, str(Path(tools.__file__)), "picklescan", str(folder), "--each", *map(str, files)]
        return tools.parse_worker(run_child(argv, cwd=ROOT), folder, files, tools.picklescan_outcomes)


class Venv(Scanner):
    """A scanner installed in ``/tmp/scanner-venvs/<name>`` (or ``$EVAL_SCANNER_VENVS``)."""

    def bin(self) -> Path:
        return Path(os.environ.get("EVAL_SCANNER_VENVS", "/tmp/scanner-venvs")) / self.name / "bin"

    def version(self) -> str | None:
        python = self.bin() / "python"
        return tools.dist_version(str(python), self.name) if python.exists() else None


class Modelscan(Venv):
    name = "modelscan"

    def scan(self, folder: Path, files: list[Path], *, each: bool) -> Run:
        with tempfile.TemporaryDirectory() as tmp:
            report = Path(tmp) / "report.json"
            code, out, err, secs, peak = run_child(
                [str(self.bin() / "modelscan"), "-p", str(folder), "-r", "json", "-o", str(report)], cwd=Path(tmp)
            )
            doc = (tools.json_docs(report.read_text(errors="replace")) or [None])[0] if report.exists() else None
        if doc is None:
            return Run({}, secs, peak, error=tools.last_line(err or out) or f"exit {code}")
        return Run(tools.modelscan_outcomes(doc, folder, files), secs, peak)


class Modelaudit(Venv):
    name = "modelaudit"

    def scan(self, folder: Path, files: list[Path], *, each: bool) -> Run:
        with tempfile.TemporaryDirectory() as tmp:
            report = Path(tmp) / "report.json"
            argv = [str(self.bin() / "modelaudit"), "scan", str(folder), "--format", "json", "-o", str(report)]
            code, out, err, secs, peak = run_child([*argv, "--no-cache", "-q"], cwd=Path(tmp))
            doc = (tools.json_docs(report.read_text(errors="replace")) or [None])[0] if report.exists() else None
        if doc is None:
            return Run({}, secs, peak, error=tools.last_line(err or out) or f"exit {code}")
        return Run(tools.modelaudit_outcomes(doc, folder, files), secs, peak)


class Fickling(Venv):
    """fickling reads one file as a pickle, whatever it holds: every malicious class is given to it, and of the benign
    set only the files a user would hand it (:data:`PICKLE_SUFFIXES`; no compressed or non-pickle format)."""

    name = "fickling"

    def scan(self, folder: Path, files: list[Path], *, each: bool) -> Run:
        outcomes, secs_total, peak_max = {}, 0.0, 0.0
        with tempfile.TemporaryDirectory() as tmp:
            for i, path in enumerate(files):
                if each and path.suffix.lower() not in PICKLE_SUFFIXES:  # fickling reads any file as a pickle
                    outcomes[path.relative_to(folder).as_posix()] = tools.Outcome(status="skipped")
                    continue
                report = Path(tmp) / f"{i}.json"
                argv = [str(self.bin() / "fickling"), "--check-safety", "--json-output", str(report), str(path)]
                code, out, err, secs, peak = run_child(argv, cwd=Path(tmp), timeout=300)
                secs_total, peak_max = secs_total + secs, max(peak_max, peak)
                docs = tools.json_docs(report.read_text(errors="replace")) if report.exists() else []
                rel = path.relative_to(folder).as_posix()
                outcomes[rel] = tools.fickling_outcome(docs, code, err or out)
        return Run(outcomes, secs_total, peak_max)


SCANNERS: dict[str, Scanner] = {s.name: s for s in (Workbench(), Picklescan(), Modelscan(), Fickling(), Modelaudit())}


# ------------------------------------------------------------------------------------------------ evaluation
def evaluate(root: Path, names: list[str], *, quick: bool) -> dict[str, Any]:
    """Build the corpus under ``root`` and run every installed scanner of ``names``; return the results document."""
    samples, left_out = corpus.build_corpus(root, quick=quick)
    versions = {n: SCANNERS[n].version() for n in names}
    present = [n for n in names if versions[n]]
    bad = [s for s in samples if s.kind == "malicious"]
    good = [s for s in samples if s.kind == "benign"]
    results: dict[str, dict[str, tools.Outcome]] = {n: {} for n in present}
    cost: dict[str, dict[str, Any]] = {n: {"seconds": 0.0, "peak_mib": 0.0, "per_sample": {}} for n in present}
    for name in present:
        scanner = SCANNERS[name]
        for s in bad:
            run = scanner.scan(s.folder, [s.path], each=False)
            results[name][s.id] = run.outcomes.get(s.path.name) or tools.Outcome(
                status="error", notes=[run.error or "-"]
            )
            _account(cost[name], s.id, run)
            status = results[name][s.id].status
            print(f"{name:10} {s.id:40} {status:8} {run.seconds:6.1f}s {run.error}", file=sys.stderr)
        for folder in sorted({s.folder for s in good}):
            group = [s for s in good if s.folder == folder]
            run = scanner.scan(folder, [s.path for s in group], each=folder.name != "minilm")
            _account(cost[name], folder.name, run)
            for s in group:
                rel = s.path.relative_to(folder).as_posix()
                results[name][s.id] = run.outcomes.get(rel) or tools.Outcome(
                    status="error" if run.error else "skipped", notes=[run.error] if run.error else []
                )
            print(f"{name:10} benign {folder.name:33} {run.seconds:6.1f}s", file=sys.stderr)
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "versions": versions,
        "present": present,
        "left_out": left_out,
        "malicious": bad,
        "benign": good,
        "results": results,
        "cost": cost,
    }


def _account(cost: dict[str, Any], key: str, run: Run) -> None:
    cost["seconds"] += run.seconds
    cost["peak_mib"] = max(cost["peak_mib"], run.peak_mib)
    cost["per_sample"][key] = (run.seconds, run.peak_mib)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="leave out the 20 MB cheap-opcodes class")
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    parser.add_argument("--out", type=Path, help="also write the output here")
    parser.add_argument("--fp-report", type=Path, help="write our benign findings, file by file, here (Markdown)")
    parser.add_argument("--scanners", default=",".join(SCANNERS), help="comma-separated (default: all)")
    parser.add_argument("--keep", type=Path, help="build the corpus here (must not exist) and keep it")
    args = parser.parse_args()
    names = [n for n in args.scanners.split(",") if n]
    unknown = set(names) - set(SCANNERS)
    if unknown:
        parser.error(f"unknown scanners: {', '.join(sorted(unknown))}")
    with tempfile.TemporaryDirectory(prefix="eval-scanners-") as tmp:
        root = args.keep or Path(tmp) / "corpus"
        doc = evaluate(root, names, quick=args.quick)
    text = report.render(doc, markdown=args.markdown)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    if args.fp_report and "workbench" in doc["present"]:
        args.fp_report.write_text(report.fp_report(doc), encoding="utf-8")
        print(f"false positives by file: {args.fp_report}", file=sys.stderr)
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
