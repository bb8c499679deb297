"""SynerMix: intra-class + inter-class mixup for image classification (reference implementation).

The public names below are imported on first use (PEP 562), so `import synermix.<light module>` (the
training script's `--help`, `--cfg job`) does not pay for torch, torchvision and scikit-learn.
"""

from importlib import import_module

from synermix.config import identity  # noqa: F401  registers ${config_id:} and the other resolvers the configs use
from synermix.run import resolvers  # noqa: F401

_EXPORTS = {
    "LossTerms": "synermix.method.loss",
    "SupplementedBatchSampler": "synermix.method.sampling",
    "SynerMixLoss": "synermix.method.loss",
    "intra_class_mixup": "synermix.method.intra",
    "intra_class_pair_probability": "synermix.results.analysis",
    "mix": "synermix.method.inter",
    "mixup_cross_entropy": "synermix.method.inter",
    "sample_lam": "synermix.method.inter",
    "wrap": "synermix.models.wrapping",
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
