"""One training run in one run directory: build, resume, train/evaluate per epoch, write results."""
from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from synermix.config import ConfigError, config_differences, validate_config
from synermix.data import DatasetFormatError, DatasetNotFound, build_data
from synermix.engine import evaluate, train_one_epoch
from synermix.io import save_checkpoint_atomic, write_csv_atomic, write_json_atomic, write_text_atomic
from synermix.losses import SynerMixLoss
from synermix.models import build_model
from synermix.sampling import SupplementedBatchSampler

log = logging.getLogger(__name__)

METRIC_COLUMNS = ("epoch", "lr", "train_loss", "train_loss_intra", "train_loss_inter", "eval_acc", "epoch_seconds")
CHECKPOINT = "checkpoint.pt"


class RunError(RuntimeError):
    """The run cannot continue; the message says why and what to do."""


def derive_seed(seed: int, *words: int) -> int:
    """A 63-bit seed for one random stream, derived from the run seed (one seed drives everything)."""
    return int(np.random.SeedSequence([seed, *words]).generate_state(1, dtype=np.uint64)[0] >> 1)


# Stream identifiers for derive_seed.
_MODEL_INIT, _SAMPLER, _TORCH, _MIX, _AUG = range(5)


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


def _summary(cfg: DictConfig, rows: List[Dict[str, Any]], status: str) -> Dict[str, Any]:
    accs = [r["eval_acc"] for r in rows]
    return {
        "status": status,
        "final_acc": final_accuracy(accs, cfg.train.average_last),
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
    }


def _load_checkpoint(path: Path, config: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The checkpoint at `path` if any, after checking it belongs to this exact configuration."""
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a corrupt file must not pass for a fresh start
        raise RunError(
            f"The checkpoint {path} cannot be read ({type(exc).__name__}: {exc}); move it away to restart this run from scratch."
        ) from None
    diffs = config_differences(state.get("config", {}), config)
    if diffs:
        raise RunError(
            f"The run directory {path.parent} holds a run with a different configuration, so it will not be "
            f"resumed into: {'; '.join(diffs)}. Use another hydra.run.dir (or out_root) or restore those values."
        )
    return state


def run_training(cfg: DictConfig, run_dir: Path) -> Dict[str, Any]:
    """Train and evaluate as configured, resuming from `run_dir/checkpoint.pt`; returns the summary."""
    validate_config(cfg)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.device, cfg.amp)
    config = OmegaConf.to_container(cfg, resolve=True)
    write_text_atomic(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))

    state = _load_checkpoint(run_dir / CHECKPOINT, config)
    rows: List[Dict[str, Any]] = list(state["metrics"]) if state else []
    epochs = cfg.train.epochs
    if state and len(rows) >= epochs:
        log.info("Run %s is already complete (%d epochs); nothing to do.", run_dir, len(rows))
        # A kill between the checkpoint and the result files leaves them one epoch behind: rewrite both.
        write_csv_atomic(run_dir / "metrics.csv", rows, METRIC_COLUMNS)
        summary = _summary(cfg, rows, "complete")
        write_json_atomic(run_dir / "summary.json", summary)
        return summary

    m = cfg.method
    loss_fn = SynerMixLoss(m.intra, m.inter, m.beta, m.alpha, m.lam_mode, m.num_per_class, cfg.dataset.num_classes)
    try:
        data = build_data(cfg.dataset, cfg.phase, cfg.val_ratio, cfg.val_seed, device, cfg.train.num_workers,
                          with_original=loss_fn.needs_original)
    except (DatasetNotFound, DatasetFormatError) as exc:
        raise RunError(str(exc)) from None
    except ValueError as exc:
        raise ConfigError(f"Invalid configuration: {exc}") from None
    torch.manual_seed(derive_seed(cfg.seed, _MODEL_INIT))
    try:
        model = build_model(cfg.model, data.num_classes, data.in_channels, data.image_size).to(device)
    except ValueError as exc:  # WeightsError and bad architecture settings: already one clear paragraph
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
            seed=derive_seed(cfg.seed, _SAMPLER),
            supplement=cfg.train.supplement,
        )
    except ValueError as exc:  # a class with one training image, or a batch larger than the data
        raise RunError(f"Cannot build training batches for {cfg.dataset.name} ({cfg.phase} phase): {exc}") from None
    if state:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        log.info("Resuming %s from epoch %d of %d.", run_dir, len(rows), epochs)

    from torch.utils.tensorboard import SummaryWriter  # imported late: slow, and only runs need it

    mix_gen = torch.Generator()
    aug_gen = torch.Generator(device=data.train.generator_device)
    with SummaryWriter(log_dir=str(run_dir / "tb")) as writer:
        for epoch in range(len(rows), epochs):
            # Every stream is re-seeded from (seed, epoch): a resumed run draws what an uninterrupted one would.
            torch.manual_seed(derive_seed(cfg.seed, _TORCH, epoch))
            mix_gen.manual_seed(derive_seed(cfg.seed, _MIX, epoch))
            aug_gen.manual_seed(derive_seed(cfg.seed, _AUG, epoch))
            sampler.set_epoch(epoch)
            lr = optimizer.param_groups[0]["lr"]
            start = time.perf_counter()
            batches = data.train.iterate(sampler, aug_gen, with_original=loss_fn.needs_original)
            stats = train_one_epoch(
                model, batches, loss_fn, optimizer, mix_gen, cfg.amp, desc=f"epoch {epoch + 1}/{epochs}",
                total=len(sampler),
            )
            if not math.isfinite(stats.loss):
                raise RunError(
                    f"Non-finite training loss at epoch {epoch + 1} (total={stats.loss}, intra={stats.intra}, "
                    f"inter={stats.inter}); the last good checkpoint in {run_dir} is kept. Lower train.lr or check the data."
                )
            acc = evaluate(model, data.eval, cfg.train.eval_batch_size, cfg.amp)
            scheduler.step()
            row = {
                "epoch": epoch + 1,
                "lr": lr,
                "train_loss": stats.loss,
                "train_loss_intra": stats.intra,
                "train_loss_inter": stats.inter,
                "eval_acc": acc,
                "epoch_seconds": round(time.perf_counter() - start, 3),
            }
            rows.append(row)
            for key in ("lr", "train_loss", "train_loss_intra", "train_loss_inter", "eval_acc", "epoch_seconds"):
                if row[key] is not None:
                    writer.add_scalar(key, row[key], epoch + 1)
            writer.flush()
            save_checkpoint_atomic(
                run_dir / CHECKPOINT,
                {
                    "config": config,
                    "metrics": rows,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                },
            )
            write_csv_atomic(run_dir / "metrics.csv", rows, METRIC_COLUMNS)
            status = "complete" if epoch + 1 == epochs else "running"
            write_json_atomic(run_dir / "summary.json", _summary(cfg, rows, status))
            intra = "" if stats.intra is None else f" intra {stats.intra:.4f}"
            inter = "" if stats.inter is None else f" inter {stats.inter:.4f}"
            log.info(
                "[%s] epoch %d/%d lr %.4g loss %.4f%s%s %s_acc %.2f%% (%.1fs)",
                cfg.method.name, epoch + 1, epochs, lr, stats.loss, intra, inter, cfg.phase, acc, row["epoch_seconds"],
            )
    summary = _summary(cfg, rows, "complete")
    log.info("[%s] final_acc (mean of last %d epochs) %.2f%%", cfg.method.name, cfg.train.average_last, summary["final_acc"])
    return summary
