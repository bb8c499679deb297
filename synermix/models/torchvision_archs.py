"""The paper's torchvision backbones as registry entries: each names torchvision's constructor, the wrapper family,
its ImageNet weights and the key prefix of its classifier, as names, so that validating a config does not import
torchvision (~2 s); synermix.models.torchvision_models builds them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from synermix.models.registry import ModelEntry
from synermix.models.weights import load_backbone_weights, pretrained_state_dict


def is_staged_state(state: dict) -> bool:
    """Whether a state_dict was saved from a StagedClassifier (e.g. a run's checkpoint) rather than a backbone."""
    return any(k.startswith("stages.") for k in state)


@dataclass(frozen=True)
class TorchvisionArch(ModelEntry):
    """torchvision's `ctor` wrapped by `family` (synermix.models.torchvision_models.WRAPPERS), with the ImageNet
    `weights` ("Enum.MEMBER") and the key prefix of its classifier (`head_prefix`)."""

    name: str
    ctor: str
    family: str
    weights: str
    head_prefix: str
    pretrained = True

    def build(self, cfg: Any, num_classes: int, in_channels: int, image_size: int, state, source: str):
        """Weights from `state`, else (model.pretrained) torchvision's ImageNet weights; the head always new."""
        # torchvision: ~2 s, only when such a model is built
        from synermix.models.torchvision_models import build_torchvision_model, imagenet_weights

        if state is None and cfg.pretrained:
            weights = imagenet_weights(self.weights)
            state = pretrained_state_dict(self.name, weights, bool(cfg.get("download", False)))
            source = f"torchvision's {weights}"
        small, points = image_size < int(cfg.small_input_below), str(cfg.mix_points)

        def build(load_backbone=None):
            return build_torchvision_model(
                self.ctor, self.family, num_classes, in_channels, small, load_backbone, points
            )

        if state is None:
            return build()
        if is_staged_state(state):  # a run's own weights: the stages' keys
            model = build()
            load_backbone_weights(model, state, "head.", self.name, source)
            return model
        return build(lambda net: load_backbone_weights(net, state, self.head_prefix, self.name, source))


RESNET18 = TorchvisionArch("resnet18", "resnet18", "resnet", "ResNet18_Weights.IMAGENET1K_V1", "fc.")
RESNET34 = TorchvisionArch("resnet34", "resnet34", "resnet", "ResNet34_Weights.IMAGENET1K_V1", "fc.")
RESNET50 = TorchvisionArch("resnet50", "resnet50", "resnet", "ResNet50_Weights.IMAGENET1K_V1", "fc.")
RESNET101 = TorchvisionArch("resnet101", "resnet101", "resnet", "ResNet101_Weights.IMAGENET1K_V1", "fc.")
MOBILENETV3_LARGE = TorchvisionArch(
    "mobilenetv3_large",
    "mobilenet_v3_large",
    "mobilenet_v3",
    "MobileNet_V3_Large_Weights.IMAGENET1K_V1",
    "classifier.3.",
)
SWIN_T = TorchvisionArch("swin_t", "swin_t", "swin", "Swin_T_Weights.IMAGENET1K_V1", "head.")
