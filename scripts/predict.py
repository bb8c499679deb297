#!/usr/bin/env python
"""Label images with a trained run: each file's top-k classes and their probabilities, as CSV.

    python scripts/predict.py outputs/runs/.../test_seed0 photos/ more.jpg --topk 3 --out predictions.csv

Folders are searched recursively for image files; unreadable files are listed and skipped.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def main(argv=None) -> int:
    """Parse the arguments, predict, write the CSV; a problem is one paragraph and exit code 2."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path, help="the run's directory (holding config.yaml and weights.pt)")
    parser.add_argument("inputs", type=Path, nargs="+", help="image files or folders")
    parser.add_argument("--topk", type=int, default=5, help="classes per image (default 5, at most the run's)")
    parser.add_argument("--out", type=Path, default=Path("predictions.csv"), help="the CSV to write")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers decoding the images")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument(
        "--weights",
        choices=("final", "ema"),
        default="final",
        help="the trained weights (final) or their EMA (runs trained with train.ema)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from synermix.errors import SynerMixError
    from synermix.run.training import resolve_device
    from synermix.store.io import write_text_atomic
    from synermix.use.predict import check_output, csv_text, input_files, predict
    from synermix.use.trained import load_run, run_config

    try:
        check_output(args.out, args.batch_size, args.topk, args.workers)
        files, unreadable = input_files(args.inputs)
        for path, why in unreadable:
            print(f"skipped (unreadable): {path} ({why})", file=sys.stderr)
        if not files:
            raise SynerMixError(f"No readable image file in {', '.join(map(str, args.inputs))}.")
        cfg = run_config(args.run_dir, [f"device={args.device}"])
        trained = load_run(
            args.run_dir, cfg, resolve_device(args.device, False), None if args.weights == "final" else args.weights
        )
        table = predict(trained, files, args.topk, args.batch_size, args.workers)
    except SynerMixError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        write_text_atomic(args.out, csv_text(table))
    except OSError as exc:
        print(f"error: Cannot write {args.out}: {exc}. The predictions were not saved.", file=sys.stderr)
        return 2
    print(f"{len(table)} image(s) labelled, {len(unreadable)} skipped: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
