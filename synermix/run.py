"""One training run in one run directory: build, resume, then per epoch train / evaluate / step / record."""
from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import torch
from omegaconf import DictConfig, OmegaConf

from synermix.cohesion import cohesion_metrics, fixed_subsample
from synermix.components import build_components
from synermix.config import validate_config
from synermix.data import build_data
from synermix.distributed import export_task_environment, setup_distributed, teardown_distributed
from synermix.engine import EpochProgress, EpochStats, Evaluation, check_finite_state, evaluate, train_one_epoch
from synermix.errors import ConfigError, Interrupted, RunError, SynerMixError
from synermix.hooks import Hook, Hooks, LoopState, PeriodicCheckpoint, StopFlag, hooks_from_config
from synermix.identity import freeze_data_fingerprint, run_identity
from synermix.losses import SynerMixLoss
from synermix.models import build_model
from synermix.rundir import METRIC_COLUMNS, RunDir, UntouchedRunDir, final_accuracy, output_error
from synermix.seeding import RunSeeds

log = logging.getLogger(__name__)

__all__ = ["METRIC_COLUMNS", "ConfigError", "RunError", "final_accuracy", "resolve_device", "run_training"]


def resolve_device(name: str, amp: bool) -> torch.device:
    """`auto` -> cuda if available else cpu; refuse cuda where there is no GPU, and amp where torch has no autocast."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("Invalid configuration: device='cuda' but no CUDA device is available; use device=auto or device=cpu.")
    device = torch.device(name)
    if amp and not torch.amp.is_autocast_available(device.type):
        raise ConfigError(f"Invalid configuration: amp=true but torch has no autocast for device={name}; set amp=false.")
    return device


def run_training(cfg: DictConfig, run_dir: Path, hooks: Sequence[Hook] = ()) -> Dict[str, Any]:
    """Train and evaluate as configured in `run_dir` (resuming it; a finished run is returned as it is).

    Returns the summary. Raises a SynerMixError subclass (one paragraph) for anything the user must fix,
    recorded in the run dir first, and Interrupted after a checkpoint when SIGTERM/SIGINT/SIGUSR2 arrives.
    """
    export_task_environment()  # a job's tasks without torchrun: RANK, WORLD_SIZE from SLURM's/submitit's
    rundir = RunDir(run_dir, is_main=int(os.environ.get("RANK", "0")) == 0)
    freeze_data_fingerprint(cfg)
    with rundir.recording_failures():
        validate_config(cfg)
        rundir.attach(cfg)
    _log_shortened_average(cfg)
    try:
        with rundir.locked(), rundir.recording_failures():  # recorded before the lock is let go
            return _run_locked(cfg, rundir, hooks)
    except OSError as exc:
        error = output_error(exc, rundir.path)
        if error is None:
            raise
        raise error from None


def _log_shortened_average(cfg: DictConfig) -> None:
    """Say so when the dataset's default train.average_last was cut to a shorter run's train.epochs."""
    train = cfg.train
    default = train.get("default_average_last")
    if OmegaConf.is_interpolation(train, "average_last") and default is not None and train.average_last < default:
        log.info("train.average_last: the default %d is more than train.epochs=%d; final_acc averages all %d epochs",
                 default, train.epochs, train.average_last)


def _run_locked(cfg: DictConfig, rundir: RunDir, hooks: Sequence[Hook]) -> Dict[str, Any]:
    """run_training's body, holding the run directory: skip a finished run, else set up and train."""
    done = rundir.completed_summary()
    if done is not None:
        log.info("Run %s is already complete (%d epochs); nothing to do.", rundir.path, done["epochs_completed"])
        if rundir.missing_features():
            try:
                _repair_features(cfg, rundir, resolve_device(cfg.device, cfg.amp))
            except SynerMixError as exc:
                raise UntouchedRunDir(f"{rundir.path} is complete, but its missing features.npz could not be "
                                      f"recomputed: {exc} The run's files were left as they are.") from None
        return done
    env, device = setup_distributed(resolve_device(cfg.device, cfg.amp))
    if not env.is_main:
        logging.getLogger("synermix").setLevel(logging.WARNING)  # rank 0 alone reports
    try:
        hooks = [PeriodicCheckpoint(cfg.train.checkpoint_every_steps), *hooks_from_config(cfg.get("hooks")), *hooks]
        return _train(cfg, rundir, RunSeeds(cfg.seed, env.rank, env.enabled), env, device, hooks)
    finally:
        teardown_distributed(env)


def _train(cfg: DictConfig, rundir: RunDir, seeds: RunSeeds, env, device, hooks) -> Dict[str, Any]:
    """The run itself, in one (of possibly several) processes: config -> data -> model -> loss -> loop -> rundir."""
    state = rundir.load()
    loss_fn = SynerMixLoss.from_cfg(cfg.method, cfg.dataset.num_classes, cfg.train.concat_views,
                                    cfg.train.get("label_smoothing", 0.0), cfg.train.get("view_order", "original_first"))
    data = build_data(cfg, device, seeds, loss_fn.needs_original, env.world_size, env.rank)
    loss_fn.num_classes = data.num_classes  # image_folder with num_classes null counts its class folders
    parts = build_components(cfg, data, loss_fn, seeds, device, env, state)
    progress = EpochProgress.from_state(state.get("partial") if state else None)
    if state:
        log.info("Resuming %s at epoch %d, step %d.", rundir.path, len(rundir.rows) + 1, progress.step)
    hooks, stop, mix_gen = Hooks(hooks), StopFlag(), torch.Generator()

    def save(p: EpochProgress) -> None:  # a mid-epoch checkpoint (hooks, stop signals); never of NaN weights
        check_finite_state(parts.model, p, loop.epoch)
        rundir.save_checkpoint(parts.state_dict(), p.state_dict())

    loop = LoopState(rundir, parts.model, len(data.train), stop, save)
    samples = cfg.train.cohesion_samples
    keep = fixed_subsample(len(data.eval), samples) if samples else None
    with stop.installed(), rundir.session(run_identity(cfg)):
        for epoch in range(len(rundir.rows), cfg.train.epochs):
            lr, loop.epoch, loop.progress = parts.lr, epoch, progress
            loop.epoch_start = time.perf_counter() - progress.seconds
            stats = _train_epoch(parts, data.train.epoch(epoch, progress.step), mix_gen, seeds, loop, hooks, cfg, env)
            if stats is None:
                raise _interrupted(loop)
            # Every process evaluates its part of the evaluation set (weights are identical across processes).
            result = evaluate(parts.model, data.eval, cfg.amp, cfg.amp_dtype, keep, env)
            parts.scheduler.step()
            check_finite_state(parts.model, progress, epoch)
            row = _epoch_row(epoch, lr, stats, result, loop.elapsed())
            rundir.end_epoch(row, parts.state_dict(), _kept_features(result))
            _log_epoch(cfg, row, stats)
            hooks.after_epoch(loop)
            progress = EpochProgress()
        summary = rundir.finish(parts.model.state_dict())
        hooks.after_train(loop)
    if env.is_main:
        log.info("[%s] final_acc (mean of last %d epochs) %.2f%%", cfg.method.name, cfg.train.average_last,
                 summary["final_acc"])
    return summary


def _repair_features(cfg: DictConfig, rundir: RunDir, device: torch.device) -> None:
    """Recompute a finished run's final evaluation features from its final weights (a file lost since)."""
    log.warning("%s is complete but lacks its final features; recomputing them from the final weights.", rundir.path)
    data = build_data(cfg, device, RunSeeds(cfg.seed), with_original=False)
    model = build_model(cfg.model, data.num_classes, data.in_channels, data.image_size).to(device)
    model.load_state_dict(rundir.final_weights())
    keep = fixed_subsample(len(data.eval), cfg.train.cohesion_samples)
    result = evaluate(model, data.eval, cfg.amp, cfg.amp_dtype, keep)
    rundir.write_features({"features": result.features, "labels": result.labels})


def _train_epoch(parts, batches, mix_gen, seeds, loop: LoopState, hooks: Hooks, cfg, env) -> Optional[EpochStats]:
    """One epoch of training steps (None when a stop signal ended it early; loop.progress says where)."""
    try:
        return train_one_epoch(
            parts.objective, batches, parts.optimizer, mix_gen, seeds, loop.progress,
            epoch=loop.epoch, total=loop.steps_per_epoch, amp=cfg.amp, amp_dtype=cfg.amp_dtype, scaler=parts.scaler,
            log_interval=cfg.train.log_interval, stop=loop.stop, after_step=lambda p: hooks.after_step(loop),
            dist_env=env,
        )
    except (RuntimeError, OSError) as exc:
        if not loop.stop() or isinstance(exc, SynerMixError):
            raise
        return None  # the signal also reached the DataLoader workers: stop at the last full step


def _interrupted(loop: LoopState) -> Interrupted:
    """Checkpoint the partial epoch and say how to resume."""
    loop.progress.seconds = loop.elapsed()
    loop.save(loop.progress)
    name = signal.Signals(loop.stop.signum).name
    return Interrupted(
        f"Interrupted by {name} at epoch {loop.epoch + 1}, step {loop.progress.step} of {loop.steps_per_epoch}; "
        f"checkpoint saved in {loop.run_dir.path}. Re-run the same command to resume.",
        loop.stop.signum,
    )


def _epoch_row(epoch: int, lr: float, stats: EpochStats, result: Optional[Evaluation], seconds: float) -> Dict[str, Any]:
    """metrics.csv's row of one epoch (no evaluation columns without an evaluation result)."""
    evaluated = {} if result is None else {"eval_acc": result.accuracy, "eval_ece": result.ece, "eval_nll": result.nll}
    cohesion = {} if result is None or result.features is None else cohesion_metrics(result.features, result.labels)
    return {
        "epoch": epoch + 1, "lr": lr, "train_loss": stats.loss, "train_loss_intra": stats.intra,
        "train_loss_inter": stats.inter, "eval_acc": None, **evaluated, **cohesion, "epoch_seconds": round(seconds, 3),
    }


def _kept_features(result: Optional[Evaluation]) -> Optional[Dict[str, Any]]:
    """features.npz's arrays from an evaluation that kept features (else None)."""
    if result is None or result.features is None:
        return None
    return {"features": result.features, "labels": result.labels}


def _log_epoch(cfg: DictConfig, row: Dict[str, Any], stats: EpochStats) -> None:
    """One log line per epoch."""
    intra = "" if stats.intra is None else f" intra {stats.intra:.4f}"
    inter = "" if stats.inter is None else f" inter {stats.inter:.4f}"
    log.info(
        "[%s] epoch %d/%d lr %.4g loss %.4f%s%s %s_acc %.2f%% ece %.4f nll %.4f (%.1fs)",
        cfg.method.name, row["epoch"], cfg.train.epochs, row["lr"], stats.loss, intra, inter, cfg.phase,
        row["eval_acc"] or 0.0, row.get("eval_ece") or 0.0, row.get("eval_nll") or 0.0, row["epoch_seconds"],
    )
