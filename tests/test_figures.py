"""Figure targets write a PNG and the CSV of the plotted numbers."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf
from scipy import stats

from helpers import ROOT
from synermix.errors import ConfigError
from synermix.results.figures import accuracy
from synermix.results.figures.driver import FIGURES, make_figure
from synermix.results.figures.runs import FigureRuns
from synermix.results.figures.spec import load_figure_spec
from synermix.run.training import run_training
from synermix.run.validation import validate_config
from synermix.train.cohesion import COHESION_COLUMNS, cohesion_metrics

# ---- every figure target at SCALE=smoke, sharing one set of runs -------------------------------------------


SIX = ["baseline", "intra", "mixup", "manifold_mixup", "synermix", "synermix_mm"]
NEEDED_COLUMNS = {
    "fig1": {"num_classes", "batch_size", "analytic", "simulated"},
    "fig2": {"method", "label", "tsne_x", "tsne_y"},
    "fig5": {
        "scenario",
        "method",
        "beta",
        "n_seeds",
        "acc_mean",
        "acc_std",
        "accs",
        "vs_baseline_diff",
        "vs_baseline_p",
        "vs_better_component_significant",
    },
    "fig6": {"scenario", "method", "beta", "n_seeds", "acc_mean", "acc_std", "vs_baseline_ci_low"},
    "fig7": {"scenario", "series", "epoch", "acc_mean", "acc_std", "cohesion_ratio_mean"},
    "fig8": {"method", "label", "tsne_x", "tsne_y"},
    "fig9": {"scenario", "method", "acc_mean", "acc_std", "vs_better_component_pairs"},
    "fig10": {"scenario", "method", "beta", "val_acc"},
    "fig11": {"scenario", "series", "epoch", "acc_mean", "acc_std"},
    "fig12": {"scenario", "method", "beta", "acc_mean", "acc_std", "vs_original_views_diff"},
}


@pytest.fixture(scope="session")  # once per test process (`make test`: one xdist worker runs this file)
def smoke(tmp_path_factory):
    """`make figures SCALE=smoke` once (the real Makefile target), into a temporary folder."""
    base = tmp_path_factory.mktemp("figures")
    out, runs = base / "figures", base / "runs"
    proc = subprocess.run(
        [
            "make",
            "-s",
            "figures",
            "SCALE=smoke",
            f"FIGURES_DIR={out}",
            f"RUNS={runs}",
            f"PY={sys.executable}",
            "STAMP=",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, runs, proc.stdout


def csv(smoke, name):
    return pd.read_csv(smoke[0] / f"{name}.csv")


def run_config_of(run_dir):
    return OmegaConf.load(Path(run_dir) / "config.yaml")


def only(base, pattern):
    """The one folder under `base` matching `pattern` (run folders end in their config id)."""
    found = list(Path(base).glob(pattern))
    assert len(found) == 1, (pattern, found)
    return found[0]


@pytest.mark.parametrize("name", FIGURES)
def test_every_figure_target_writes_a_png_and_the_csv_its_plot_needs(smoke, name):
    png = smoke[0] / f"{name}.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    data = csv(smoke, name)
    assert len(data) > 0 and NEEDED_COLUMNS[name] <= set(data.columns)
    for column in ("acc_mean", "val_acc"):
        if column in data:
            assert data[column].between(0, 100).all()
    assert f"{name}: " in smoke[2]


def test_fig5_is_six_methods_over_the_seeds_with_beta_from_validation(smoke):
    data = csv(smoke, "fig5")
    assert list(data["method"]) == SIX and (data["n_seeds"] == 2).all()
    row = data.iloc[1]  # the printed table carries the same numbers
    line = next(line for line in smoke[2].splitlines() if "| w-RA (intra)" in line)
    assert row.label in line and f"{row.acc_mean:.2f} ± {row.acc_std:.2f}" in line
    for row in data.itertuples():
        accs = [float(a) for a in row.accs.split(";")]
        assert row.acc_mean == pytest.approx(np.mean(accs)) and row.acc_std == pytest.approx(np.std(accs, ddof=1))
    accs = {r.method: np.array([float(a) for a in r.accs.split(";")]) for r in data.itertuples()}
    for row in data.itertuples():  # paired by seed with the baseline: scipy's paired t-test as the reference
        if row.method == "baseline":
            assert row.vs_baseline_pairs == 0 and pd.isna(row.vs_baseline_diff)  # "n/a", which pandas reads as NaN
            continue
        assert row.vs_baseline_pairs == 2
        assert float(row.vs_baseline_diff) == pytest.approx(np.mean(accs[row.method] - accs["baseline"]))
        if np.ptp(accs[row.method] - accs["baseline"]) > 0:
            assert float(row.vs_baseline_p) == pytest.approx(stats.ttest_rel(accs[row.method], accs["baseline"]).pvalue)
    for combo, inter in (("synermix", "mixup"), ("synermix_mm", "manifold_mixup")):
        row = data[data["method"] == combo].iloc[0]
        better = max(("intra", inter), key=lambda m: accs[m].mean())
        assert float(row.vs_better_component_diff) == pytest.approx(np.mean(accs[combo] - accs[better]))
    assert (data[~data["method"].isin(["synermix", "synermix_mm"])]["vs_better_component_pairs"] == 0).all()
    assert "vs baseline (paired)" in smoke[2]
    runs = smoke[1] / "digits" / "cifar_resnet"
    for method in ("intra", "synermix", "synermix_mm"):
        protocol = json.loads((only(runs / method, "bs16_protocol_*") / "protocol.json").read_text())
        val = {float(b): a for b, a in protocol["val_final_acc"].items()}
        best = max(val.values())
        chosen = float(data.loc[data["method"] == method, "beta"].iloc[0])
        assert chosen == protocol["chosen_beta"] and val[chosen] == best
        assert sorted(val) == sorted(OmegaConf.load(ROOT / "configs" / "method" / f"{method}.yaml").beta_grid)


def test_fig7_curves_end_where_fig5_bars_are(smoke):
    bars, curves = csv(smoke, "fig5"), csv(smoke, "fig7")
    last = curves[curves["epoch"] == curves["epoch"].max()]
    assert sorted(last["method"]) == sorted(SIX) and set(curves["epoch"]) == {1, 2}
    for row in bars.itertuples():  # average_last=1 at smoke scale: final accuracy = last epoch's
        assert last.loc[last["method"] == row.method, "acc_mean"].iloc[0] == pytest.approx(row.acc_mean)


def test_fig8_scores_are_the_cohesion_of_the_plotted_features(smoke):
    points, scores = csv(smoke, "fig8"), pd.read_csv(smoke[0] / "fig8_scores.csv")
    assert list(scores["method"]) == SIX and set(COHESION_COLUMNS) <= set(scores.columns)
    for row in scores.itertuples():
        run_dir = smoke[1] / "digits" / "cifar_resnet" / row.method
        run_dir = next(
            p
            for p in run_dir.glob("bs16_beta*/test_seed0")
            if (p / "features.npz").exists()
            and json.loads((p / "summary.json").read_text())["final_acc"] == row.final_acc
        )
        saved = np.load(run_dir / "features.npz")
        expected = cohesion_metrics(saved["features"], saved["labels"])
        for key in COHESION_COLUMNS:
            assert getattr(row, key) == pytest.approx(expected[key])
        last_epoch = pd.read_csv(run_dir / "metrics.csv").iloc[-1]  # the run logged the same numbers
        assert last_epoch["silhouette"] == pytest.approx(row.silhouette, rel=1e-6)
        mine = points[points["method"] == row.method]
        assert len(mine) == row.n_points == 60 and list(mine["label"]) == list(saved["labels"])
        assert np.isfinite(mine[["tsne_x", "tsne_y"]].to_numpy()).all()
    assert list(csv(smoke, "fig2")["method"].unique()) == ["baseline", "manifold_mixup", "intra"]


def test_fig10_beta_zero_is_the_method_without_its_intra_term_and_reuses_the_protocols_runs(smoke):
    data = csv(smoke, "fig10")
    zero = data[data["beta"] == 0.0].set_index("method")["run_method"].to_dict()
    assert zero == {"intra": "baseline", "synermix": "mixup", "synermix_mm": "manifold_mixup"}
    protocol = json.loads((only(smoke[1], "digits/cifar_resnet/intra/bs16_protocol_*") / "protocol.json").read_text())
    for beta, acc in protocol["val_final_acc"].items():
        row = data[(data["method"] == "intra") & (data["beta"] == float(beta))]
        assert row["val_acc"].iloc[0] == pytest.approx(acc)
    val_runs = sorted((smoke[1] / "digits/cifar_resnet/intra").glob("*/val_seed0"))
    assert len(val_runs) == 4  # the protocol's four grid runs, not a second copy


def test_fig11_varies_the_number_of_interpolations_in_runs_kept_apart(smoke):
    data = csv(smoke, "fig11")
    assert list(dict.fromkeys(data["series"])) == ["P=1", "P=2", "P=3", "P=5"]
    for p in (2, 3, 5):
        run = only(smoke[1], f"digits/cifar_resnet/intra/bs16_beta0.5_P{p}_*/test_seed0")
        assert run_config_of(run).method.num_per_class == p
    assert (
        run_config_of(only(smoke[1], "digits/cifar_resnet/intra/bs16_beta0.5_????????/test_seed0")).method.num_per_class
        == 1
    )


def test_fig12_compares_original_and_augmented_views_with_and_without_cutout(smoke):
    data = csv(smoke, "fig12")
    assert len(data) == 2 * 2 * 2 and set(data["method"]) == {"intra", "intra_aug"}
    assert set(data["beta"]) == {0.1, 0.5} and (data["n_seeds"] == 1).all()  # smoke: one seed
    paired = data.set_index("method")["vs_original_views_pairs"]  # one seed pairs up: no statistics, "n/a"
    assert (paired["intra_aug"] == 1).all() and (paired["intra"] == 0).all()
    assert data["vs_original_views_diff"].isna().all() and "n/a (1 pair)" in smoke[2]
    cut = run_config_of(only(smoke[1], "digits/cifar_resnet/intra_aug/bs16_beta0.1_nocutout_*/test_seed0"))
    assert cut.dataset.augment.cutout == 0 and cut.method.intra == "augmented"
    assert (
        run_config_of(
            only(smoke[1], "digits/cifar_resnet/intra_aug/bs16_beta0.1_????????/test_seed0")
        ).dataset.augment.cutout
        > 0
    )


def test_fig6_and_fig9_use_their_own_batch_size_and_architectures(smoke):
    assert set(csv(smoke, "fig6")["scenario"]) == {"digits_8"}
    assert run_config_of(only(smoke[1], "digits/cifar_resnet/baseline/bs8_beta0_*/test_seed0")).train.batch_size == 8
    models = {p.parent.parent.parent.parent.name for p in smoke[1].glob("digits/*/*/*/test_seed0/summary.json")}
    assert {"mobilenetv3_large", "swin_t", "resnet18"} <= models


def test_a_second_run_reuses_every_run_and_redraws_the_same_numbers(smoke, tmp_path):
    before = {p: p.stat().st_mtime_ns for p in smoke[1].rglob("weights.pt")}
    assert before and not list(smoke[1].rglob("checkpoint*.pt"))  # a finished run keeps its final weights only
    make_figure("fig5", "smoke", tmp_path, smoke[1])
    assert (tmp_path / "fig5.csv").read_text() == (smoke[0] / "fig5.csv").read_text()
    assert {p: p.stat().st_mtime_ns for p in smoke[1].rglob("weights.pt")} == before


def test_failed_runs_are_reported_not_drawn_as_numbers(tmp_path):
    def failing(cfg, run_dir):  # a batch larger than the training set: run_training records a RunError
        return run_training(OmegaConf.merge(cfg, {"train": {"batch_size": 100_000}}), run_dir)

    spec = load_figure_spec("fig5", "smoke", tmp_path)
    spec.select_beta = False
    runs = FigureRuns(spec, runner=failing)
    data = accuracy.table(runs)
    assert (data["n_seeds"] == 0).all() and data["acc_mean"].isna().all()
    assert len(runs.failures) == 6 * 2
    run = only(tmp_path, "digits/cifar_resnet/baseline/bs16_beta0_*/test_seed0")
    assert (run / "error.txt").read_text().startswith("RunError")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "failed" and "Cannot build training batches" in summary["error"]


def test_run_tag_must_not_leave_the_run_folder(cfg_factory):
    with pytest.raises(ConfigError, match="run_tag"):
        validate_config(cfg_factory("run_tag=a/b"))


def test_paper_scale_without_data_stops_before_any_run_and_says_how(tmp_path):
    with pytest.raises(ConfigError) as info:
        make_figure("fig5", "paper", tmp_path / "figs", tmp_path / "runs")
    assert "dataset.root" in str(info.value) and "cifar100" in str(info.value)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "figs").exists()
    runs = FigureRuns(load_figure_spec("fig9", "paper"), plan=True, data_root=Path("/data"))
    assert "dataset.root=/data/oxford_pet" in runs.overrides(runs.spec.scenarios[-1], "intra")
