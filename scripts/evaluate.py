#!/usr/bin/env python
"""Evaluate a trained run: top-1, top-5, ECE, NLL, per-class accuracy, confusion matrix and reliability diagram,
written to RUN_DIR/eval/<name>/. On the run's own evaluation split, or on other data given as overrides:

    python scripts/evaluate.py outputs/runs/.../test_seed0
    python scripts/evaluate.py outputs/runs/.../test_seed0 dataset.root=/data/flowers-v2
    torchrun --nproc_per_node=4 scripts/evaluate.py outputs/runs/.../test_seed0   (the same numbers)
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def main(argv=None) -> int:
    """Parse the arguments, evaluate, print where the results are; a problem is one paragraph and exit code 2."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path, help="the run's directory (holding config.yaml and weights.pt)")
    parser.add_argument(
        "overrides",
        nargs="*",
        help="key=value for the data: dataset.*, phase, val_ratio, "
        "train.eval_batch_size, train.num_workers, device, amp",
    )
    parser.add_argument("--name", help="the folder under RUN_DIR/eval (default: the phase, or the overrides)")
    parser.add_argument(
        "--weights",
        choices=("final", "ema"),
        default="final",
        help="the trained weights (final) or their EMA (runs trained with train.ema)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from synermix.errors import SynerMixError
    from synermix.use.evaluate import evaluate_run

    try:
        out = evaluate_run(args.run_dir, args.overrides, args.name, None if args.weights == "final" else args.weights)
    except SynerMixError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
