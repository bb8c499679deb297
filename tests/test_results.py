"""Result tables: numbers equal a direct pandas computation; flags; Sec. 4.2.3 gains on hand values."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from helpers import ROOT
from helpers import write_summary as write
from synermix.results.report import format_table, gains, load_summaries, summarize


def test_summary_equals_direct_pandas_computation(tmp_path):
    rng = np.random.default_rng(0)
    for method in ("baseline", "intra", "synermix"):
        for bs in (16, 64):
            for seed in range(3):
                write(
                    tmp_path, method, seed, float(rng.uniform(50, 90)), bs=bs, beta=0 if method == "baseline" else 0.1
                )
    table = summarize(load_summaries(tmp_path)).set_index(["method", "batch_size"])
    raw = pd.DataFrame([json.loads(p.read_text()) for p in tmp_path.rglob("summary.json")])
    direct = raw.groupby(["method", "batch_size"])["final_acc"].agg(["mean", "std", "count"])
    for key, row in direct.iterrows():
        assert table.loc[key, "final_acc_mean"] == pytest.approx(row["mean"])
        assert table.loc[key, "final_acc_std"] == pytest.approx(row["std"])  # sample std, as pandas
        assert table.loc[key, "n_seeds"] == row["count"] and table.loc[key, "flag"] == "ok"


def test_flags_failed_incomplete_and_missing_seeds(tmp_path):
    write(tmp_path, "synermix", 0, 90.0)
    write(tmp_path, "synermix", 1, 92.0)
    write(tmp_path, "synermix", 2, None, status="running")
    write(tmp_path, "baseline", 0, 88.0, beta=0)
    write(tmp_path, "baseline", 1, None, status="failed", beta=0)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "error.txt").write_text("ConfigError: method.beta=2 is invalid\n")
    runs = load_summaries(tmp_path)
    table = summarize(runs).set_index("method")
    assert table.loc["synermix", "final_acc_mean"] == pytest.approx(91.0)
    assert table.loc["synermix", "flag"] == "1 incomplete"
    assert table.loc["baseline", "flag"] == "1 failed; missing seeds 2"
    assert list(summarize(runs)["method"]) == ["baseline", "synermix"]  # paper order
    view = format_table(summarize(runs)).set_index("method")
    assert view.loc["synermix", "final_acc (%)"] == "91.00 ± 1.41"
    assert view.loc["baseline", "final_acc (%)"] == "88.00"
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "report.py"), str(tmp_path)], capture_output=True, text=True, check=True
    ).stdout
    assert "method.beta=2 is invalid" in out and "missing seeds 2" in out
    assert (tmp_path / "results.csv").exists() and (tmp_path / "results.md").exists()


def test_gains_follow_section_4_2_3(tmp_path):
    accs = {
        "baseline": 70.0,
        "intra": 72.0,
        "mixup": 73.0,
        "manifold_mixup": 71.0,
        "synermix": 76.5,
        "synermix_mm": 72.5,
    }
    for method, acc in accs.items():
        write(tmp_path, method, 0, acc, beta=0.1)
    write(tmp_path, "synermix", 0, 80.0, beta=0.1, phase="val")  # validation runs do not count
    g = gains(summarize(load_summaries(tmp_path))).set_index("variant")
    m, mm = g.loc["M"], g.loc["MM"]
    assert (m.gain_vs_intra, m.gain_vs_inter, m.gain_vs_best) == pytest.approx((4.5, 3.5, 3.5))
    assert bool(m.synergy) is True  # 6.5 > 2 + 3
    assert (mm.gain_vs_intra, mm.gain_vs_inter, mm.gain_vs_best) == pytest.approx((0.5, 1.5, 0.5))
    assert bool(mm.synergy) is False  # 2.5 < 2 + 1


def test_runs_differing_in_any_identity_key_are_kept_apart(tmp_path):
    for seed in (0, 1):
        write(tmp_path, "baseline", seed, 80.0 + seed, beta=0, lr=0.1)
        write(tmp_path, "baseline", seed, 70.0 + seed, beta=0, lr=0.01)
    write(tmp_path, "intra", 0, 60.0, beta=0.5)  # an older summary without `lr`
    table = summarize(load_summaries(tmp_path))
    base = table[table["method"] == "baseline"].set_index("lr")
    assert base.loc[0.1, "final_acc_mean"] == pytest.approx(80.5) and base.loc[0.01, "final_acc_mean"] == pytest.approx(
        70.5
    )
    assert (base["n_seeds"] == 2).all() and (base["flag"] == "ok").all()
    view = format_table(table)
    assert "lr" in view.columns and "num_per_class" not in view.columns  # shown where it tells runs apart


def test_empty_folder_gives_empty_table(tmp_path):
    assert summarize(load_summaries(tmp_path)).empty
