"""Run one corpus case in a process of its own and report its peak memory: ``run_case.py CASE OUT [--fifo REL]``.

The test runs bombs and hangs here, not in its own process: a bomb that is not bounded exhausts this child (its
address space is capped at 8 GiB as a last guard for the machine), a hang is cut by the test's timeout. With
``--fifo REL`` custody is taken first, then the file ``REL`` is replaced by a FIFO that nobody writes (an attacker
swapping evidence after intake), then the run reuses the ledger. Prints one JSON object: ``peak_rss_mib`` and
``error`` (the exception raised by the run, if any).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
from pathlib import Path

GUARD_BYTES = 8 << 30


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("case", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--fifo", default=None)
    args = parser.parse_args()
    resource.setrlimit(resource.RLIMIT_AS, (GUARD_BYTES, GUARD_BYTES))

    from workbench import custody
    from workbench.case import Case
    from workbench.investigation import Investigation

    error = None
    try:
        if args.fifo:
            custody.intake(Case.open(args.case), args.out)
            target = args.case / args.fifo
            target.unlink()
            os.mkfifo(target)
        Investigation.open(args.case, args.out)
    except Exception as exc:  # noqa: BLE001 - reported to the test, which decides
        error = f"{type(exc).__name__}: {exc}"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_rss_mib": round(peak, 1), "error": error}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
