"""SaliencyMix (Uddin et al., ICLR 2021): CutMix whose box is centred on the most salient pixel of the partner
image (OpenCV's static fine-grained saliency, as the paper), cut from the partner and pasted at the same place;
lambda becomes the share of the image left."""

from __future__ import annotations

from typing import Callable, Tuple

import torch
from torch import Tensor

from synermix.method.inter import cutmix, cutmix_box
from synermix.method.mixers import Mix
from synermix.method.mixers.mixup import MixUp

Peaks = Callable[[Tensor], Tuple[Tensor, Tensor]]


def opencv_saliency_peaks(x: Tensor) -> Tuple[Tensor, Tensor]:
    """(rows, columns) of the most salient pixel of each image of x (N, C, H, W): OpenCV's static fine-grained
    saliency map of the image scaled to 8 bits (per image, min to max; grey for one channel), its argmax."""
    import cv2  # opencv-contrib-python-headless: only SaliencyMix runs import it

    detector = cv2.saliency.StaticSaliencyFineGrained_create()  # type: ignore[attr-defined]  # a contrib module
    images = x.detach().float().cpu()
    if images.shape[1] not in (1, 3):
        images = images.mean(dim=1, keepdim=True)
    low = images.amin(dim=(1, 2, 3), keepdim=True)
    span = (images.amax(dim=(1, 2, 3), keepdim=True) - low).clamp_min(1e-12)
    pixels = ((images - low) / span * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    rows, cols = torch.empty(len(pixels), dtype=torch.long), torch.empty(len(pixels), dtype=torch.long)
    for i, image in enumerate(pixels):
        found, saliency = detector.computeSaliency(image[..., 0] if image.shape[-1] == 1 else image)
        if not found:
            raise RuntimeError("OpenCV's fine-grained saliency failed on an image of the batch.")
        peak = int(saliency.argmax())
        rows[i], cols[i] = peak // image.shape[1], peak % image.shape[1]
    return rows, cols


class SaliencyMix(MixUp):
    """Draws, in order: the partner permutation and lambda ~ Beta(alpha, alpha) (one per batch, or per sample with
    lam_mode=elem). When applied to the images, each sample's box (sides int(sqrt(1 - lambda) * side), clipped) is
    centred on its partner's saliency peak, one box per sample; `Mix.lam` then holds each sample's share left.
    `saliency` (images -> peak rows, columns) is OpenCV's by default."""

    def __init__(self, alpha: float = 1.0, lam_mode: str = "batch", saliency: Peaks = opencv_saliency_peaks) -> None:
        super().__init__(alpha, lam_mode)
        self.saliency = saliency

    def draw(self, labels, generator, batch_shape, mix_points) -> Mix:
        """Partner permutation and lambda; the boxes follow from the partners' saliency when applied."""
        if len(batch_shape) != 4:
            raise ValueError(f"inter='saliencymix' needs image batches (N, C, H, W); got shape {tuple(batch_shape)}.")
        perm, lam = self.partners(labels, generator)
        n, height, width = batch_shape[0], batch_shape[-2], batch_shape[-1]
        kept = lam.expand(n).clone()  # replaced by each sample's share left once the boxes are known

        def apply(x: Tensor) -> Tensor:
            rows, cols = self.saliency(x)  # every image's peak; sample i's box follows its partner perm[i]
            partner = perm.cpu()
            boxes, share = cutmix_box(height, width, kept, rows[partner], cols[partner])
            kept.copy_(share)
            return cutmix(x, perm, boxes)

        return Mix("input", apply, labels[perm], kept)
