#!/usr/bin/env python
"""Tabulate every run under a folder: final accuracy (mean ± std over seeds) per configuration, flags for
missing/failed/incomplete runs, and SynerMix's gains over its components (Sec. 4.2.3)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from synermix.errors import SynerMixError
from synermix.results.report import format_gains, format_table, gains, load_summaries, summarize, unattributed_failures
from synermix.store.io import check_writable, write_text_atomic


def main(argv=None) -> int:
    """Print the tables and write ROOT/results.{csv,md} and ROOT/gains.{csv,md}."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root", type=Path, help="folder holding run directories (e.g. outputs/runs)")
    args = parser.parse_args(argv)
    if not args.root.is_dir():
        print(
            f"error: {args.root} is not a folder; pass the out_root of your runs (e.g. outputs/runs).", file=sys.stderr
        )
        return 2
    try:
        check_writable(
            args.root,
            "the tables (results.csv, results.md, gains.csv, gains.md)",
            "Make the folder writable, or tabulate a copy of it.",
        )
    except SynerMixError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    runs = load_summaries(args.root)
    if runs.empty:
        print(
            f"error: no summary.json under {args.root}; train something first (python scripts/train.py).",
            file=sys.stderr,
        )
        return 2
    table = summarize(runs)
    view = format_table(table)
    seeds = table["seed_accs"].map(lambda accs: ";".join(f"{s}:{a!r}" for s, a in sorted(accs.items())))
    write_text_atomic(args.root / "results.csv", table.assign(seed_accs=seeds).to_csv(index=False))
    write_text_atomic(args.root / "results.md", view.to_markdown(index=False) + "\n")
    print(view.to_string(index=False) if len(view) else f"No run under {args.root} got far enough to be tabulated.")
    gain_table = gains(table)
    if not gain_table.empty:
        write_text_atomic(args.root / "gains.csv", gain_table.to_csv(index=False))
        gains_view = format_gains(gain_table)
        write_text_atomic(args.root / "gains.md", gains_view.to_markdown(index=False, floatfmt=".2f") + "\n")
        print(
            "\nSynerMix vs its components (test phase, accuracy points; paired by seed: mean difference "
            "[95% CI] paired t-test p, * p < 0.05, n/a below two pairs):"
        )
        print(gains_view.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    failures = unattributed_failures(runs)
    if not failures.empty:
        print("\nRuns that failed before writing a summary, or whose summary.json is unreadable:")
        for row in failures.itertuples(index=False):
            print(f"  {row.run_dir}: {row.error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
