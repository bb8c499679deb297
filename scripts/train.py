#!/usr/bin/env python
"""Train one configuration (or a Hydra multirun sweep with -m): python scripts/train.py method=synermix ..."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from synermix.errors import Interrupted, SynerMixError
from synermix.sweep import record_job

CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "configs")


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> Optional[float]:
    """Run the composed configuration in Hydra's run directory; returns final_acc (None if it failed)."""
    from synermix.run import run_training  # here, not at the top: --help and --cfg need no torch
    from synermix.rundir import ERROR

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    in_sweep = hydra_cfg.mode == RunMode.MULTIRUN
    try:
        summary = run_training(cfg, run_dir)  # records a failure in the run dir itself
    except Interrupted as exc:  # Ctrl-C / pre-emption stops a sweep too
        print(str(exc), file=sys.stderr)
        raise SystemExit(128 + exc.signum) from None
    except Exception as exc:
        expected = isinstance(exc, SynerMixError)
        record_job(run_dir, "failed", f"{type(exc).__name__}: {exc}")
        print(f"error: {exc}" if expected else f"error: {type(exc).__name__}: {exc} (traceback in {run_dir / ERROR})",
              file=sys.stderr)
        if in_sweep:
            return None  # recorded; the other jobs of the sweep go on
        if expected:
            raise SystemExit(2) from None
        raise
    record_job(run_dir, "complete")
    return summary["final_acc"]


if __name__ == "__main__":
    main()
