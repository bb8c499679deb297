"""Offline pretrained weights: a local file (`model.weights`) or torchvision's own hub cache."""

from __future__ import annotations

from pathlib import Path
from typing import Dict

import torch
from torch import Tensor, nn

from synermix.errors import WeightsError, describe


def torchvision_cache_file(weights) -> Path:
    """Where torchvision keeps (and looks for) the file of a weights enum member."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name


def read_state_dict(path: Path, key: str = "model.weights") -> Dict[str, Tensor]:
    """Load a state_dict (or a checkpoint holding one) with weights_only=True; strip DDP `module.` prefixes."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{key}={path} does not exist (or is not a file); give the path of a saved state_dict.")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(
            f"{key}={path} is not a PyTorch checkpoint that loads with weights_only=True "
            f"({describe(exc)}); "
            "save one with torch.save(model.state_dict(), path)."
        ) from None
    for wrapper in ("state_dict", "model", "model_state_dict", "state_dict_ema"):
        if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
            break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, Tensor) for v in obj.values()):
        raise WeightsError(
            f"{key}={path} holds no state_dict (a mapping of parameter names to tensors, optionally under "
            "'state_dict' or 'model'); got " + type(obj).__name__ + "."
        )
    return {k.removeprefix("module."): v for k, v in obj.items()}


def load_backbone_weights(net: nn.Module, state: Dict[str, Tensor], head_prefix: str, what: str, source: str) -> None:
    """Load `state` into `net` except its classifier (`head_prefix*`); refuse weights of another architecture."""
    state = {k: v for k, v in state.items() if not k.startswith(head_prefix)}
    try:
        result = net.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # size mismatches
        detail = "; ".join(line.strip() for line in str(exc).splitlines()[1:4])
        raise WeightsError(
            f"The weights in {source} do not fit {what}: {detail}. Are they of another architecture?"
        ) from None
    missing = [k for k in result.missing_keys if not k.startswith(head_prefix)]
    if missing or result.unexpected_keys:
        raise WeightsError(
            f"The weights in {source} do not fit {what}: {len(missing)} parameter(s) missing "
            f"(e.g. {missing[:3]}), {len(result.unexpected_keys)} unexpected (e.g. {result.unexpected_keys[:3]}). "
            "Are they of another architecture (or another library's layout)?"
        )


def pretrained_state_dict(name: str, weights, download: bool) -> Dict[str, Tensor]:
    """ImageNet weights of `name` from torchvision's cache; downloaded into it only when `download`."""
    path = torchvision_cache_file(weights)
    if not path.is_file():
        if not download:
            raise WeightsError(
                f"model.pretrained=true but the ImageNet weights of {name} ({weights}) are not in torchvision's "
                f"cache: looked for {path}. Nothing is downloaded silently. Either copy that file there "
                f"(the cache folder follows $TORCH_HOME), or pass model.weights=/path/to/file (a state_dict in "
                "torchvision's layout; timm's ResNet checkpoints share it), or set model.download=true on a "
                "machine with internet access."
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(weights.url, str(path), progress=True)
    return read_state_dict(path, key="cached weights")
