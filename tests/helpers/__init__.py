"""Test helpers: composing the real Hydra config, a tiny deterministic model, dataset writers, hooks."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from torch import nn

from synermix.models.staged import StagedClassifier

ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = str(ROOT / "configs")
TESTS = ROOT / "tests"


def make_cfg(*overrides: str):
    """The config `scripts/train.py` would run with these command-line overrides."""
    with initialize_config_dir(version_base="1.3", config_dir=CONFIG_DIR):
        return compose(config_name="train", overrides=list(overrides))


def tiny_model(in_dim: int = 4, hidden: int = 6, feat: int = 5, classes: int = 3, seed: int = 0) -> StagedClassifier:
    """A BatchNorm-free MLP with mix points input and l1 (deterministic between forwards)."""
    torch.manual_seed(seed)
    return StagedClassifier(
        stages=[("l1", nn.Linear(in_dim, hidden)), ("act", nn.Tanh()), ("l2", nn.Linear(hidden, feat))],
        head=nn.Linear(feat, classes),
        mix_points=("input", "l1"),
    )


def hook_override(name: str, target: str, **kwargs) -> str:
    """A command-line override adding `hooks.<name>` (a class of tests/helpers/hooks.py) to a run."""
    args = "".join(f",{k}:{v!r}" if isinstance(v, str) else f",{k}:{v}" for k, v in kwargs.items())
    return f"+hooks.{name}={{_target_:helpers.hooks.{target}{args}}}"


def metrics_without_time(run_dir):
    """metrics.csv rows without the wall-clock column (what must be identical across resumes)."""
    with open(Path(run_dir) / "metrics.csv") as f:
        return [{k: v for k, v in row.items() if k != "epoch_seconds"} for row in csv.DictReader(f)]


def wait_for(path, proc, timeout=120):
    """Wait until `path` exists (a PauseAt hook's marker) while the process `proc` is alive."""
    deadline = time.monotonic() + timeout
    while not Path(path).exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run never reached the pause point"
        time.sleep(0.05)


def write_summary(
    root: Path, method: str, seed: int, acc, status="complete", beta=0.1, bs=32, phase="test", **identity
) -> None:
    """A hand-made run directory under `root` holding only summary.json (for the result tables' tests)."""
    d = root / f"{method}_bs{bs}_b{beta}_{phase}{''.join(f'_{k}{v}' for k, v in identity.items())}" / f"seed{seed}"
    d.mkdir(parents=True)
    summary = dict(
        dataset="digits",
        model="m",
        batch_size=bs,
        method=method,
        beta=beta,
        phase=phase,
        seed=seed,
        final_acc=acc if status == "complete" else None,
        status=status,
        **identity,
    )
    (d / "summary.json").write_text(json.dumps(summary))


class MemoryStore:
    """A Trainer's checkpoint store that keeps every checkpoint in a list (`saved`) instead of a run directory."""

    path = None

    def __init__(self) -> None:
        self.saved: list = []

    def save_checkpoint(self, state: dict) -> None:
        """Keep `state`."""
        self.saved.append(state)
