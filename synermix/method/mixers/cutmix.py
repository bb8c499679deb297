"""CutMix (Yun et al. 2019): a box of the partner image pasted in; lambda becomes the share of the image left."""

from __future__ import annotations

from synermix.method.inter import cutmix, cutmix_boxes
from synermix.method.mixers import Mix
from synermix.method.mixers.mixup import MixUp


class CutMix(MixUp):
    """Draws, in order: the partner permutation, lambda ~ Beta(alpha, alpha), then each box's centre (rows, then
    columns); box sides int(sqrt(1 - lambda) * side), clipped to the image, and lambda recomputed from the clipped
    box (timm's rand_bbox / cutmix_bbox_and_lam). Needs image batches (N, C, H, W)."""

    def draw(self, labels, generator, batch_shape, mix_points) -> Mix:
        """Partner permutation, lambda, box centres; mixes at the input."""
        if len(batch_shape) != 4:
            raise ValueError(f"inter='cutmix' needs image batches (N, C, H, W); got shape {tuple(batch_shape)}.")
        perm, lam = self.partners(labels, generator)
        boxes, lam = cutmix_boxes(batch_shape[-2], batch_shape[-1], lam, generator)
        return Mix("input", lambda x: cutmix(x, perm, boxes), labels[perm], lam)
