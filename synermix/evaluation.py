"""One evaluation pass: accuracy, calibration, and the penultimate features of kept samples."""
from __future__ import annotations

import contextlib
from typing import NamedTuple, Optional

import numpy as np
import torch

from synermix.calibration import CalibrationTotals
from synermix.distributed import DistEnv
from synermix.errors import RunError


class NonFiniteLoss(RunError):
    """The training loss (or the weights, or the evaluation outputs) became NaN or infinite."""


def autocast_context(device: torch.device, amp: bool, dtype: str = "bfloat16"):
    """Autocast to `dtype` (bfloat16 or float16) on the device (CUDA, or CPU) when `amp`, otherwise a no-op context."""
    if amp:
        return torch.autocast(device.type, dtype=getattr(torch, dtype))
    return contextlib.nullcontext()


class Evaluation(NamedTuple):
    """One evaluation pass: top-1 accuracy (percent), ECE (fraction), NLL (nats), and the penultimate features
    and labels of the kept samples (None without `keep`)."""

    accuracy: float
    ece: float
    nll: float
    features: Optional[np.ndarray] = None
    labels: Optional[np.ndarray] = None


@torch.no_grad()
def evaluate(model: torch.nn.Module, stream, amp: bool = False, amp_dtype: str = "bfloat16",
             keep: Optional[np.ndarray] = None, dist_env: DistEnv = DistEnv()) -> Evaluation:
    """Accuracy and calibration of `model` on the evaluation `stream` (EvalStream), and the penultimate
    features and labels of the evaluation samples at positions `keep`.

    Under torchrun each process evaluates its part of the stream; counts and sums are added up and the kept
    features gathered, so every process returns what one process evaluating everything would."""
    model.eval()
    device = next(model.parameters()).device
    correct = torch.zeros((), dtype=torch.long, device=device)
    calibration = CalibrationTotals(device)
    kept_features, kept_labels, seen = [], [], getattr(stream, "start", 0)
    finite = torch.ones((), dtype=torch.long, device=device)
    for x, y in stream:
        with autocast_context(device, amp, amp_dtype):
            features = model.features(x)
            logits = model.head(features)
            correct += (logits.argmax(dim=1) == y).sum()
            finite &= (torch.isfinite(logits).all() & torch.isfinite(features).all()).long()
        calibration.update(logits, y)
        if keep is not None:
            rows = keep[(keep >= seen) & (keep < seen + len(y))] - seen
            kept_features.append(features[torch.as_tensor(rows, device=device)].float().cpu())
            kept_labels.append(y[torch.as_tensor(rows, device=device)].cpu())
        seen += len(y)
    bad = 1 - finite
    dist_env.sum_(correct, bad, *calibration.sums())
    if bool(bad):
        raise NonFiniteLoss(
            "The evaluation produced NaN or infinite outputs (the weights went non-finite in the last step of the "
            "epoch); the accuracy was not recorded and the last good checkpoint is kept. Lower train.lr, or check "
            "the data for NaN/inf values."
        )
    accuracy = 100.0 * int(correct) / len(stream)
    if keep is None:
        return Evaluation(accuracy, calibration.ece(), calibration.nll())
    parts = dist_env.gather_objects((torch.cat(kept_features).numpy(), torch.cat(kept_labels).numpy()))
    return Evaluation(accuracy, calibration.ece(), calibration.nll(),
                      np.concatenate([f for f, _ in parts]), np.concatenate([lab for _, lab in parts]))
