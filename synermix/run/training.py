"""One training run in one run directory: build, resume, then per epoch train / evaluate / step / record."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import torch
from omegaconf import DictConfig, OmegaConf

from synermix.config.identity import freeze_data_fingerprint, run_identity
from synermix.data import Loading, build_data
from synermix.errors import ConfigError, RunError, SynerMixError
from synermix.method.intra import GlobalIntra, LocalIntra
from synermix.method.loss import SynerMixLoss, uses_original_view
from synermix.method.mixers.schedule import scheduled_mixer
from synermix.models import build_model
from synermix.models.normalization import resolve_auto_normalization
from synermix.run.recording import EpochRecorder
from synermix.run.summary import final_accuracy, run_summary
from synermix.run.trackers import TrackedRun, Tracking
from synermix.run.validation import validate_config
from synermix.seeding import RunSeeds
from synermix.store.rundir import RunDir, UntouchedRunDir, output_error
from synermix.train.cohesion import fixed_subsample
from synermix.train.distributed import export_task_environment, setup_distributed, teardown_distributed
from synermix.train.ema import WeightEma
from synermix.train.evaluation import evaluate
from synermix.train.hooks import Hook, MixingEpoch, PeriodicCheckpoint, hooks_from_config
from synermix.train.metrics import (
    BUILT_IN_COLUMNS as METRIC_COLUMNS,
)
from synermix.train.metrics import (
    AveragedEvaluation,
    EpochTime,
    EvaluationMetric,
    Losses,
    Metric,
    metrics_from_config,
)
from synermix.train.recipes import build_optimizer, build_scheduler
from synermix.train.trainer import Trainer, TrainOptions

log = logging.getLogger(__name__)

__all__ = ["METRIC_COLUMNS", "ConfigError", "RunError", "final_accuracy", "resolve_device", "run_training"]


def resolve_device(name: str, amp: bool) -> torch.device:
    """`auto` -> cuda if available else cpu; refuse cuda where there is no GPU, and amp where torch has no autocast."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "Invalid configuration: device='cuda' but no CUDA device is available; use device=auto or device=cpu."
        )
    device = torch.device(name)
    if amp and not torch.amp.is_autocast_available(device.type):
        raise ConfigError(
            f"Invalid configuration: amp=true but torch has no autocast for device={name}; set amp=false."
        )
    return device


def run_training(
    cfg: DictConfig, run_dir: Path, hooks: Sequence[Hook] = (), record: Optional[Dict[str, str]] = None
) -> Dict[str, Any]:
    """Train and evaluate as configured in `run_dir` (resuming it; a finished run is returned as it is).

    `record`: files for `.hydra/` (name -> text: the command's composed config and overrides), written when the
    run trains. Returns the summary. Raises a SynerMixError subclass (one paragraph) for anything the user must
    fix: an invalid config before anything is written, a failure while training recorded in the run dir first;
    and Interrupted after a checkpoint when SIGTERM/SIGINT/SIGUSR2 arrives.
    """
    export_task_environment()  # a job's tasks without torchrun: RANK, WORLD_SIZE from SLURM's/submitit's
    rundir = RunDir(run_dir, is_main=int(os.environ.get("RANK", "0")) == 0, record=record)
    freeze_data_fingerprint(cfg)
    resolve_auto_normalization(cfg)
    validate_config(cfg)  # refused before the run directory is touched: no error.txt in a finished run
    rundir.attach(cfg)
    _log_shortened_average(cfg)
    try:
        with rundir.locked(), rundir.recording_failures(lambda error: _failed_summary(cfg, error)):  # before unlocking
            return _run_locked(cfg, rundir, hooks)
    except OSError as exc:
        error = output_error(exc, rundir.path)
        if error is None:
            raise
        raise error from None


def _failed_summary(cfg: DictConfig, error: str) -> Dict[str, Any]:
    """summary.json of a run that failed with `error` (the run directory keeps the progress it had)."""
    return run_summary([], list(METRIC_COLUMNS), cfg, "failed", error)


def _log_shortened_average(cfg: DictConfig) -> None:
    """Say so when the dataset's default train.average_last was cut to a shorter run's train.epochs."""
    train = cfg.train
    default = train.get("default_average_last")
    if OmegaConf.is_interpolation(train, "average_last") and default is not None and train.average_last < default:
        log.info(
            "train.average_last: the default %d is more than train.epochs=%d; final_acc averages all %d epochs",
            default,
            train.epochs,
            train.average_last,
        )


def _skip_caveat(cfg: DictConfig) -> str:
    """What deciding "complete" by the config did not check: an image folder's files by content."""
    if cfg.dataset.get("fingerprint") is None:
        return ""
    return (
        f" (dataset.fingerprint={cfg.dataset.fingerprint} covers each image's path and byte size, not its "
        "content: an image replaced by another of the same size is not noticed; delete summary.json there to "
        "train the run again)"
    )


def _run_locked(cfg: DictConfig, rundir: RunDir, hooks: Sequence[Hook]) -> Dict[str, Any]:
    """run_training's body, holding the run directory: skip a finished run, else set up and train."""
    done = rundir.completed_summary()
    if done is not None:
        log.info(
            "Run %s is already complete (%d epochs); nothing to do.%s",
            rundir.path,
            done["epochs_completed"],
            _skip_caveat(cfg),
        )
        if rundir.missing_weights():
            log.warning(
                "%s is complete, but its weights.pt is missing, so evaluate.py and predict.py have nothing to "
                "use: restore it from a copy, or delete %s and re-run this command to train the run again.",
                rundir.path,
                rundir.path / "summary.json",
            )
        if rundir.missing_features():
            try:
                _repair_features(cfg, rundir, resolve_device(cfg.device, cfg.amp))
            except SynerMixError as exc:
                raise UntouchedRunDir(
                    f"{rundir.path} is complete, but its missing features.npz could not be "
                    f"recomputed: {exc} The run's files were left as they are."
                ) from None
        return done
    env, device = setup_distributed(resolve_device(cfg.device, cfg.amp))
    if not env.is_main:
        logging.getLogger("synermix").setLevel(logging.WARNING)  # rank 0 alone reports
    try:
        hooks = [*hooks_from_config(cfg.get("hooks")), *hooks]
        return _train(cfg, rundir, RunSeeds(cfg.seed, env.rank, env.enabled), env, device, hooks)
    finally:
        teardown_distributed(env)


def _train(cfg: DictConfig, rundir: RunDir, seeds: RunSeeds, env, device, hooks) -> Dict[str, Any]:
    """The run itself, in one (of possibly several) processes: data -> model -> loss -> trainer -> rundir.
    The metrics come first (the built-in ones, then `metrics` of the config); then the built-in hooks (the recipe's,
    mid-epoch checkpoints, the recorder, the trackers), then `hooks`."""
    state = rundir.load()
    method = cfg.method
    data = build_data(cfg.dataset, loading_of(cfg, env), device, seeds, uses_original_view(method.intra, method.beta))
    loss = build_loss(method, cfg.train, data.num_classes, env)
    model, optimizer, (scheduler, per_step) = build_training(cfg, data, seeds, device, env)
    recipe = recipe_hooks(cfg.train, model, loss)
    averaged = {h.state_key: h.module for h in recipe if isinstance(h, WeightEma)}
    metrics = [*built_in_metrics(cfg, data.eval, env, averaged), *metrics_from_config(cfg.get("metrics"))]
    recorder = EpochRecorder(rundir, cfg, averaged)
    tracking = Tracking.from_config(cfg.get("logger"), recorder, rundir, env.is_main)
    t = cfg.train
    options = TrainOptions(seeds, cfg.amp, cfg.amp_dtype, t.log_interval, env, t.get("clip_grad_norm"), per_step)
    built_in = [*recipe, PeriodicCheckpoint(t.checkpoint_every_steps), recorder, tracking]
    trainer = Trainer(model, loss, optimizer, scheduler, options, [*built_in, *hooks], metrics, store=rundir)
    rundir.start(data.classes)
    with rundir.logging_to_file():
        if state:
            trainer.load_state_dict(state)
            log.info("Resuming %s at epoch %d, step %d.", rundir.path, trainer.epoch + 1, trainer.step)
        with tracking.session(tracked_run(cfg, rundir), trainer.metrics.rows):  # it logs epochs its trackers missed
            trainer.train(data.train, cfg.train.epochs)
    summary = recorder.summary or {}  # set once the last epoch is recorded
    if env.is_main:
        log.info(
            "[%s] final_acc (mean of last %d epochs) %.2f%%",
            cfg.method.name,
            cfg.train.average_last,
            summary["final_acc"],
        )
    return summary


def built_in_metrics(cfg: DictConfig, eval_stream, env, averaged: Dict[str, torch.nn.Module]) -> List[Metric]:
    """The metrics every run records, in metrics.csv's column order: the losses, the evaluation (with the cohesion
    of train.cohesion_samples evaluation images), the epoch's seconds, then each averaged model's evaluation."""
    n = cfg.train.cohesion_samples
    keep = fixed_subsample(len(eval_stream), n) if n else None
    evaluation = EvaluationMetric(eval_stream, cfg.amp, cfg.amp_dtype, keep, env, cfg.train.epochs)
    return [
        Losses(),
        evaluation,
        EpochTime(),
        *(
            AveragedEvaluation(name, module, eval_stream, cfg.amp, cfg.amp_dtype, env)
            for name, module in averaged.items()
        ),
    ]


def tracked_run(cfg: DictConfig, rundir: RunDir) -> TrackedRun:
    """What the trackers are told: the run's name is its directory's place under out_root (its identity)."""
    path = rundir.path.resolve()
    root = Path(str(cfg.out_root)).resolve()
    name = str(path.relative_to(root)) if root in path.parents else str(path)
    return TrackedRun(name, rundir.path, rundir.config, run_identity(cfg))


def recipe_hooks(train: DictConfig, model: torch.nn.Module, loss: SynerMixLoss) -> list:
    """The recipe's hooks: the EMA of the weights (train.ema) and the loss's mixing schedule, where configured."""
    hooks: List[Hook] = []
    ema = train.get("ema") or {}
    if ema.get("decay") is not None:
        hooks.append(WeightEma(model, ema["decay"], ema.get("every", 1)))
    if callable(getattr(loss.mixer, "set_epoch", None)):
        hooks.append(MixingEpoch(loss.mixer))
    return hooks


def loading_of(cfg: DictConfig, env=None) -> Loading:
    """How the run reads its data (synermix.data.Loading) from its config and, under torchrun, its process."""
    t = cfg.train
    place = {} if env is None else {"world_size": env.world_size, "rank": env.rank}
    return Loading(
        cfg.phase,
        float(cfg.val_ratio),
        int(cfg.val_seed),
        int(t.batch_size),
        bool(t.supplement),
        int(t.eval_batch_size),
        int(t.num_workers),
        bool(t.channels_last),
        **place,
    )


def build_loss(method: DictConfig, train: DictConfig, num_classes: Optional[int], env) -> SynerMixLoss:
    """The loss a `method` config group describes, with the run's label smoothing and view order; under torchrun
    its L_intra is computed over the global batch."""
    smoothing = train.get("label_smoothing", 0.0)
    intra = (GlobalIntra if env.enabled else LocalIntra)(method.num_per_class, num_classes, smoothing)
    mixer = scheduled_mixer(method)
    return SynerMixLoss(
        method.intra,
        mixer,
        method.beta,
        method.num_per_class,
        num_classes,
        smoothing,
        train.get("view_order", "original_first"),
        intra_term=intra,
    )


def build_training(cfg: DictConfig, data, seeds: RunSeeds, device: torch.device, env):
    """Model (initialised from the run seed; SyncBatchNorm, channels_last, compiled stages as configured), the
    optimizer and (scheduler, steps per iteration?) of the recipe (synermix.train.recipes; Table 1 by default)."""
    torch.manual_seed(seeds.model_init())
    model: Any = build_model(cfg.model, data.num_classes, data.in_channels, data.image_size).to(device)
    t = cfg.train
    optimizer = build_optimizer(model, t)
    scheduler = build_scheduler(optimizer, t, len(data.train))
    if t.sync_bn:
        model = _sync_batchnorm(model, device, env)
    if t.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if t.compile:  # not under torchrun with two views (config.py checks it)
        for stage in model.stages.values() if hasattr(model, "stages") else [model.net]:  # timm: the whole net
            stage.compile(dynamic=True)  # in place: parameter names, and so checkpoints, stay the same
    return model, optimizer, scheduler


def _sync_batchnorm(model: torch.nn.Module, device: torch.device, env) -> torch.nn.Module:
    """train.sync_bn: BatchNorm layers normalise over the global batch under torchrun on CUDA."""
    if device.type != "cuda":
        raise ConfigError(
            f"Invalid configuration: train.sync_bn=true needs CUDA devices (torch's SyncBatchNorm runs only on "
            f"CUDA), but the run uses device={device.type}; set train.sync_bn=false."
        )
    if not env.enabled:
        log.info("train.sync_bn=true: a single process already normalises over the whole batch; nothing converted.")
        return model
    return torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)


def _repair_features(cfg: DictConfig, rundir: RunDir, device: torch.device) -> None:
    """Recompute a finished run's final evaluation features from its final weights (a file lost since)."""
    log.warning("%s is complete but lacks its final features; recomputing them from the final weights.", rundir.path)
    data = build_data(cfg.dataset, loading_of(cfg), device, RunSeeds(cfg.seed), with_original=False)
    model = build_model(cfg.model, data.num_classes, data.in_channels, data.image_size).to(device)
    model.load_state_dict(rundir.final_weights())
    keep = fixed_subsample(len(data.eval), cfg.train.cohesion_samples)
    result = evaluate(model, data.eval, cfg.amp, cfg.amp_dtype, keep)
    if result.features is not None and result.labels is not None:
        rundir.write_features({"features": result.features, "labels": result.labels})
