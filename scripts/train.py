#!/usr/bin/env python
"""Train one configuration (or a Hydra multirun sweep with -m): python scripts/train.py method=synermix ..."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from synermix.cli.app import refuse, run_hydra_app
from synermix.cli.sweep import record_job, remove_empty_job_dir
from synermix.errors import Interrupted, SynerMixError

CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "configs")


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> Optional[float]:
    """Run the composed configuration in Hydra's run directory; returns final_acc (None if it failed)."""
    from synermix.run.training import run_training  # here, not at the top: --help and --cfg need no torch
    from synermix.store.rundir import ERROR

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    in_sweep = hydra_cfg.mode == RunMode.MULTIRUN
    record = {
        "config.yaml": OmegaConf.to_yaml(cfg),
        "overrides.yaml": OmegaConf.to_yaml(hydra_cfg.overrides.task),
        "hydra.yaml": OmegaConf.to_yaml({"hydra": hydra_cfg}),
    }  # Hydra's own record, written if the run trains
    try:
        summary = run_training(cfg, run_dir, record=record)  # records a failure in the run dir itself
    except Interrupted as exc:  # Ctrl-C / pre-emption stops a sweep too
        print(str(exc), file=sys.stderr)
        raise SystemExit(128 + exc.signum) from None
    except Exception as exc:
        expected = isinstance(exc, SynerMixError)
        record_job(run_dir, "failed", f"{type(exc).__name__}: {exc}")
        if in_sweep:
            remove_empty_job_dir(run_dir, Path(str(cfg.out_root)))  # a job refused before it trained leaves no folder
            print(
                f"error: {exc}" if expected else f"error: {type(exc).__name__}: {exc} (traceback in {run_dir / ERROR})",
                file=sys.stderr,
            )
            return None  # recorded; the other jobs of the sweep go on
        if expected:
            refuse(str(exc))
        print(f"error: {type(exc).__name__}: {exc} (traceback in {run_dir / ERROR})", file=sys.stderr)
        raise
    record_job(run_dir, "complete")
    return summary["final_acc"]


if __name__ == "__main__":
    run_hydra_app(main)
