"""`make mixers SCALE=smoke`: every inter-class mixer with and without the intra-class term (plus the baseline and
w-RA) over the scale's seeds, written as mixers.csv / mixers.md / mixers.png with paired gains checked by hand."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import stats

from helpers import ROOT
from synermix.config.presets import method_presets, synermix_variants
from synermix.results.figures.mixers import methods


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    out = tmp_path_factory.mktemp("mixers")
    proc = subprocess.run(
        [
            "make",
            "-s",
            "mixers",
            "SCALE=smoke",
            f"FIGURES_DIR={out}/figures",
            f"RUNS={out}/runs",
            "PY=" + sys.executable,
            "STAMP=",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out / "figures", proc.stdout


def test_make_mixers_writes_its_three_files_with_every_mixer(table):
    figures, stdout = table
    data = pd.read_csv(figures / "mixers.csv")
    assert list(data["method"]) == methods() and (data["n_seeds"] == 2).all()
    assert {"saliencymix", "resizemix", "fmix", "synermix_fmix"} <= set(data["method"])
    assert data["acc_mean"].between(0, 100).all() and data["ece_mean"].between(0, 1).all()
    assert data["cohesion_ratio_mean"].notna().all()
    markdown = (figures / "mixers.md").read_text()
    for combo, _, _ in synermix_variants():
        assert f"| {method_presets()[combo]['inter']} " in markdown
    assert "References — baseline:" in markdown and "intra-class term: acc gain (paired)" in stdout
    with Image.open(figures / "mixers.png") as image:
        assert image.format == "PNG" and image.size[0] > 800


def test_the_intra_terms_gain_is_the_paired_difference_by_seed(table):
    data = pd.read_csv(table[0] / "mixers.csv").set_index("method")
    for combo, alone, _ in synermix_variants():
        a = np.array([float(v) for v in data.loc[combo, "accs"].split(";")])
        b = np.array([float(v) for v in data.loc[alone, "accs"].split(";")])
        assert data.loc[combo, "intra_gain_diff"] == pytest.approx(float((a - b).mean()), abs=1e-3)
        if np.std(a - b) > 0:
            assert data.loc[combo, "intra_gain_p"] == pytest.approx(stats.ttest_rel(a, b).pvalue, rel=1e-2, abs=1e-3)
