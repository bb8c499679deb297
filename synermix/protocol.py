"""The paper's protocol (Sec. 4.1.3): pick beta on a stratified validation split, then test with N seeds."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from omegaconf import DictConfig, OmegaConf

from synermix.errors import ConfigError, Interrupted, SynerMixError
from synermix.identity import run_dir_of
from synermix.io import write_json_atomic

log = logging.getLogger(__name__)
PROTOCOL_KEYS = ("seeds", "protocol_subdir")  # keys of protocol.yaml that are not part of a run's configuration

Runner = Callable[[DictConfig, Path], Dict[str, Any]]


def run_config(cfg: DictConfig, **changes: Any) -> DictConfig:
    """The training configuration of one protocol step: `cfg` without the protocol keys, with `changes`
    (dotted keys) applied — exactly what `scripts/train.py` composes for the same overrides."""
    sub = OmegaConf.masked_copy(cfg, [k for k in cfg.keys() if k not in PROTOCOL_KEYS])
    for key, value in changes.items():
        OmegaConf.update(sub, key, value, merge=False)
    return sub


def select_beta(val_acc: Dict[float, Optional[float]], grid: Sequence[float]) -> float:
    """The beta with the best final validation accuracy (the first in grid order on a tie; failed runs skipped)."""
    scored = [(val_acc[b], -i, b) for i, b in enumerate(grid) if val_acc.get(b) is not None]
    if not scored:
        raise SynerMixError("Every validation run of the beta grid failed; see error.txt in their run directories.")
    return max(scored)[2]


def attempt(runner: Runner, cfg: DictConfig) -> Optional[Dict[str, Any]]:
    """Run one step; a failure (recorded in its run dir by run_training) is reported, not fatal to the protocol."""
    run_dir = run_dir_of(cfg)
    try:
        return runner(cfg, run_dir)
    except Interrupted:
        raise
    except SynerMixError as exc:
        log.error("%s failed: %s", run_dir, exc)
        return None


def run_protocol(cfg: DictConfig, runner: Runner, out_dir: Path) -> Dict[str, Any]:
    """Validate every beta of `method.beta_grid` (phase=val, seed `seed`), then test the best one with
    seeds seed .. seed+seeds-1 (phase=test). Finished runs are reused, unfinished ones resumed."""
    seeds = cfg.seeds
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise ConfigError(f"Invalid configuration: seeds={seeds!r} is invalid: it must be an integer >= 1.")
    grid: List[float] = list(cfg.method.get("beta_grid") or [])
    val_acc: Dict[float, Optional[float]] = {}
    if grid:
        for beta in grid:
            summary = attempt(runner, run_config(cfg, **{"phase": "val", "method.beta": beta}))
            val_acc[beta] = None if summary is None else summary["final_acc"]
            log.info("validation: beta=%s final_acc=%s", beta, val_acc[beta])
        beta = select_beta(val_acc, grid)
    else:
        beta = cfg.method.beta  # no intra-class term: nothing to select
    log.info("chosen beta for %s: %s", cfg.method.name, beta)
    tests = []
    for seed in range(cfg.seed, cfg.seed + seeds):
        sub = run_config(cfg, **{"phase": "test", "method.beta": beta, "seed": seed})
        summary = attempt(runner, sub)
        tests.append({"seed": seed, "final_acc": None if summary is None else summary["final_acc"],
                      "run_dir": str(run_dir_of(sub))})
    accs = [t["final_acc"] for t in tests if t["final_acc"] is not None]
    result = {
        "dataset": cfg.dataset.name, "model": cfg.model.name, "method": cfg.method.name,
        "batch_size": cfg.train.batch_size, "beta_grid": grid,
        "val_final_acc": {str(b): a for b, a in val_acc.items()}, "chosen_beta": beta, "test": tests,
        "test_final_acc_mean": sum(accs) / len(accs) if accs else None,
        "n_failed": sum(t["final_acc"] is None for t in tests) + sum(a is None for a in val_acc.values()),
    }
    write_json_atomic(Path(out_dir) / "protocol.json", result)
    return result
