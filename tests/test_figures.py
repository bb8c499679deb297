"""Figure targets write a PNG and the CSV of the plotted numbers."""
import subprocess
import sys

import pandas as pd
import pytest

from synermix.analysis import intra_class_pair_probability
from synermix.figures import fig1

from conftest import ROOT


def test_fig1_numbers_equal_the_closed_form_and_the_simulation_agrees(tmp_path):
    data = fig1.make(tmp_path, "smoke")
    saved = pd.read_csv(tmp_path / "fig1.csv")
    assert list(saved.columns) == ["num_classes", "batch_size", "analytic", "simulated", "trials"]
    for row in saved.itertuples():
        assert row.analytic == pytest.approx(intra_class_pair_probability(row.num_classes, row.batch_size))
        assert abs(row.simulated - row.analytic) < 0.02  # 500 shuffles per point
    point = saved[(saved.num_classes == 16) & (saved.batch_size == 32)].iloc[0]
    assert point.analytic == pytest.approx(0.0918, abs=1e-4)  # "approximately 9%" (Sec. 1)
    assert (tmp_path / "fig1.png").stat().st_size > 10_000
    assert len(data) == len(fig1.NUM_CLASSES) * len(fig1.BATCH_SIZES)


def test_make_fig1_target(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "figures.py"), "fig1", "--scale", "smoke",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "fig1.png").exists() and (tmp_path / "fig1.csv").exists()
