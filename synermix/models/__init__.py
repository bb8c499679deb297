"""Model registry: `model.name` -> a StagedClassifier with features(), a linear head and mix points."""
from __future__ import annotations

from pathlib import Path

from synermix.config.checks import Check, is_bool, is_int, one_of
from synermix.errors import value_errors_as_config_errors
from synermix.models.cifar_resnet import CIFAR_RESNET_CHECKS, cifar_resnet
from synermix.models.staged import StagedClassifier
from synermix.models.weights import WeightsError, load_backbone_weights, pretrained_state_dict, read_state_dict

# The one list of torchvision's architectures: model.name -> (torchvision constructor, wrapper family, ImageNet
# weights, key prefix of its classifier), as names, so that validating a config (and every cifar_resnet run) does
# not import torchvision (~2 s); torchvision_models.py resolves them.
TORCHVISION_ARCHS = {
    "resnet18": ("resnet18", "resnet", "ResNet18_Weights.IMAGENET1K_V1", "fc."),
    "resnet34": ("resnet34", "resnet", "ResNet34_Weights.IMAGENET1K_V1", "fc."),
    "resnet50": ("resnet50", "resnet", "ResNet50_Weights.IMAGENET1K_V1", "fc."),
    "resnet101": ("resnet101", "resnet", "ResNet101_Weights.IMAGENET1K_V1", "fc."),
    "mobilenetv3_large": ("mobilenet_v3_large", "mobilenet_v3", "MobileNet_V3_Large_Weights.IMAGENET1K_V1",
                          "classifier.3."),
    "swin_t": ("swin_t", "swin", "Swin_T_Weights.IMAGENET1K_V1", "head."),
}
MIX_POINT_SETS = ("paper", "authors")
MODEL_NAMES = ("cifar_resnet", *TORCHVISION_ARCHS, "timm")  # timm: any timm.list_models() name as model.arch
PRETRAINED_NAMES = (*TORCHVISION_ARCHS, "timm")  # cifar_resnet has no pretrained weights


def _mix_points_ok(v) -> bool:
    return v in (*MIX_POINT_SETS, "feature_info") if isinstance(v, str) else (
        len(v) > 0 and all(isinstance(p, str) for p in v))


# The `model` config group
MODEL_CHECKS = (
    Check("name", one_of(MODEL_NAMES), f"one of {list(MODEL_NAMES)}"),
    Check("pretrained", is_bool, "true or false"),
    Check("weights", lambda v: v is None or (isinstance(v, str) and v.strip() != ""), "null or the path of a weights file"),
    Check("download", is_bool, "true or false", optional=True),
    Check("small_input_below", lambda v: is_int(v) and v >= 1, "an integer >= 1", optional=True),
    Check("mix_points", _mix_points_ok,
          f"one of {list(MIX_POINT_SETS)} for the paper's models (paper: Sec. 4.1.2's sets; authors: the released "
          "code's draws), or for model=timm 'feature_info' or a list of 'input' and module names", optional=True),
    Check("arch", lambda v: isinstance(v, str) and v.strip() != "", "a timm model name", optional=True),
    *CIFAR_RESNET_CHECKS,
)


def _is_staged_state(state) -> bool:
    """Whether a state_dict was saved from a StagedClassifier (e.g. a run's checkpoint) rather than a backbone."""
    return any(k.startswith("stages.") for k in state)


def build_model(cfg, num_classes: int, in_channels: int, image_size: int) -> StagedClassifier:
    """Instantiate `cfg.name` for the data's classes/channels/size, with weights from `model.weights` or
    (when `model.pretrained`) ImageNet weights from torchvision's (timm: Hugging Face's) local cache; the head
    is always new. `model=timm` builds any timm architecture (`model.arch`)."""
    with value_errors_as_config_errors():  # bad architecture settings
        return _build_model(cfg, num_classes, in_channels, image_size)


def _build_model(cfg, num_classes: int, in_channels: int, image_size: int) -> StagedClassifier:
    name = cfg.name
    if name not in MODEL_NAMES:
        raise ValueError(f"model.name={name!r} is unknown; choose one of {list(MODEL_NAMES)}.")
    path = Path(str(cfg.weights)).expanduser() if cfg.get("weights") else None
    state = read_state_dict(path) if path else None
    source = str(path)
    if name == "timm":
        from synermix.models.timm_models import build_timm_model

        return build_timm_model(cfg, num_classes, in_channels, image_size, state, source)
    if name != "cifar_resnet":
        from synermix.models.torchvision_models import build_torchvision_model, imagenet_weights
    if state is None and cfg.pretrained:
        weights = imagenet_weights(name)
        state = pretrained_state_dict(name, weights, bool(cfg.get("download", False)))
        source = f"torchvision's {weights}"

    def build(load_backbone=None) -> StagedClassifier:
        if name == "cifar_resnet":
            return cifar_resnet(num_classes, in_channels, depth=int(cfg.depth), width=int(cfg.width),
                                norm=str(cfg.get("norm", "batch")))
        small = image_size < int(cfg.small_input_below)
        return build_torchvision_model(name, num_classes, in_channels, small, load_backbone, str(cfg.mix_points))

    if state is None:
        return build()
    if _is_staged_state(state) or name == "cifar_resnet":
        model = build()
        load_backbone_weights(model, state, "head.", name, source)
        return model
    head_prefix = TORCHVISION_ARCHS[name][3]
    return build(lambda net: load_backbone_weights(net, state, head_prefix, name, source))


__all__ = ["MIX_POINT_SETS", "MODEL_NAMES", "PRETRAINED_NAMES", "StagedClassifier", "WeightsError", "build_model", "cifar_resnet"]
