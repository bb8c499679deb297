"""Evaluate a trained run on its own evaluation split or another data set, and write eval/<name>/ in its directory:
metrics.json (top-1, top-5, ECE, NLL), per_class.csv, confusion.csv/.png and reliability.png."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Dict, List, Sequence

import numpy as np
import pandas as pd

from synermix.config.checks import NAME
from synermix.data import Loading, build_eval_data
from synermix.errors import ConfigError
from synermix.store.io import check_writable, spreadsheet_safe, write_json_atomic, write_text_atomic
from synermix.store.rundir import RunDir
from synermix.train.distributed import export_task_environment, setup_distributed, teardown_distributed
from synermix.train.evaluation import Evaluation, evaluate
from synermix.use.plots import plot_confusion, plot_reliability
from synermix.use.trained import TrainedRun, load_run, run_config

log = logging.getLogger(__name__)


def evaluation_name(cfg, overrides: Sequence[str]) -> str:
    """eval/<name>: the phase evaluated, then the overrides (as one safe folder name) when there are any."""
    if not overrides:
        return str(cfg.phase)
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", "_".join(overrides)).strip("_.")[:100]


def check_same_classes(run_classes: List[str], data_classes: List[str], where: str) -> None:
    """Refuse data whose classes are not the run's, in their order (the model's outputs would mean other classes)."""
    if list(run_classes) == list(data_classes):
        return
    missing = [c for c in run_classes if c not in data_classes]
    extra = [c for c in data_classes if c not in run_classes]
    detail = (
        (f"missing there: {missing[:20]}" if missing else "")
        + ("; " if missing and extra else "")
        + (f"not in the run: {extra[:20]}" if extra else "")
    )
    raise ConfigError(
        f"The classes of {where} differ from the {len(run_classes)} classes the run was trained on "
        f"({detail or 'the same names in another order'}). Evaluate on data with exactly the run's classes "
        f"({', '.join(run_classes[:10])}{', ...' if len(run_classes) > 10 else ''})."
    )


def per_class_table(confusion: np.ndarray, classes: Sequence[str]) -> pd.DataFrame:
    """Per class: support (images), correct, accuracy (%; empty without images), precision and recall (%)."""
    support, correct, predicted = confusion.sum(axis=1), np.diag(confusion), confusion.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(support > 0, 100.0 * correct / support, np.nan)
        precision = np.where(predicted > 0, 100.0 * correct / predicted, np.nan)
    return pd.DataFrame(
        {
            "class_index": np.arange(len(classes)),
            "class": list(classes),
            "support": support,
            "correct": correct,
            "accuracy": recall,
            "precision": precision,
        }
    )


def write_evaluation(out: Path, result: Evaluation, trained: TrainedRun, about: Dict[str, Any]) -> Dict[str, Any]:
    """metrics.json, per_class.csv, confusion.csv, confusion.png and reliability.png in `out`; returns the metrics."""
    classes = trained.classes
    if result.confusion is None or result.calibration is None:
        raise ValueError("write_evaluation needs an evaluate() result (its confusion counts and calibration sums)")
    metrics = {
        "top1": result.accuracy,
        "top5": result.top5,
        "ece": result.ece,
        "nll": result.nll,
        "samples": int(result.confusion.sum()),
        "classes": len(classes),
        "weights": trained.weights,
        **about,
    }
    write_json_atomic(out / "metrics.json", metrics)
    cells = [spreadsheet_safe(c) for c in classes]  # the CSVs open safely in a spreadsheet
    write_text_atomic(out / "per_class.csv", per_class_table(result.confusion, cells).to_csv(index=False))
    matrix = pd.DataFrame(result.confusion, index=pd.Index(cells, name="true \\ predicted"), columns=cells)
    write_text_atomic(out / "confusion.csv", matrix.to_csv())
    title = f"{trained.cfg.method.name} on {about['dataset']} ({about['split']}): top-1 {result.accuracy:.2f}%"
    plot_confusion(result.confusion, classes, out / "confusion.png", title)
    count, confidence, correct, _ = (t.cpu().numpy() for t in result.calibration.sums())
    plot_reliability(count, confidence, correct, result.ece, out / "reliability.png", title)
    return metrics


def _loading(cfg, train, env) -> Loading:
    """How the evaluation reads the phase's evaluation split: the run's batch size and workers, this process's part."""
    return Loading(
        cfg.phase,
        float(cfg.val_ratio),
        int(cfg.val_seed),
        eval_batch_size=int(train.eval_batch_size),
        num_workers=int(train.num_workers),
        world_size=env.world_size,
        rank=env.rank,
    )


def _log_evaluation(run_dir: Path, metrics: Dict[str, Any], out: Path) -> None:
    """One line: the evaluation's numbers and where they were written."""
    top5 = "" if metrics["top5"] is None else f", top-5 {metrics['top5']:.2f}%"
    log.info(
        "%s: top-1 %.2f%%%s, ECE %.4f, NLL %.4f on %d images; written to %s",
        run_dir,
        metrics["top1"],
        top5,
        metrics["ece"],
        metrics["nll"],
        metrics["samples"],
        out,
    )


def evaluate_run(
    run_dir: Path, overrides: Sequence[str] = (), name: str | None = None, averaged: str | None = None
) -> Path:
    """Evaluate the run in `run_dir` (its trained weights, or with `averaged="ema"` their EMA; under torchrun: each
    process its part, the numbers of one process) and write eval/<name>/ there; returns that folder."""
    # on use: the composition root imports every layer; --help does not need it
    from synermix.run.training import resolve_device

    export_task_environment()
    if name is not None and not NAME.match(name):
        raise ConfigError(
            f"--name {name!r} is invalid: it names one folder under {run_dir}/eval, so it must "
            "be a single path component (letters, digits and _ . + -, not starting with . or -)."
        )
    cfg = run_config(run_dir, overrides)
    default = evaluation_name(cfg, overrides) + (f"_{averaged}" if averaged else "")
    check_writable(
        RunDir(Path(run_dir)).evaluation_dir(name or default),
        "the evaluation",
        "Make the run directory writable (or evaluate a copy of it).",
    )
    env, device = setup_distributed(resolve_device(cfg.device, cfg.amp))
    try:
        trained = load_run(run_dir, cfg, device, averaged)
        stream, splits = build_eval_data(cfg.dataset, _loading(cfg, trained.cfg.train, env), device)
        where = f"dataset {cfg.dataset.name}" + (
            f" at dataset.root={cfg.dataset.root}" if cfg.dataset.get("root") else ""
        )
        check_same_classes(trained.classes, splits.classes, where)
        result = evaluate(trained.model, stream, cfg.amp, cfg.amp_dtype, dist_env=env)
        out = trained.rundir.evaluation_dir(name or default)
        split = "validation split" if cfg.phase == "val" else "test split"
        about = {
            "dataset": str(cfg.dataset.name),
            "root": cfg.dataset.get("root"),
            "split": split,
            "overrides": list(overrides),
            "processes": env.world_size,
        }
        if env.is_main:
            _log_evaluation(run_dir, write_evaluation(out, result, trained, about), out)
        return out
    finally:
        teardown_distributed(env)
