"""SynerMix: intra-class + inter-class mixup for image classification (reference implementation).

The public names below are imported on first use (PEP 562), so `import synermix.<light module>` (the
training script's `--help`, `--cfg job`) does not pay for torch, torchvision and scikit-learn.
"""
from importlib import import_module

from synermix import identity  # noqa: F401  registers the ${config_id:} resolver the configs use

_EXPORTS = {
    "LossTerms": "synermix.loss",
    "SupplementedBatchSampler": "synermix.sampling",
    "SynerMixLoss": "synermix.loss",
    "intra_class_mixup": "synermix.mixup",
    "intra_class_pair_probability": "synermix.analysis",
    "mix": "synermix.mixup",
    "mixup_cross_entropy": "synermix.mixup",
    "sample_lam": "synermix.mixup",
    "wrap": "synermix.wrapping",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    """The public name `name`, imported from its module on first use."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'synermix' has no attribute {name!r}")
    value = getattr(import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
