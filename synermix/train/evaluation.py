"""One evaluation pass: accuracy, calibration, and the penultimate features of kept samples."""

from __future__ import annotations

import contextlib
from typing import Any, NamedTuple, Optional

import numpy as np
import torch
from torch import nn

from synermix.errors import RunError
from synermix.train.calibration import CalibrationTotals
from synermix.train.distributed import DistEnv


class NonFiniteLoss(RunError):
    """The training loss (or the weights, or the evaluation outputs) became NaN or infinite."""


def autocast_context(device: torch.device, amp: bool, dtype: str = "bfloat16"):
    """Autocast to `dtype` (bfloat16 or float16) on the device (CUDA, or CPU) when `amp`, otherwise a no-op context."""
    if amp:
        return torch.autocast(device.type, dtype=getattr(torch, dtype))
    return contextlib.nullcontext()


class Evaluation(NamedTuple):
    """One evaluation pass: top-1 accuracy (percent), ECE (fraction), NLL (nats), the penultimate features
    and labels of the kept samples (None without `keep`), top-5 accuracy (percent; None with five classes or
    fewer), the confusion counts (true class x predicted class) and the calibration sums."""

    accuracy: float
    ece: float
    nll: float
    features: Optional[np.ndarray] = None
    labels: Optional[np.ndarray] = None
    top5: Optional[float] = None
    confusion: Optional[np.ndarray] = None
    calibration: Optional[CalibrationTotals] = None


class _Counts:
    """Running top-1 / top-5 hits and confusion counts of an evaluation pass (on the logits' device)."""

    def __init__(self, device: torch.device) -> None:
        self.correct = torch.zeros((), dtype=torch.long, device=device)
        self.top5 = torch.zeros((), dtype=torch.long, device=device)
        self.classes = 0  # known from the first batch's logits
        self.confusion: Optional[torch.Tensor] = None  # flattened (true class, predicted class) counts

    def update(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """Add one batch of logits (N, C) and integer labels (N,)."""
        if self.confusion is None:
            self.classes = logits.shape[1]
            self.confusion = torch.zeros(self.classes**2, dtype=torch.long, device=logits.device)
        predicted = logits.argmax(dim=1)
        self.correct += (predicted == labels).sum()
        if self.classes > 5:
            self.top5 += (logits.topk(5, dim=1).indices == labels[:, None]).any(dim=1).sum()
        self.confusion += torch.bincount(labels * self.classes + predicted, minlength=self.classes**2)

    def sum_(self, dist_env: DistEnv) -> None:
        """Add the counts up over processes, in place (a process that saw no batch learns the class count)."""
        classes = torch.full((), self.classes, dtype=torch.long, device=self.correct.device)
        dist_env.max_(classes)
        if self.confusion is None:
            self.classes = int(classes)
            self.confusion = torch.zeros(self.classes**2, dtype=torch.long, device=self.correct.device)
        dist_env.sum_(self.correct, self.top5, self.confusion)

    def matrix(self) -> np.ndarray:
        """The confusion counts as a (true class, predicted class) array."""
        if self.confusion is None:
            return np.zeros((self.classes, self.classes), dtype=np.int64)
        return self.confusion.cpu().numpy().reshape(self.classes, self.classes)


@torch.no_grad()
def evaluate(
    model: Any,  # a MixableClassifier module: features() and head
    stream,
    amp: bool = False,
    amp_dtype: str = "bfloat16",
    keep: Optional[np.ndarray] = None,
    dist_env: DistEnv = DistEnv(),
) -> Evaluation:
    """Accuracy and calibration of `model` on the evaluation `stream` (EvalStream), and the penultimate
    features and labels of the evaluation samples at positions `keep`.

    Under torchrun each process evaluates its part of the stream; counts and sums are added up and the kept
    features gathered, so every process returns what one process evaluating everything would."""
    model.eval()
    device = next(model.parameters()).device
    counts = _Counts(device)
    calibration = CalibrationTotals(device)
    kept_features, kept_labels, seen = [], [], getattr(stream, "start", 0)
    finite = torch.ones((), dtype=torch.long, device=device)
    for x, y in stream:
        with autocast_context(device, amp, amp_dtype):
            features = model.features(x)
            logits = model.head(features)
            counts.update(logits, y)
            finite &= (torch.isfinite(logits).all() & torch.isfinite(features).all()).long()
        calibration.update(logits, y)
        if keep is not None:
            rows = keep[(keep >= seen) & (keep < seen + len(y))] - seen
            kept_features.append(features[torch.as_tensor(rows, device=device)].float().cpu())
            kept_labels.append(y[torch.as_tensor(rows, device=device)].cpu())
        seen += len(y)
    bad = 1 - finite
    dist_env.sum_(bad, *calibration.sums())
    counts.sum_(dist_env)
    if bool(bad):
        raise NonFiniteLoss(
            "The evaluation produced NaN or infinite outputs (the weights went non-finite in the last step of the "
            "epoch); the accuracy was not recorded and the last good checkpoint is kept. Lower train.lr, or check "
            "the data for NaN/inf values."
        )
    confusion = counts.matrix()
    top5 = 100.0 * int(counts.top5) / len(stream) if counts.classes > 5 else None
    found = (100.0 * int(counts.correct) / len(stream), calibration.ece(), calibration.nll())
    if keep is None:
        return Evaluation(*found, top5=top5, confusion=confusion, calibration=calibration)
    parts = dist_env.gather_objects((torch.cat(kept_features).numpy(), torch.cat(kept_labels).numpy()))
    features, labels = np.concatenate([f for f, _ in parts]), np.concatenate([lab for _, lab in parts])
    return Evaluation(*found, features, labels, top5=top5, confusion=confusion, calibration=calibration)


def check_finite(model: nn.Module, where: str, sums: Optional[torch.Tensor] = None) -> None:
    """Refuse to checkpoint non-finite weights, buffers or loss sums (one host read per checkpoint)."""
    tensors = [
        t for t in (*model.parameters(), *model.buffers(), *([] if sums is None else [sums])) if t.is_floating_point()
    ]
    finite = torch.stack([torch.isfinite(t).all() for t in tensors]).all()
    if not bool(finite):
        raise NonFiniteLoss(
            f"Non-finite weights or loss at {where}: they were not checkpointed, so the last good checkpoint is "
            "kept. Training stopped; lower train.lr, or check the data for NaN/inf values."
        )
