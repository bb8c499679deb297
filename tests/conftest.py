"""Shared fixtures: composing the real Hydra config, and a tiny deterministic staged model."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from torch import nn

from synermix.models.staged import StagedClassifier

ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = str(ROOT / "configs")


def make_cfg(*overrides: str):
    """The config `scripts/train.py` would run with these command-line overrides."""
    with initialize_config_dir(version_base="1.3", config_dir=CONFIG_DIR):
        return compose(config_name="train", overrides=list(overrides))


@pytest.fixture
def cfg_factory():
    return make_cfg


def tiny_model(in_dim: int = 4, hidden: int = 6, feat: int = 5, classes: int = 3, seed: int = 0) -> StagedClassifier:
    """A BatchNorm-free MLP with mix points input and l1 (deterministic between forwards)."""
    torch.manual_seed(seed)
    return StagedClassifier(
        stages=[("l1", nn.Linear(in_dim, hidden)), ("act", nn.Tanh()), ("l2", nn.Linear(hidden, feat))],
        head=nn.Linear(feat, classes),
        mix_points=("input", "l1"),
    )


@pytest.fixture
def model():
    return tiny_model()
