"""Calibration of a classifier on an evaluation set: expected calibration error and negative log-likelihood."""

from __future__ import annotations

import torch
import torch.nn.functional as F

ECE_BINS = 15  # equal-width confidence bins, as Guo et al. (2017) and most mixup papers report


class CalibrationTotals:
    """Running sums over evaluation batches from which ECE and NLL are read at the end.

    ECE = sum_b |accuracy_b - confidence_b| * n_b / N over `bins` equal-width bins of the top-1 softmax
    probability, bin b holding confidences in (b/bins, (b+1)/bins] (the first bin also holds 0). NLL is the
    mean cross-entropy of the true class. Sums stay on the logits' device (one host read at the end)."""

    def __init__(self, device: torch.device, bins: int = ECE_BINS) -> None:
        self.bins = bins
        dtype = torch.float32 if torch.device(device).type == "mps" else torch.float64
        self.inner_edges = torch.linspace(0, 1, bins + 1, device=device, dtype=dtype)[1:-1]
        self.count = torch.zeros(bins, device=device, dtype=dtype)
        self.confidence = torch.zeros(bins, device=device, dtype=dtype)
        self.correct = torch.zeros(bins, device=device, dtype=dtype)
        self.nll_sum = torch.zeros((), device=device, dtype=dtype)

    def update(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """Add one batch of logits (N, C) and integer labels (N,)."""
        logits = logits.float()
        confidence, predicted = logits.softmax(dim=1).max(dim=1)
        confidence = confidence.to(self.count.dtype)
        index = torch.bucketize(confidence, self.inner_edges, right=False)
        self.count.index_add_(0, index, torch.ones_like(confidence))
        self.confidence.index_add_(0, index, confidence)
        self.correct.index_add_(0, index, (predicted == labels).to(self.count.dtype))
        self.nll_sum += F.cross_entropy(logits, labels, reduction="sum").to(self.nll_sum.dtype)

    def sums(self) -> tuple:
        """The running sums (bin counts, confidences, correct, NLL), e.g. to add up over processes in place."""
        return self.count, self.confidence, self.correct, self.nll_sum

    def ece(self) -> float:
        """Expected calibration error, as a fraction in [0, 1]."""
        total = self.count.sum()
        return float((self.correct - self.confidence).abs().sum() / total) if total > 0 else float("nan")

    def nll(self) -> float:
        """Mean negative log-likelihood (nats per sample)."""
        total = self.count.sum()
        return float(self.nll_sum / total) if total > 0 else float("nan")
