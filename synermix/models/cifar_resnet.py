"""The CIFAR ResNet of He et al. (2016, Sec. 4.2): 6n+2 layers, three stages of 16/32/64 x width.

Written here because neither timm nor torchvision ships this small-input family; it is the
CPU-friendly default model. Stages: stem, layer1, layer2, layer3, pool. Mix points (S) as the
paper's ResNets: the input and the outputs of the first and second residual stages.
"""

from __future__ import annotations

from typing import Callable

from torch import Tensor, nn

from synermix.config.checks import Check, is_int, one_of, require
from synermix.models.registry import ModelEntry
from synermix.models.staged import StagedClassifier
from synermix.models.weights import load_backbone_weights

NORMS = ("batch", "group")
CIFAR_RESNET_CHECKS = (
    Check(
        "depth",
        lambda v: is_int(v) and v >= 8 and (v - 2) % 6 == 0,
        "an integer 6n+2 >= 8 (8, 14, 20, ...)",
        optional=True,
    ),
    Check("width", lambda v: is_int(v) and v >= 1, "an integer >= 1", optional=True),
    Check("norm", one_of(NORMS), f"one of {list(NORMS)}", optional=True),
)


def norm_layer(kind: str) -> Callable[[int], nn.Module]:
    """`batch`: BatchNorm2d; `group`: GroupNorm with 8 groups (no batch statistics: a process's outputs do not
    depend on the rest of its batch, so a torchrun run can compute exactly what one process computes)."""
    require(dict(norm=kind), CIFAR_RESNET_CHECKS)
    return nn.BatchNorm2d if kind == "batch" else (lambda channels: nn.GroupNorm(8, channels))


class BasicBlock(nn.Module):
    """Two 3x3 conv-norm layers with an identity or 1x1-projection shortcut."""

    def __init__(self, cin: int, cout: int, stride: int, norm: Callable[[int], nn.Module] = nn.BatchNorm2d):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = norm(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = norm(cout)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), norm(cout))

    def forward(self, x: Tensor) -> Tensor:
        """Residual block output."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


def cifar_resnet(
    num_classes: int, in_channels: int = 3, depth: int = 20, width: int = 16, norm: str = "batch"
) -> StagedClassifier:
    """Build a CIFAR ResNet-`depth` (depth = 6n + 2) as a StagedClassifier, with BatchNorm or GroupNorm (`norm`)."""
    require(dict(depth=depth, width=width, norm=norm), CIFAR_RESNET_CHECKS)
    n, norm_of = (depth - 2) // 6, norm_layer(norm)
    widths = (width, 2 * width, 4 * width)

    def stage(cin: int, cout: int, stride: int) -> nn.Sequential:
        blocks = [BasicBlock(cin, cout, stride, norm_of)] + [BasicBlock(cout, cout, 1, norm_of) for _ in range(n - 1)]
        return nn.Sequential(*blocks)

    stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), norm_of(width), nn.ReLU(inplace=True))
    model = StagedClassifier(
        stages=[
            ("stem", stem),
            ("layer1", stage(width, widths[0], 1)),
            ("layer2", stage(widths[0], widths[1], 2)),
            ("layer3", stage(widths[1], widths[2], 2)),
            ("pool", nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())),
        ],
        head=nn.Linear(widths[2], num_classes),
        mix_points=("input", "layer1", "layer2"),
    )
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return model


class CifarResNet(ModelEntry):
    """The registry entry of model=cifar_resnet (no pretrained weights; model.weights loads a run's own)."""

    checks = CIFAR_RESNET_CHECKS

    def build(self, cfg, num_classes: int, in_channels: int, image_size: int, state, source: str) -> StagedClassifier:
        """cifar_resnet(model.depth, model.width, model.norm) for the data; `state` loaded without its head."""
        model = cifar_resnet(
            num_classes, in_channels, depth=int(cfg.depth), width=int(cfg.width), norm=str(cfg.get("norm", "batch"))
        )
        if state is not None:
            load_backbone_weights(model, state, "head.", "cifar_resnet", source)
        return model


CIFAR_RESNET = CifarResNet()
