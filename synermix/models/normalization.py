"""The input normalisation a pretrained timm model's weights expect (timm's pretrained config: mean and std), the
default for `model=timm model.pretrained=true`; `dataset.mean/std: auto` asks for it explicitly."""

from __future__ import annotations

from typing import Any, Optional, Tuple

from omegaconf import DictConfig, ListConfig, open_dict

from synermix.errors import ConfigError


def pretrained_stats(model: Any) -> Optional[Tuple[list, list]]:
    """(mean, std) of a pretrained timm model's weights (model.arch's pretrained config), None for any other model."""
    if model is None or model.get("name") != "timm" or model.get("pretrained") is not True:
        return None
    from timm.models import get_pretrained_cfg  # timm: ~1 s, only runs that use it

    found = get_pretrained_cfg(str(model.get("arch")))
    if found is None or found.mean is None or found.std is None:
        return None
    return [float(v) for v in found.mean], [float(v) for v in found.std]


def normalization_resolver(which: str, default: Any, *, _root_: DictConfig) -> Any:
    """${normalization:mean|std,DEFAULT}: a pretrained timm model's statistics, else the data set's DEFAULT."""
    stats = pretrained_stats(_root_.get("model"))
    if stats is None:
        chosen = default
    else:
        chosen = stats[0] if which == "mean" else stats[1]
    # a ListConfig, not a list: OmegaConf.resolve (`--cfg job --resolve`) cannot put a plain list in a value node
    return chosen if isinstance(chosen, str) else ListConfig(list(chosen))


def resolve_auto_normalization(cfg: DictConfig) -> None:
    """Replace dataset.mean/std `auto` by the pretrained timm model's statistics (ConfigError for other models)."""
    keys = [k for k in ("mean", "std") if cfg.dataset.get(k) == "auto"]
    if not keys:
        return
    stats = pretrained_stats(cfg.get("model"))
    if stats is None:
        raise ConfigError(
            f"Invalid configuration: dataset.{keys[0]}=auto takes the statistics a pretrained timm model's weights "
            f"expect, but the run uses model.name={cfg.model.name} with model.pretrained={cfg.model.get('pretrained')} "
            f"(model.arch={cfg.model.get('arch')}); use model=timm model.pretrained=true, or give the numbers."
        )
    with open_dict(cfg):
        for key in keys:
            cfg.dataset[key] = stats[0] if key == "mean" else stats[1]
