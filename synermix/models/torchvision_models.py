"""The paper's backbones from torchvision, split into named stages with the paper's mix points S.

Sec. 4.1.2 of the paper defines the Manifold MixUp layer sets:
- ResNet: the input, the outputs of the first and of the second residual stage;
- MobileNetV3-Large: the input, the output after the first hardswish, after the first and after
  the second inverted residual block;
- Swin-T: the input, the output after the first layer norm, after the 2nd and after the 4th
  transformer block.
The wrappers reuse torchvision's modules as they are (no copies, no patching): they only call
the backbone's children in order, so torchvision state_dicts load into the backbone before
wrapping.

`model.mix_points=authors` reproduces the released code instead (github wxitxy/synermix, main.py):
ResNet as the paper; MobileNetV3 and Swin-T draw `random.randint(0, 3)` where cases 0 and 1 both mix
the input, so the input is drawn half the time, then MobileNetV3 after the stem or after the first
inverted residual, Swin-T after the patch embedding or after features[2] (the first patch merging).
A point listed twice is drawn twice as often.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Tuple, cast

import torch
from torch import nn
from torchvision import models as tvm

from synermix.models.staged import StagedClassifier


def adapt_first_conv(conv: nn.Conv2d, in_channels: int) -> nn.Conv2d:
    """A copy of `conv` taking `in_channels` inputs; RGB weights are summed for grey input (as timm)."""
    if conv.in_channels == in_channels:
        return conv
    kernel, stride = cast(Tuple[int, int], conv.kernel_size), cast(Tuple[int, int], conv.stride)
    padding = cast(Tuple[int, int], conv.padding)  # torchvision's first convolutions: 2-d, numeric padding
    new = nn.Conv2d(in_channels, conv.out_channels, kernel, stride, padding, bias=conv.bias is not None)
    with torch.no_grad():
        if in_channels == 1:
            new.weight.copy_(conv.weight.sum(dim=1, keepdim=True))
        if conv.bias is not None and new.bias is not None:
            new.bias.copy_(conv.bias)
    return new


MIX_POINTS: Dict[str, Dict[str, Tuple[str, ...]]] = {
    "resnet": {"paper": ("input", "layer1", "layer2"), "authors": ("input", "layer1", "layer2")},
    "mobilenet_v3": {"paper": ("input", "stem", "block1", "block2"), "authors": ("input", "input", "stem", "block1")},
    "swin": {
        "paper": ("input", "patch_embed", "block2", "block4"),
        "authors": ("input", "input", "patch_embed", "merge1"),
    },
}


def resnet_stages(net: tvm.ResNet) -> List[Tuple[str, nn.Module]]:
    """ResNet stages stem, layer1..layer4, pool (the head is `fc`)."""
    return [
        ("stem", nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)),
        ("layer1", net.layer1),
        ("layer2", net.layer2),
        ("layer3", net.layer3),
        ("layer4", net.layer4),
        ("pool", nn.Sequential(net.avgpool, nn.Flatten())),
    ]


def mobilenet_v3_stages(net: tvm.MobileNetV3) -> List[Tuple[str, nn.Module]]:
    """Stages stem (conv-BN-hardswish), block1, block2 (inverted residuals), blocks, pool (to the last linear)."""
    feats = net.features
    return [
        ("stem", feats[0]),
        ("block1", feats[1]),
        ("block2", feats[2]),
        ("blocks", feats[3:]),
        ("pool", nn.Sequential(net.avgpool, nn.Flatten(), *net.classifier[:-1])),
    ]


def swin_stages(net: tvm.SwinTransformer) -> List[Tuple[str, nn.Module]]:
    """Stages patch_embed (conv, permute, first layer norm), block2, merge1, block4, blocks, pool."""
    feats = net.features
    return [
        ("patch_embed", feats[0]),
        ("block2", feats[1]),  # transformer blocks 1-2 (stage 1)
        ("merge1", feats[2]),
        ("block4", feats[3]),  # transformer blocks 3-4 (stage 2)
        ("blocks", feats[4:]),
        ("pool", nn.Sequential(net.norm, net.permute, net.avgpool, net.flatten)),
    ]


# torchvision class -> (its stages, its classifier, MIX_POINTS family): how any instance is staged
FAMILIES: Dict[type, tuple] = {
    tvm.ResNet: (resnet_stages, lambda net: net.fc, "resnet"),
    tvm.MobileNetV3: (mobilenet_v3_stages, lambda net: net.classifier[-1], "mobilenet_v3"),
    tvm.SwinTransformer: (swin_stages, lambda net: net.head, "swin"),
}


def staged(net: nn.Module, head: Optional[nn.Linear] = None, points: str = "paper") -> StagedClassifier:
    """A torchvision ResNet / MobileNetV3 / Swin as a StagedClassifier: its own classifier as the head (or
    `head`) and the family's `points` set of mix points. The modules are shared, not copied."""
    stages, classifier, family = next(v for k, v in FAMILIES.items() if isinstance(net, k))
    return StagedClassifier(stages(net), head if head is not None else classifier(net), MIX_POINTS[family][points])


def wrap_resnet(
    net: tvm.ResNet, num_classes: int, in_channels: int, small_input: bool, points: str
) -> StagedClassifier:
    """ResNet with a new head; small inputs get a 3x3 stride-1 stem and no max-pool."""
    if small_input:  # PyTorch's default Conv2d init, as the authors' replacement conv1 has
        net.conv1 = nn.Conv2d(in_channels, net.conv1.out_channels, 3, 1, 1, bias=False)
        net.maxpool = nn.Identity()
    else:
        net.conv1 = adapt_first_conv(net.conv1, in_channels)
    return staged(net, nn.Linear(net.fc.in_features, num_classes), points)


def wrap_mobilenet_v3(
    net: tvm.MobileNetV3, num_classes: int, in_channels: int, small_input: bool, points: str
) -> StagedClassifier:
    """MobileNetV3 with a new head and the first conv adapted to the input channels."""
    net.features[0][0] = adapt_first_conv(net.features[0][0], in_channels)
    return staged(net, nn.Linear(net.classifier[-1].in_features, num_classes), points)


def wrap_swin(
    net: tvm.SwinTransformer, num_classes: int, in_channels: int, small_input: bool, points: str
) -> StagedClassifier:
    """Swin with a new head and the patch embedding adapted to the input channels."""
    net.features[0][0] = adapt_first_conv(net.features[0][0], in_channels)
    return staged(net, nn.Linear(net.head.in_features, num_classes), points)


WRAPPERS = {"resnet": wrap_resnet, "mobilenet_v3": wrap_mobilenet_v3, "swin": wrap_swin}


def imagenet_weights(weights: str):
    """torchvision's ImageNet weights enum member named "Enum.MEMBER" (synermix.models.torchvision_archs)."""
    enum, member = weights.split(".")
    return getattr(getattr(tvm, enum), member)


def build_torchvision_model(
    ctor: str,
    family: str,
    num_classes: int,
    in_channels: int,
    small_input: bool,
    load_backbone: Callable[[nn.Module], None] | None = None,
    mix_points: str = "paper",
) -> StagedClassifier:
    """Build torchvision's `ctor`, let `load_backbone` fill its weights, then wrap it (WRAPPERS[family]) with a new
    head and the `mix_points` set (`paper` or `authors`)."""
    net = getattr(tvm, ctor)()  # ImageNet-shaped, so torchvision/ImageNet state_dicts load before the head is replaced
    if load_backbone is not None:
        load_backbone(net)
    return WRAPPERS[family](net, num_classes, in_channels, small_input, mix_points)
