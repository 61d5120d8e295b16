"""A chaos run by hand: `python -m tests.chaos --seconds 1800 --seed 7 [--port-base 21700]`.

Prints each fault as it happens and the report at the end (also report.txt / report.json in the
run directory); exit status 0 only when every check passed. Set HUILIU_TEST_RESTART_DB=0 on a
machine whose PostgreSQL and Redis others are using: those two are then not restarted.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from tests.chaos.run import ChaosRun


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=1800, help="length of the load with faults")
    ap.add_argument("--seed", type=int, default=7, help="seed of the fault schedule and the load")
    ap.add_argument("--rate", type=int, default=60, help="new source rows per second")
    ap.add_argument("--port-base", type=int, default=21700, help="first port of the run's own stack")
    ap.add_argument("--dir", type=Path, default=None, help="run directory (default: a new temp dir)")
    args = ap.parse_args()
    run_dir = args.dir or Path(tempfile.mkdtemp(prefix="huiliu-chaos-"))
    report = ChaosRun(run_dir, args.port_base, args.seconds, args.seed, args.rate).run()
    print(report.text())
    print(f"run directory: {run_dir}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
