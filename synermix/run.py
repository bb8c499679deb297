"""One training run in one run directory: build, resume, train/evaluate per epoch, write results."""
from __future__ import annotations

import logging
import os
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from torch.nn.parallel import DistributedDataParallel

from synermix.cohesion import COHESION_COLUMNS, cohesion_metrics, fixed_subsample
from synermix.config import config_differences, validate_config
from synermix.data import build_data
from synermix.distributed import DistEnv, setup_distributed, teardown_distributed
from synermix.engine import EpochProgress, evaluate, train_one_epoch
from synermix.errors import ConfigError, DatasetFormatError, Interrupted, RunError, SynerMixError
from synermix.io import save_checkpoint_atomic, save_npz_atomic, write_csv_atomic, write_json_atomic, write_text_atomic
from synermix.losses import SynerMixLoss, SynerMixObjective
from synermix.models import build_model
from synermix.sampling import SupplementedBatchSampler
from synermix.seeding import AUG, MIX, MODEL_INIT, SAMPLER, TORCH, derive_seed

log = logging.getLogger(__name__)

METRIC_COLUMNS = (
    "epoch", "lr", "train_loss", "train_loss_intra", "train_loss_inter", "eval_acc", *COHESION_COLUMNS, "epoch_seconds"
)
CHECKPOINT = "checkpoint.pt"
PREVIOUS_CHECKPOINT = "checkpoint.prev.pt"
FEATURES = "features.npz"  # final-epoch test features of the cohesion subsample
# Test hook: "EPOCH:STEP" (1-based) makes the loop stop after that step, write `paused` in the run
# dir and wait (up to 120 s, or until a stop signal) so a test can kill it at a known point.
PAUSE_ENV = "SYNERMIX_PAUSE_AT"

__all__ = ["METRIC_COLUMNS", "ConfigError", "RunError", "run_training", "resolve_device"]


def resolve_device(name: str, amp: bool) -> torch.device:
    """`auto` -> cuda if available else cpu; refuse cuda (or amp) where there is no GPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("Invalid configuration: device='cuda' but no CUDA device is available; use device=auto or device=cpu.")
    if amp and name != "cuda":
        raise ConfigError(f"Invalid configuration: amp=true needs a CUDA device, but the run uses device={name}; set amp=false.")
    return torch.device(name)


def final_accuracy(accs: List[float], average_last: int) -> Optional[float]:
    """Mean of the last `average_last` accuracies (the paper's final-epochs average)."""
    return float(np.mean(accs[-average_last:])) if accs else None


def _summary(cfg: DictConfig, rows: List[Dict[str, Any]], status: str, error: Optional[str] = None) -> Dict[str, Any]:
    accs = [r["eval_acc"] for r in rows]
    summary = {
        "status": status,
        "final_acc": final_accuracy(accs, cfg.train.average_last) if status == "complete" else None,
        "best_acc": max(accs) if accs else None,
        "last_acc": accs[-1] if accs else None,
        "epochs_completed": len(rows),
        "epochs": cfg.train.epochs,
        "average_last": cfg.train.average_last,
        "dataset": cfg.dataset.name,
        "model": cfg.model.name,
        "method": cfg.method.name,
        "intra": cfg.method.intra,
        "inter": cfg.method.inter,
        "beta": cfg.method.beta,
        "alpha": cfg.method.alpha,
        "batch_size": cfg.train.batch_size,
        "seed": cfg.seed,
        "phase": cfg.phase,
        "tag": cfg.get("run_tag", ""),
    }
    if error is not None:
        summary["error"] = error
    return summary


def _read_checkpoint(path: Path) -> Dict[str, Any]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not {"config", "metrics", "model"} <= state.keys():
        raise ValueError("not a checkpoint of this repository")
    return state


def _load_checkpoint(run_dir: Path, config: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The newest readable checkpoint of `run_dir` (falling back to the previous one), checked against `config`."""
    problems = []
    state = None
    for name in (CHECKPOINT, PREVIOUS_CHECKPOINT):
        path = run_dir / name
        if not path.exists():
            continue
        try:
            state = _read_checkpoint(path)
        except Exception as exc:  # truncated or foreign file: try the previous checkpoint
            problems.append(f"{path} is unreadable ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})")
            continue
        if problems:
            log.warning("%s; resuming from %s instead.", problems[0], path)
        break
    if state is None:
        if problems:
            raise RunError("; ".join(problems) + ". Move the run directory away to restart this run from scratch.")
        return None
    diffs = config_differences(state.get("config", {}), config)
    if diffs:
        raise RunError(
            f"The run directory {run_dir} holds a run with a different configuration, so it will not be "
            f"resumed into: {'; '.join(diffs)}. Use another hydra.run.dir (or out_root) or restore those values."
        )
    return state


def _save_checkpoint(run_dir: Path, state: Dict[str, Any]) -> None:
    """Write the new checkpoint, keeping the previous one as a fallback (each step an atomic rename)."""
    current, previous = run_dir / CHECKPOINT, run_dir / PREVIOUS_CHECKPOINT
    tmp = run_dir / f".{CHECKPOINT}.new"
    save_checkpoint_atomic(tmp, state)
    if current.exists():
        os.replace(current, previous)
    os.replace(tmp, current)


class StopFlag:
    """Set by SIGTERM/SIGINT while installed: the loop finishes its step, checkpoints and exits."""

    def __init__(self) -> None:
        self.signum: Optional[int] = None

    def __call__(self) -> bool:
        return self.signum is not None

    @contextmanager
    def installed(self):
        """Catch SIGTERM and SIGINT for the duration (main thread only; elsewhere a no-op)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return

        def handler(signum, frame):
            if self.signum is not None and signum == signal.SIGINT:
                raise KeyboardInterrupt  # a second Ctrl-C stops at once
            self.signum = signum
            log.warning("Received %s: stopping after the current step.", signal.Signals(signum).name)

        old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield self
        finally:
            for s, h in old.items():
                signal.signal(s, h)


def write_hparams(writer, hparams: Dict[str, Any]) -> None:
    """Record the run's hyper-parameters in its own TensorBoard run (HPARAMS tab: eval_acc, final_acc)."""
    from torch.utils.tensorboard.summary import hparams as hparams_summary

    for summary in hparams_summary(hparams, {"eval_acc": 0.0, "final_acc": 0.0}):
        writer.file_writer.add_summary(summary)


def _pause_point() -> Optional[tuple]:
    value = os.environ.get(PAUSE_ENV)
    if not value:
        return None
    epoch, step = value.split(":")
    return int(epoch) - 1, int(step)


def run_training(cfg: DictConfig, run_dir: Path) -> Dict[str, Any]:
    """Train and evaluate as configured, resuming from `run_dir`'s checkpoint; returns the summary.

    Raises a SynerMixError subclass (one-paragraph message) for anything the user must fix, and
    Interrupted after writing a checkpoint when SIGTERM/SIGINT arrives.
    """
    validate_config(cfg)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    env, device = setup_distributed(resolve_device(cfg.device, cfg.amp))
    if not env.is_main:
        logging.getLogger("synermix").setLevel(logging.WARNING)  # rank 0 alone reports
    try:
        return _train(cfg, run_dir, env, device)
    finally:
        teardown_distributed(env)


class _NoWriter:
    """Stands in for TensorBoard's SummaryWriter on processes other than rank 0."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def add_scalar(self, *args, **kwargs) -> None:
        """Discard."""

    def flush(self) -> None:
        """Nothing to flush."""


def _train(cfg: DictConfig, run_dir: Path, env: DistEnv, device: torch.device) -> Dict[str, Any]:
    """run_training's body, in one (of possibly several) processes; only rank 0 writes files."""
    main = env.is_main
    config = OmegaConf.to_container(cfg, resolve=True)
    state = _load_checkpoint(run_dir, config)
    if main:
        write_text_atomic(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    rows: List[Dict[str, Any]] = list(state["metrics"]) if state else []
    epochs = cfg.train.epochs
    if state and len(rows) >= epochs:
        log.info("Run %s is already complete (%d epochs); nothing to do.", run_dir, len(rows))
        summary = _summary(cfg, rows, "complete")
        if main:  # a kill between the checkpoint and the result files leaves them behind: rewrite both
            write_csv_atomic(run_dir / "metrics.csv", rows, METRIC_COLUMNS)
            write_json_atomic(run_dir / "summary.json", summary)
        return summary

    m = cfg.method
    loss_fn = SynerMixLoss(m.intra, m.inter, m.beta, m.alpha, m.lam_mode, m.num_per_class, cfg.dataset.num_classes,
                           concat_views=cfg.train.concat_views)
    try:
        data = build_data(cfg.dataset, cfg.phase, cfg.val_ratio, cfg.val_seed, device, cfg.train.num_workers,
                          with_original=loss_fn.needs_original)
    except SynerMixError:
        raise
    except ValueError as exc:
        raise ConfigError(f"Invalid configuration: {exc}") from None
    torch.manual_seed(derive_seed(cfg.seed, MODEL_INIT))
    try:
        model = build_model(cfg.model, data.num_classes, data.in_channels, data.image_size).to(device)
    except SynerMixError:
        raise
    except ValueError as exc:  # bad architecture settings
        raise ConfigError(str(exc)) from None
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=cfg.train.lr,
        momentum=cfg.train.momentum,
        weight_decay=cfg.train.weight_decay,
        nesterov=cfg.train.nesterov,
    )
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.train.step_size, gamma=cfg.train.gamma)
    try:
        sampler = SupplementedBatchSampler(
            data.train.labels_cpu.numpy(),
            cfg.train.batch_size,
            seed=derive_seed(cfg.seed, SAMPLER),
            supplement=cfg.train.supplement,
            num_replicas=env.world_size,
            rank=env.rank,
        )
    except ValueError as exc:  # a class with one training image, or a batch larger than the data
        raise RunError(f"Cannot build training batches for {cfg.dataset.name} ({cfg.phase} phase): {exc}") from None
    progress = EpochProgress()
    if state:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        progress = EpochProgress.from_state(state.get("partial"))
        log.info("Resuming %s at epoch %d, step %d.", run_dir, len(rows) + 1, progress.step)

    if cfg.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if cfg.train.compile:
        if env.enabled and loss_fn.needs_original and not cfg.train.concat_views:
            raise ConfigError(
                "Invalid configuration: train.compile=true under torchrun needs train.concat_views=true (compiled "
                "BatchNorm stages cannot run the two views' forwards before one shared backward)."
            )
        for stage in model.stages.values():
            stage.compile(dynamic=True)  # in place: parameter names, and so checkpoints, stay the same
    scaler = torch.amp.GradScaler("cuda") if cfg.amp and cfg.amp_dtype == "float16" else None
    if scaler is not None and state and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    objective: torch.nn.Module = SynerMixObjective(model, loss_fn, channels_last=cfg.train.channels_last)
    if env.enabled:
        objective = DistributedDataParallel(objective, device_ids=[device.index] if device.type == "cuda" else None)
    rank_words = (env.rank,) if env.enabled else ()  # independent draws per process; none added when alone

    def checkpoint(partial: Optional[EpochProgress]) -> None:
        if not main:
            return
        _save_checkpoint(run_dir, {
            "config": config,
            "metrics": rows,
            "partial": partial.state_dict() if partial else None,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": None if scaler is None else scaler.state_dict(),
        })

    from torch.utils.tensorboard import SummaryWriter  # imported late: slow, and only runs need it

    hparams = {
        key: OmegaConf.select(cfg, key)
        for key in ("dataset.name", "model.name", "method.name", "method.intra", "method.inter", "method.beta",
                    "method.alpha", "method.lam_mode", "method.num_per_class", "train.batch_size", "train.lr",
                    "train.epochs", "seed", "phase")
    }
    stop = StopFlag()
    pause = _pause_point()
    every = cfg.train.checkpoint_every_steps
    mix_gen = torch.Generator()
    samples = cfg.train.cohesion_samples
    keep = fixed_subsample(len(data.eval), samples) if main and samples else None
    try:
        with stop.installed(), (SummaryWriter(log_dir=str(run_dir / "tb")) if main else _NoWriter()) as writer:
            if main:
                write_hparams(writer, hparams)
            for epoch in range(len(rows), epochs):
                sampler.set_epoch(epoch)
                lr = optimizer.param_groups[0]["lr"]
                start = time.perf_counter() - progress.seconds

                def after_step(p: EpochProgress, epoch=epoch, start=start) -> None:
                    if every and p.step % every == 0 and p.step < len(sampler):
                        p.seconds = time.perf_counter() - start
                        checkpoint(p)
                    if pause == (epoch, p.step) and main:
                        (run_dir / "paused").write_text(f"{epoch + 1}:{p.step}\n")
                        deadline = time.monotonic() + 120
                        while not stop() and time.monotonic() < deadline:
                            time.sleep(0.05)

                batches = data.train.iterate(
                    sampler, derive_seed(cfg.seed, AUG, epoch, *rank_words), progress.step, loss_fn.needs_original
                )
                seeds = (derive_seed(cfg.seed, MIX, epoch, *rank_words), derive_seed(cfg.seed, TORCH, epoch, *rank_words))
                try:
                    stats = train_one_epoch(
                        objective, batches, optimizer, mix_gen, seeds, progress,
                        epoch=epoch, total=len(sampler), amp=cfg.amp, amp_dtype=cfg.amp_dtype, scaler=scaler,
                        log_interval=cfg.train.log_interval,
                        stop=stop, after_step=after_step, dist_env=env,
                    )
                except (RuntimeError, OSError) as exc:
                    if not stop() or isinstance(exc, SynerMixError):
                        raise
                    stats = None  # the signal also reached the DataLoader workers: stop at the last full step
                if stats is None:
                    progress.seconds = time.perf_counter() - start
                    checkpoint(progress)
                    name = signal.Signals(stop.signum).name
                    raise Interrupted(
                        f"Interrupted by {name} at epoch {epoch + 1}, step {progress.step} of {len(sampler)}; "
                        f"checkpoint saved in {run_dir}. Re-run the same command to resume.",
                        stop.signum,
                    )
                # Rank 0 evaluates (weights and buffers are identical across processes); the others wait
                # for it at the next step's gradient all-reduce.
                acc, feats, feat_labels = (
                    evaluate(model, data.eval, cfg.train.eval_batch_size, cfg.amp, cfg.amp_dtype,
                             cfg.train.channels_last, keep) if main else (None, None, None)
                )
                cohesion = cohesion_metrics(feats, feat_labels) if feats is not None else {}
                scheduler.step()
                row = {
                    "epoch": epoch + 1,
                    "lr": lr,
                    "train_loss": stats.loss,
                    "train_loss_intra": stats.intra,
                    "train_loss_inter": stats.inter,
                    "eval_acc": acc,
                    **cohesion,
                    "epoch_seconds": round(time.perf_counter() - start, 3),
                }
                rows.append(row)
                progress = EpochProgress()
                checkpoint(None)
                status = "complete" if epoch + 1 == epochs else "running"
                summary = _summary(cfg, rows, status) if main else {}
                if main:
                    write_csv_atomic(run_dir / "metrics.csv", rows, METRIC_COLUMNS)
                    write_json_atomic(run_dir / "summary.json", summary)
                if status == "complete" and main:
                    writer.add_scalar("final_acc", summary["final_acc"], epoch + 1)
                    if feats is not None:  # the final epoch's penultimate features, for t-SNE (Figs. 2 and 8)
                        save_npz_atomic(run_dir / FEATURES, features=feats, labels=feat_labels)
                for key in METRIC_COLUMNS[1:]:
                    if row.get(key) is not None:
                        writer.add_scalar(key if key not in COHESION_COLUMNS else f"cohesion/{key}", row[key], epoch + 1)
                writer.flush()
                intra = "" if stats.intra is None else f" intra {stats.intra:.4f}"
                inter = "" if stats.inter is None else f" inter {stats.inter:.4f}"
                log.info(
                    "[%s] epoch %d/%d lr %.4g loss %.4f%s%s %s_acc %.2f%% (%.1fs)",
                    cfg.method.name, epoch + 1, epochs, lr, stats.loss, intra, inter, cfg.phase, acc or 0.0,
                    row["epoch_seconds"],
                )
    except (RunError, DatasetFormatError) as exc:
        if main and not isinstance(exc, Interrupted):
            # Recorded in the run dir so reports flag the run; the last good checkpoint stays as it was.
            write_json_atomic(run_dir / "summary.json", _summary(cfg, rows, "failed", error=str(exc)))
        raise
    summary = _summary(cfg, rows, "complete") if main else {"final_acc": None, "status": "complete"}
    if not main:
        return summary
    log.info("[%s] final_acc (mean of last %d epochs) %.2f%%", cfg.method.name, cfg.train.average_last, summary["final_acc"])
    return summary
