#!/usr/bin/env python
"""Print (and save as CSV + Markdown) the table of final accuracies of every run under a folder."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from synermix.io import write_text_atomic
from synermix.results import format_table, load_summaries, summarize


def main(argv=None) -> int:
    """Collect summaries under ROOT, print the table, write ROOT/results.csv and ROOT/results.md."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root", type=Path, help="folder holding run directories (e.g. outputs/runs)")
    args = parser.parse_args(argv)
    if not args.root.is_dir():
        print(f"error: {args.root} is not a folder; pass the out_root of your runs (e.g. outputs/runs).", file=sys.stderr)
        return 2
    runs = load_summaries(args.root)
    if runs.empty:
        print(f"error: no summary.json under {args.root}; train something first (python scripts/train.py).", file=sys.stderr)
        return 2
    table = summarize(runs)
    view = format_table(table)
    write_text_atomic(args.root / "results.csv", table.to_csv(index=False))
    write_text_atomic(args.root / "results.md", view.to_markdown(index=False) + "\n")
    print(view.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
