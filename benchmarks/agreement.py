"""Whether an N-process run computed what one process computes, up to float rounding (make gpu-check, tests).

N processes add the gradient all-reduce's float32 sums in another order than one process, and other kernels
(AVX-512, AVX2, CUDA) round differently for the parts' batch sizes. Those differences start near float32's
epsilon (6e-8) and training amplifies them: measured on digits with GroupNorm, 1 vs 2 processes, they stay near
1e-7 for a few steps, then an occasional step (a GroupNorm group of near-zero variance divides by sqrt(eps))
moves the weights by ~1e-4 on AVX-512 kernels, and after two epochs of 36 steps accuracy differs by several
images. So the comparison is made where the two must agree: a short run (AGREEMENT_RUN: 4 steps) whose losses,
calibration and final logits are held to tolerances ~100x the largest difference measured on the default,
AVX2 and AVX-512 kernels, and whose accuracy may differ only by images whose top-2 logit margin is within the
measured logit difference. A wiring bug (L_intra over one process's part, a mis-cut batch, a wrong augmentation
seed, a part's loss not weighted by its share) moves the first step's loss by 1e-3 or more.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

# GroupNorm has no batch statistics and `intra` mixes nothing per process, so N processes must reproduce one.
# 60 training digits at batch size 32: 2 supplemented steps per epoch, 2 epochs; all 360 test digits evaluated.
AGREEMENT_RUN = (
    "dataset=digits",
    "dataset.max_per_class=6",
    "method=intra",
    "model.norm=group",
    "train.epochs=2",
    "train.average_last=1",
    "train.cohesion_samples=1000",
    "seed=1",
)
# Largest relative difference of any metric but accuracy (losses, ECE, NLL, cohesion) over the run's 4 steps.
METRIC_RTOL = 1e-4
# Largest absolute difference of the final evaluation's logits (they are O(1)).
LOGIT_ATOL = 1e-4


@dataclass
class Agreement:
    """How far an N-process run is from the one-process run of the same config."""

    metric_rel: float  # largest relative difference of any metrics.csv column but accuracy and time
    logit_diff: float  # largest |logit difference| of the final evaluation (features.npz x head)
    correct_gap: int  # largest difference of correctly classified evaluation images over the epochs
    near_ties: int  # final-evaluation images whose top-2 margin is within 2 x logit_diff: the flips allowed
    images: int  # evaluation images

    @property
    def holds(self) -> bool:
        """Whether the difference is float rounding (the tolerances above), not a change of the computation."""
        return self.metric_rel <= METRIC_RTOL and self.logit_diff <= LOGIT_ATOL and self.correct_gap <= self.near_ties

    def __str__(self) -> str:
        return (
            f"metrics {self.metric_rel:.1e} relative (<= {METRIC_RTOL:g}), logits {self.logit_diff:.1e} "
            f"(<= {LOGIT_ATOL:g}), accuracy {self.correct_gap} of {self.images} images apart "
            f"({self.near_ties} within the logit difference of a tie)"
        )


def _final_logits(run_dir: Path):
    """The final evaluation's logits and labels: features.npz through the head of weights.pt."""
    weights = torch.load(run_dir / "weights.pt", map_location="cpu", weights_only=True)
    with np.load(run_dir / "features.npz") as f:
        features, labels = f["features"].astype(np.float64), f["labels"]
    head_w, head_b = weights["head.weight"].double().numpy(), weights["head.bias"].double().numpy()
    return features @ head_w.T + head_b, labels


def compare_runs(one: Path, many: Path) -> Agreement:
    """Compare the run directories of a one-process and an N-process run of the same config."""
    a, b = (pd.read_csv(Path(d) / "metrics.csv").drop(columns="epoch_seconds") for d in (one, many))
    if list(a["epoch"]) != list(b["epoch"]):
        raise AssertionError(f"the runs recorded other epochs: {list(a['epoch'])} vs {list(b['epoch'])}")
    columns = [c for c in a.columns if c not in ("epoch", "eval_acc")]
    rel = ((b[columns] - a[columns]).abs() / a[columns].abs().clip(lower=1e-12)).max().max()
    logits_a, labels = _final_logits(Path(one))
    logits_b, labels_b = _final_logits(Path(many))
    if not np.array_equal(labels, labels_b):
        raise AssertionError("the runs kept other evaluation images in features.npz")
    diff = float(np.abs(logits_a - logits_b).max())
    top2 = np.sort(logits_a, axis=1)[:, -2:]
    near = int((top2[:, 1] - top2[:, 0] <= 2 * diff).sum())
    images = len(labels)
    gap = int(round(float((b["eval_acc"] - a["eval_acc"]).abs().max()) * images / 100))
    return Agreement(float(rel), diff, gap, near, images)
