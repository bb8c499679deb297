"""Model registry: `model.name` -> a StagedClassifier with features(), head and mix points."""
from __future__ import annotations

from synermix.models.cifar_resnet import cifar_resnet
from synermix.models.staged import StagedClassifier

MODEL_NAMES = ("cifar_resnet",)


def build_model(cfg, num_classes: int, in_channels: int, image_size: int) -> StagedClassifier:
    """Instantiate the model named by `cfg.name` for the dataset's classes, channels and size."""
    if cfg.name == "cifar_resnet":
        return cifar_resnet(num_classes, in_channels, depth=int(cfg.depth), width=int(cfg.width))
    raise ValueError(f"model.name={cfg.name!r} is unknown; choose one of {list(MODEL_NAMES)}.")


__all__ = ["MODEL_NAMES", "StagedClassifier", "build_model", "cifar_resnet"]
