"""The configs' resolvers that read the data or a model's statistics (registered on `import synermix`; each
imports its module on first use, so --help and --cfg do not pay for torch)."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf


def _data_fingerprint_resolver(root: Any) -> str:
    """dataset.fingerprint of an image folder (imported here: the data package needs torch, --help does not)."""
    # on use: imports torchvision for image folders, which --help and --cfg do not need
    from synermix.data.tree import fingerprint

    return fingerprint(root)


OmegaConf.register_new_resolver("data_fingerprint", _data_fingerprint_resolver, replace=True)


def _normalization_resolver(which: str, default: Any, *, _root_: DictConfig) -> Any:
    """dataset.mean/std: a pretrained timm model's own statistics, else the data set's
    (synermix.models.normalization)."""
    # on use: imports torch, which --help does not need
    from synermix.models.normalization import normalization_resolver

    return normalization_resolver(which, default, _root_=_root_)


OmegaConf.register_new_resolver("normalization", _normalization_resolver, replace=True)
