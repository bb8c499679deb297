"""The benchmarks' shared workloads: CIFAR-format random data and the paper's models, built and seeded alike."""

from __future__ import annotations

from typing import Tuple

import numpy as np
import torch
from omegaconf import OmegaConf

from synermix.models import build_model

CIFAR_MEAN, CIFAR_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def cifar_format_data(n: int = 10_000, num_classes: int = 100, seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Random uint8 images (n, 3, 32, 32) and balanced labels: CIFAR's format and size, no download."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), np.arange(n) % num_classes


def model_of(name: str, num_classes: int, in_channels: int, size: int, device, seed: int = 0):
    """The model `name` for the data's classes, channels and size, initialised from `seed`, on `device`."""
    cfg = {
        "name": name,
        "pretrained": False,
        "weights": None,
        "small_input_below": 128,
        "mix_points": "paper",
        "depth": 8,
        "width": 16,
    }
    torch.manual_seed(seed)
    return build_model(OmegaConf.create(cfg), num_classes, in_channels, size).to(device)
