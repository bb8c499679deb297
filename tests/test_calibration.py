"""Expected calibration error and NLL: a hand-computed case, torchmetrics' implementation, and evaluate()."""

import math

import pytest
import torch
import torch.nn.functional as F
from torchmetrics.functional.classification import multiclass_calibration_error

from helpers import tiny_model
from synermix.train.calibration import CalibrationTotals
from synermix.train.evaluation import evaluate


def totals_of(logits, labels, batch=None):
    totals = CalibrationTotals(torch.device("cpu"))
    for start in range(0, len(labels), batch or len(labels)):
        totals.update(logits[start : start + (batch or len(labels))], labels[start : start + (batch or len(labels))])
    return totals


def test_ece_and_nll_on_a_hand_computed_case():
    probs = torch.tensor([[0.9, 0.05, 0.05], [0.9, 0.05, 0.05], [0.5, 0.3, 0.2], [0.2, 0.7, 0.1]], dtype=torch.float64)
    labels = torch.tensor([0, 1, 0, 2])
    totals = totals_of(probs.log(), labels)
    # confidences 0.9, 0.9 (bin 13: accuracy 1/2), 0.5 (bin 7: right), 0.7 (bin 10: wrong):
    # (|0.5 - 0.9| * 2 + |1 - 0.5| + |0 - 0.7|) / 4
    assert totals.ece() == pytest.approx((0.8 + 0.5 + 0.7) / 4, abs=1e-6)
    assert totals.nll() == pytest.approx(
        -(math.log(0.9) + math.log(0.05) + math.log(0.5) + math.log(0.1)) / 4, abs=1e-6
    )


def test_perfectly_confident_and_right_is_calibrated():
    logits = torch.tensor([[100.0, 0.0], [0.0, 100.0]])  # softmax saturates to confidence 1.0: the last bin
    totals = totals_of(logits, torch.tensor([0, 1]))
    assert totals.ece() == 0.0 and totals.nll() == pytest.approx(0.0, abs=1e-6)
    assert totals.count[-1] == 2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ece_matches_torchmetrics_and_nll_matches_cross_entropy(seed):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(500, 10, generator=gen) * (1 + 3 * seed)
    labels = torch.where(
        torch.rand(500, generator=gen) < 0.6, logits.argmax(1), torch.randint(0, 10, (500,), generator=gen)
    )
    totals = totals_of(logits, labels, batch=64)  # summed over batches = computed at once
    expected = multiclass_calibration_error(logits.softmax(1), labels, num_classes=10, n_bins=15, norm="l1")
    assert totals.ece() == pytest.approx(float(expected), abs=1e-5)
    assert totals.nll() == pytest.approx(float(F.cross_entropy(logits, labels)), rel=1e-5)


class _Batches:
    """An evaluation stream over fixed batches (what EvalStream yields)."""

    def __init__(self, x, y, batch):
        self.x, self.y, self.batch = x, y, batch

    def __len__(self):
        return len(self.y)

    def __iter__(self):
        for i in range(0, len(self.y), self.batch):
            yield self.x[i : i + self.batch], self.y[i : i + self.batch]


def test_evaluate_reports_calibration_of_the_model_outputs():
    model = tiny_model(classes=3)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(90, 4, generator=gen), torch.randint(0, 3, (90,), generator=gen)
    result = evaluate(model, _Batches(x, y, batch=32))
    with torch.no_grad():
        logits = model.head(model.features(x))
    assert result.accuracy == pytest.approx(100 * float((logits.argmax(1) == y).float().mean()))
    expected_ece = multiclass_calibration_error(logits.softmax(1), y, num_classes=3, n_bins=15, norm="l1")
    assert result.ece == pytest.approx(float(expected_ece), abs=1e-5)
    assert result.nll == pytest.approx(float(F.cross_entropy(logits, y)), rel=1e-5)
    assert result.features is None and result.labels is None
