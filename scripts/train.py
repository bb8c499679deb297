#!/usr/bin/env python
"""Train one configuration (or a Hydra multirun sweep with -m): python scripts/train.py method=synermix ..."""
from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from synermix.errors import Interrupted, SynerMixError
from synermix.io import write_text_atomic
from synermix.run import run_training

CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "configs")


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> float:
    """Run the composed configuration in Hydra's run directory; returns final_acc (for sweepers)."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    (run_dir / "error.txt").unlink(missing_ok=True)  # a previous attempt's failure no longer applies
    try:
        summary = run_training(cfg, run_dir)
    except Interrupted as exc:
        print(str(exc), file=sys.stderr)
        raise SystemExit(128 + exc.signum) from None
    except SynerMixError as exc:
        # A clear one-paragraph message, not a traceback from deep inside the code; kept in the run dir too.
        write_text_atomic(run_dir / "error.txt", f"{type(exc).__name__}: {exc}\n")
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return summary["final_acc"]


if __name__ == "__main__":
    main()
