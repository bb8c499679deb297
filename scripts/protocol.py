#!/usr/bin/env python
"""The paper's protocol: select beta on a 10% stratified validation split, then test it with N seeds.

python scripts/protocol.py dataset=... model=... method=synermix train.batch_size=32 seeds=3
python scripts/protocol.py ... search=optuna optuna.n_trials=12   (a resumable TPE study instead of the grid)
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from synermix.cli.app import refuse, run_hydra_app
from synermix.errors import Interrupted, SynerMixError
from synermix.results.protocol import RESULT_FILES, run_protocol
from synermix.run.training import run_training

CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "configs")


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="protocol")
def main(cfg: DictConfig) -> None:
    """Run the protocol, print the chosen beta and the test accuracies; exit 1 if any run failed."""
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        result = run_protocol(cfg, run_training, out_dir)
    except Interrupted as exc:
        print(str(exc), file=sys.stderr)
        raise SystemExit(128 + exc.signum) from None
    except SynerMixError as exc:
        refuse(str(exc))

    def shown(acc) -> str:
        return "failed" if acc is None else f"{acc:.2f}"

    for beta, acc in result["val_final_acc"].items():
        print(f"val   beta={beta:<5} final_acc={shown(acc)}")
    print(f"chosen beta: {result['chosen_beta']}" + (f", alpha: {result['chosen_alpha']}" if cfg.optuna.alpha else ""))
    for test in result["test"]:
        print(f"test  seed={test['seed']:<3} final_acc={shown(test['final_acc'])}")
    print(
        f"test mean final_acc over {len(result['test'])} seed(s): {shown(result['test_final_acc_mean'])}"
        f"  ({out_dir / RESULT_FILES[result['search']]})"
    )
    if result["n_failed"]:
        raise SystemExit(1)


if __name__ == "__main__":
    run_hydra_app(main)
