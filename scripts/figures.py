#!/usr/bin/env python
"""Reproduce paper figures: python scripts/figures.py fig5 [fig7 ...|all|mixers] [--scale smoke|cpu|paper] [--out DIR].

Each figure trains (or reuses, or resumes) the runs it needs, then writes DIR/figN.png and DIR/figN.csv
(the exact numbers plotted). `--plan` prints the training commands instead, to run them on a cluster
first (e.g. with hydra/launcher=slurm); re-running the figure afterwards only reads their results.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from synermix.errors import Interrupted, SynerMixError
from synermix.results.figures.driver import FIGURES, TARGETS, make_figure
from synermix.results.figures.spec import SCALES


def main(argv=None) -> int:
    """Make the named figures; exit 1 if any of their runs failed, 2 on bad input."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "figures",
        nargs="+",
        choices=[*TARGETS, "all"],
        help="which figures ('all': every paper figure; mixers: the table across mixers)",
    )
    parser.add_argument("--scale", choices=SCALES, default="cpu", help="smoke | cpu | paper (default cpu)")
    parser.add_argument("--out", type=Path, default=Path("outputs/figures"), help="where figN.png/csv go")
    parser.add_argument("--runs", type=Path, default=None, help="run folder (default: the scale's `runs:`)")
    parser.add_argument(
        "--data-root",
        type=Path,
        default=None,
        help="read each dataset from DATA_ROOT/<name> (e.g. /data/cifar100); paper scale",
    )
    parser.add_argument("--plan", action="store_true", help="print the training commands; train and draw nothing")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    names = list(FIGURES) if "all" in args.figures else list(dict.fromkeys(args.figures))
    failed = []
    if not args.plan:
        from synermix.store.io import check_writable

        try:  # before any run trains: a figure computed and then lost to an unwritable --out helps no one
            check_writable(args.out, "the figures", "Choose another --out.")
        except SynerMixError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    for name in names:
        try:
            runs = make_figure(name, args.scale, args.out, args.runs, plan=args.plan, data_root=args.data_root)
        except Interrupted as exc:
            print(str(exc), file=sys.stderr)
            return 128 + exc.signum
        except SynerMixError as exc:
            print(f"error: {name}: {exc}", file=sys.stderr)
            return 2
        if args.plan:
            for command in dict.fromkeys(runs.commands if runs else []):
                print(command)
            continue
        if runs and runs.failures:
            failed.append(name)
            print(
                f"{name}: {len(runs.failures)} run(s) failed (see error.txt in): " + ", ".join(runs.failures),
                file=sys.stderr,
            )
        if runs and runs.table:
            print(runs.table)
        print(f"{name}: {args.out / (name + '.png')} and {args.out / (name + '.csv')}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
