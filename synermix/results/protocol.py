"""The paper's protocol (Sec. 4.1.3): pick beta on a stratified validation split, then test with N seeds."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from omegaconf import DictConfig, OmegaConf

from synermix.config.checks import Check, is_int, one_of, problems
from synermix.config.identity import PROTOCOL_KEYS, run_dir_of
from synermix.errors import ConfigError, Interrupted, SynerMixError
from synermix.store.io import write_json_atomic

log = logging.getLogger(__name__)
SEARCHES = ("grid", "optuna")
RESULT_FILES = {"grid": "protocol.json", "optuna": "protocol_optuna.json"}  # both searches share a protocol dir
OPTUNA_DB = "optuna.db"
SEARCHED = {"beta": "method.beta", "alpha": "method.alpha"}  # optuna.<name> -> the config key it searches

Runner = Callable[[DictConfig, Path], Dict[str, Any]]
PROTOCOL_CHECKS = (
    Check("seeds", lambda v: is_int(v) and v >= 1, "an integer >= 1"),
    Check("search", one_of(SEARCHES), f"one of {', '.join(SEARCHES)}", optional=True),
)


def protocol_problems(cfg: DictConfig) -> List[str]:
    """What is wrong with the protocol's own keys (seeds, search); the training keys are validate_config's."""
    return problems(cfg, PROTOCOL_CHECKS)


def run_config(cfg: DictConfig, **changes: Any) -> DictConfig:
    """The training configuration of one protocol step: `cfg` without the protocol keys, with `changes`
    (dotted keys) applied — exactly what `scripts/train.py` composes for the same overrides."""
    sub = OmegaConf.masked_copy(cfg, [str(k) for k in cfg.keys() if k not in PROTOCOL_KEYS])
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


def grid_search(cfg: DictConfig, runner: Runner, grid: Sequence[float]) -> Tuple[Dict[float, Optional[float]], float]:
    """The paper's search: a validation run per beta of `grid`; the best final_acc wins."""
    val_acc: Dict[float, Optional[float]] = {}
    for beta in grid:
        summary = attempt(runner, run_config(cfg, **{"phase": "val", "method.beta": beta}))
        val_acc[beta] = None if summary is None else summary["final_acc"]
        log.info("validation: beta=%s final_acc=%s", beta, val_acc[beta])
    return val_acc, select_beta(val_acc, grid)


def optuna_search(
    cfg: DictConfig, runner: Runner, out_dir: Path
) -> Tuple[Dict[float, Optional[float]], Dict[str, float]]:
    """A TPE study (seeded by `seed`) of `optuna.n_trials` validation runs over log-uniform `optuna.beta`
    (and `optuna.alpha` when given), stored in out_dir/optuna.db: re-running resumes it. Returns the
    validation accuracy per beta tried and the best trial's parameters."""
    import optuna  # optuna: only the Optuna search
    from optuna.trial import TrialState  # optuna: only the Optuna search

    # optuna: only the Optuna search
    from synermix.results.search import completed_trials, open_study, resume, sqlite_url

    space = {key: cfg.optuna.get(name) for name, key in SEARCHED.items()}
    space = {key: bounds for key, bounds in space.items() if bounds is not None or key == "method.beta"}
    for key, bounds in space.items():
        if not (OmegaConf.is_list(bounds) and len(bounds) == 2 and 0 < bounds[0] < bounds[1]):
            raise ConfigError(
                f"Invalid configuration: optuna.{key.split('.')[-1]}={bounds!r} is invalid: it must be "
                "[low, high] with 0 < low < high (searched log-uniformly)."
            )
    study = open_study(sqlite_url(Path(out_dir) / OPTUNA_DB), "protocol")
    # a resumed study gets a sampler seeded past its trials: seed alone would repeat the first suggestions
    study.sampler = optuna.samplers.TPESampler(seed=cfg.seed + len(study.trials))
    for _ in range(resume(study, cfg.optuna.n_trials)):
        trial = study.ask()
        params = {
            key: trial.suggest_float(key, float(low), float(high), log=True) for key, (low, high) in space.items()
        }
        summary = attempt(runner, run_config(cfg, phase="val", **params))
        if summary is None:
            study.tell(trial, state=TrialState.FAIL)
        else:
            study.tell(trial, summary["final_acc"])
        log.info("validation trial %d: %s final_acc=%s", trial.number, params, summary and summary["final_acc"])
    trials = completed_trials(study)
    if not trials:
        raise SynerMixError(
            f"Every validation trial of the Optuna study in {out_dir / OPTUNA_DB} failed; see "
            "error.txt in their run directories."
        )
    return {t.params["method.beta"]: t.value for t in trials}, dict(study.best_params)


def run_protocol(cfg: DictConfig, runner: Runner, out_dir: Path) -> Dict[str, Any]:
    """Validate beta (`search=grid`: every beta of `method.beta_grid`; `search=optuna`: a resumable study),
    phase=val with seed `seed`, then test the best with seeds seed .. seed+seeds-1 (phase=test). Finished runs
    are reused, unfinished ones resumed. Writes protocol.json (grid) or protocol_optuna.json to `out_dir`."""
    seeds, search = cfg.seeds, cfg.get("search", "grid")
    found = protocol_problems(cfg)
    if found:
        raise ConfigError("Invalid configuration: " + "; ".join(found) + ".")
    grid: List[float] = list(cfg.method.get("beta_grid") or [])
    val_acc: Dict[float, Optional[float]] = {}
    chosen = {"method.beta": cfg.method.beta}  # no intra-class term: nothing to select
    if grid and search == "optuna":
        val_acc, chosen = optuna_search(cfg, runner, out_dir)
    elif grid:
        val_acc, chosen["method.beta"] = grid_search(cfg, runner, grid)
    log.info("chosen for %s: %s", cfg.method.name, chosen)
    tests: List[Dict[str, Any]] = []
    for seed in range(cfg.seed, cfg.seed + seeds):
        sub = run_config(cfg, **{"phase": "test", "seed": seed, **chosen})
        summary = attempt(runner, sub)
        tests.append(
            {
                "seed": seed,
                "final_acc": None if summary is None else summary["final_acc"],
                "run_dir": str(run_dir_of(sub)),
            }
        )
    accs = [t["final_acc"] for t in tests if t["final_acc"] is not None]
    result = {
        "dataset": cfg.dataset.name,
        "model": cfg.model.name,
        "method": cfg.method.name,
        "batch_size": cfg.train.batch_size,
        "search": search,
        "beta_grid": grid,
        "val_final_acc": {str(b): a for b, a in val_acc.items()},
        "chosen_beta": chosen["method.beta"],
        "chosen_alpha": chosen.get("method.alpha", cfg.method.alpha),
        "test": tests,
        "test_final_acc_mean": sum(accs) / len(accs) if accs else None,
        "n_failed": sum(1 for t in tests if t["final_acc"] is None) + sum(1 for a in val_acc.values() if a is None),
    }
    write_json_atomic(Path(out_dir) / RESULT_FILES[search], result)
    return result
