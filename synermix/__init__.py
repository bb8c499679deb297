"""SynerMix: intra-class + inter-class mixup for image classification (reference implementation)."""
from synermix import identity  # noqa: F401  registers the ${config_id:} resolver the configs use
from synermix.analysis import intra_class_pair_probability
from synermix.losses import LossTerms, SynerMixLoss
from synermix.mixup import intra_class_mixup, mix, mixup_cross_entropy, sample_lam
from synermix.sampling import SupplementedBatchSampler

__all__ = [
    "LossTerms",
    "SupplementedBatchSampler",
    "SynerMixLoss",
    "intra_class_mixup",
    "intra_class_pair_probability",
    "mix",
    "mixup_cross_entropy",
    "sample_lam",
]
