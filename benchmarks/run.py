#!/usr/bin/env python
"""Performance figures (make bench: python -m benchmarks.run): loader, steps, epoch overhead, file loader, accuracy
parity,
CUDA throughput; every timed figure is a median with its min and max over repetitions."""

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
    parser.add_argument(
        "--sections",
        nargs="+",
        metavar="NAME",
        help="only these sections (loader, 'step cifar_resnet', 'step resnet18', epoch, files, accuracy, cuda)",
    )
    args = parser.parse_args(argv)
    rows = run_all(quick=args.quick, out_csv=args.out, only=args.sections)
    missed = [r for r in rows if r.passed is False]
    print(f"\n{sum(r.passed is True for r in rows)} target(s) met, {len(missed)} missed; table in {args.out}")
    for r in missed:
        spread = "" if r.ratio is None else f" (ratio {r.ratio:.3f}, min {r.ratio_low:.3f}, max {r.ratio_high:.3f})"
        print(f"  missed: {r.section} / {r.name}: {r.value:.3f} {r.unit}{spread}; target {r.target}")
    return 1 if missed and not args.quick else 0


if __name__ == "__main__":
    sys.exit(main())
