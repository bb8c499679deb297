"""The model registry: `model.name` -> its entry (a ModelEntry: how to build it, and its facts), or your own model
as `model._target_: my_module.MyModel` (docs/extending.md). A model is one file with its entry plus
configs/model/<name>.yaml."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from synermix.config.checks import Check
from synermix.config.registry import Registry

if TYPE_CHECKING:
    from torch import Tensor, nn

MODELS = Registry(
    "model",
    "model.name",
    {
        "cifar_resnet": "synermix.models.cifar_resnet:CIFAR_RESNET",
        "resnet18": "synermix.models.torchvision_archs:RESNET18",
        "resnet34": "synermix.models.torchvision_archs:RESNET34",
        "resnet50": "synermix.models.torchvision_archs:RESNET50",
        "resnet101": "synermix.models.torchvision_archs:RESNET101",
        "mobilenetv3_large": "synermix.models.torchvision_archs:MOBILENETV3_LARGE",
        "swin_t": "synermix.models.torchvision_archs:SWIN_T",
        "timm": "synermix.models.timm_models:TIMM",  # any timm.list_models() name as model.arch
    },
    "model._target_=my_module.MyModel",
)
MIX_POINT_SETS = ("paper", "authors")  # the paper's models: Sec. 4.1.2's sets, or the released code's draws


class ModelEntry:
    """A model: `build` returns a classifier with features(x, mix_at, mix_fn), a linear head and mix_points
    (synermix.models.StagedClassifier, or any module with those); its facts below. An entry is an instance (a
    class is instantiated)."""

    pretrained = False  # ImageNet weights exist (model.pretrained=true)
    checks: tuple[Check, ...] = ()  # the checks of this model's own keys (model.<key>)

    def problems(self, group: Any) -> list[str]:
        """What is wrong with the `model` group beyond its keys' own checks (e.g. an unknown architecture)."""
        return []

    def build(
        self,
        cfg: Any,
        num_classes: int,
        in_channels: int,
        image_size: int,
        state: dict[str, Tensor] | None,
        source: str,
    ) -> nn.Module:
        """The model for the data's classes, channels and image size; `state` (read from `source`) its weights
        without the head, or None."""
        raise NotImplementedError


def as_entry(found: Any) -> ModelEntry:
    """A located entry: an instance as it is, a class instantiated."""
    return found() if isinstance(found, type) else found
