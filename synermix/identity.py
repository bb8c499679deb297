"""What identifies a run (the summary's keys, TensorBoard's hyper-parameters, the report's grouping) and
where its directory is: the one place that names them."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

from omegaconf import DictConfig, OmegaConf

# summary.json / report column -> config key. Everything but `seed` groups runs in the report.
IDENTITY_KEYS: Dict[str, str] = {
    "dataset": "dataset.name",
    "model": "model.name",
    "method": "method.name",
    "intra": "method.intra",
    "inter": "method.inter",
    "beta": "method.beta",
    "alpha": "method.alpha",
    "lam_mode": "method.lam_mode",
    "num_per_class": "method.num_per_class",
    "batch_size": "train.batch_size",
    "lr": "train.lr",
    "epochs": "train.epochs",
    "seed": "seed",
    "phase": "phase",
    "tag": "run_tag",
}


def run_identity(cfg: DictConfig) -> Dict[str, Any]:
    """The identifying values of the run `cfg` describes, keyed as in summary.json (missing keys are None)."""
    values = {name: OmegaConf.select(cfg, key, default=None) for name, key in IDENTITY_KEYS.items()}
    values["tag"] = values["tag"] or ""
    return values


def run_dir_of(cfg: DictConfig) -> Path:
    """The run directory of `cfg` (out_root/run_subdir): what scripts/train.py, the protocol and figures use."""
    return Path(cfg.out_root) / cfg.run_subdir


def protocol_dir_of(cfg: DictConfig) -> Path:
    """Where scripts/protocol.py writes protocol.json for a protocol config (out_root/protocol_subdir)."""
    return Path(cfg.out_root) / cfg.protocol_subdir
