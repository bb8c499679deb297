"""The trainable parts of a run (model, objective, optimizer, schedule, loss scaler), built from the config."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Dict, Optional

import torch
from omegaconf import DictConfig
from torch.nn.parallel import DistributedDataParallel

from synermix.data import DataBundle
from synermix.distributed import DistEnv
from synermix.errors import ConfigError
from synermix.losses import SynerMixLoss, SynerMixObjective
from synermix.models import StagedClassifier, build_model
from synermix.seeding import RunSeeds

log = logging.getLogger(__name__)


@dataclass
class Components:
    """What a training step updates, and what a checkpoint saves of it."""

    model: StagedClassifier
    objective: torch.nn.Module  # SynerMixObjective, wrapped in DistributedDataParallel under torchrun
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: Optional[torch.amp.GradScaler]

    def state_dict(self) -> Dict[str, Any]:
        """The resume state of model, optimizer, scheduler and scaler."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": None if self.scaler is None else self.scaler.state_dict(),
        }

    @property
    def lr(self) -> float:
        """The learning rate of the coming step."""
        return self.optimizer.param_groups[0]["lr"]


def build_components(cfg: DictConfig, data: DataBundle, loss_fn: SynerMixLoss, seeds: RunSeeds,
                     device: torch.device, env: DistEnv, state: Optional[Dict[str, Any]] = None) -> Components:
    """Model (initialised from the run seed), SGD + StepLR, the objective; then `state` (a checkpoint) loaded."""
    torch.manual_seed(seeds.model_init())
    model = build_model(cfg.model, data.num_classes, data.in_channels, data.image_size).to(device)
    t = cfg.train
    optimizer = torch.optim.SGD(model.parameters(), lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay,
                                nesterov=t.nesterov)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=t.step_size, gamma=t.gamma)
    if state:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
    if t.sync_bn:
        model = _sync_batchnorm(model, device, env)
    if t.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if t.compile:  # under torchrun only with concat_views (config.py checks it)
        for stage in (model.stages.values() if hasattr(model, "stages") else [model.net]):  # timm: the whole net
            stage.compile(dynamic=True)  # in place: parameter names, and so checkpoints, stay the same
    scaler = torch.amp.GradScaler(device.type) if cfg.amp and cfg.amp_dtype == "float16" else None
    if scaler is not None and state and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    objective: torch.nn.Module = SynerMixObjective(model, loss_fn)
    if env.enabled:
        objective = DistributedDataParallel(objective, device_ids=[device.index] if device.type == "cuda" else None)
    return Components(model, objective, optimizer, scheduler, scaler)


def _sync_batchnorm(model: torch.nn.Module, device: torch.device, env: DistEnv) -> torch.nn.Module:
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
