#!/usr/bin/env python
"""Reproduce a paper figure: python scripts/figures.py fig1 [--scale smoke|cpu|paper] [--out outputs/figures]."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from synermix.figures import fig1

FIGURES = {"fig1": fig1.make}


def main(argv=None) -> int:
    """Make the named figures (PNG + CSV of the plotted numbers)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("figures", nargs="+", choices=sorted(FIGURES), help="which figures")
    parser.add_argument("--scale", choices=("smoke", "cpu", "paper"), default="cpu")
    parser.add_argument("--out", type=Path, default=Path("outputs/figures"))
    args = parser.parse_args(argv)
    for name in args.figures:
        FIGURES[name](args.out, args.scale)
        print(f"{name}: {args.out / (name + '.png')} and {args.out / (name + '.csv')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
