#!/usr/bin/env python
"""Performance figures (make bench: python -m benchmarks.run): loader, step, epoch overhead, accuracy parity, CUDA throughput."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks.sections import run_all


def main(argv=None) -> int:
    """Run every benchmark section, print the table, write it as CSV; exit 1 if a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("outputs/bench/benchmark.csv"), help="CSV to write")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the benchmark runs, not the targets")
    args = parser.parse_args(argv)
    rows = run_all(quick=args.quick, out_csv=args.out)
    missed = [r for r in rows if r.passed is False]
    print(f"\n{sum(r.passed is True for r in rows)} target(s) met, {len(missed)} missed; table in {args.out}")
    for r in missed:
        print(f"  missed: {r.section} / {r.name}: {r.value:.3f} {r.unit} (ratio {r.ratio}) target {r.target}")
    return 1 if missed and not args.quick else 0


if __name__ == "__main__":
    sys.exit(main())
