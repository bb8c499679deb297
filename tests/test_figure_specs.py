"""Figure specs of every scale compose to valid configs, Fig. 1's numbers, and what the README says of the CSVs."""

import shutil
import subprocess
import sys

import pandas as pd
import pytest

from helpers import ROOT
from synermix.errors import ConfigError
from synermix.results.analysis import intra_class_pair_probability
from synermix.results.figures import fig1
from synermix.results.figures.driver import FIGURES
from synermix.results.figures.runs import FigureRuns
from synermix.results.figures.spec import SCALES, load_figure_spec
from synermix.run.validation import validate_config

SIX = ["baseline", "intra", "mixup", "manifold_mixup", "synermix", "synermix_mm"]


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
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "figures.py"), "fig1", "--scale", "smoke", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "fig1.png").exists() and (tmp_path / "fig1.csv").exists()


def test_plan_lists_the_paper_jobs_without_training(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "figures.py"),
            "fig5",
            "--scale",
            "paper",
            "--plan",
            "--runs",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 12 * 6 and all(line.startswith("python scripts/protocol.py ") for line in lines)
    assert sum("dataset=cifar100" in line and "model=resnet34" in line for line in lines) == 2 * 6
    assert not any(tmp_path.iterdir())


# smoke: `make test` composes and trains every smoke scenario in test_figures.py already; it is here for test-all
@pytest.mark.parametrize("scale", [s if s != "smoke" else pytest.param(s, marks=pytest.mark.slow) for s in SCALES])
def test_every_scenario_of_every_scale_composes_to_a_valid_config(scale):
    seen = set()  # figures share scenarios: each distinct job config is composed once
    for name in FIGURES[1:]:
        spec = load_figure_spec(name, scale)
        runs = FigureRuns(spec, runner=lambda cfg, run_dir: {})
        methods = spec.methods or ["intra"]
        for i, scenario in enumerate(spec.scenarios):
            # a method preset only sets method.*: every scenario with one method, every method with one scenario
            for method in methods if i == 0 else methods[:1]:
                root = ["dataset.root=/data"] if scale == "paper" else []  # paper datasets have no default root
                overrides = tuple(runs.overrides(scenario, method, root))
                if overrides in seen:
                    continue
                seen.add(overrides)
                cfg = runs.compose(overrides)
                validate_config(cfg)
                assert cfg.run_tag == scenario.tag
    assert seen


def test_cpu_scale_is_the_fashion_mnist_study_with_three_seeds():
    spec = load_figure_spec("fig5", "cpu")
    assert spec.methods == SIX and spec.seeds >= 3
    cfg = FigureRuns(spec, runner=None, plan=True).compose(spec.common)
    assert cfg.dataset.name == "fashion_mnist" and cfg.dataset.root == "/usr/share/datasets/fashion-mnist"


def test_spec_errors_name_the_file_and_the_value(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="must be one of"):
        load_figure_spec("fig5", "huge")
    fake = tmp_path / "scales"
    shutil.copytree(ROOT / "synermix" / "results" / "figures" / "scales", fake)
    text = (fake / "smoke.yaml").read_text().replace("fig5: {scenarios: [digits_16]}", "fig5: {scenarios: [digits_99]}")
    (fake / "smoke.yaml").write_text(text)
    monkeypatch.setattr("synermix.results.figures.spec.SCALES_DIR", fake)
    with pytest.raises(ConfigError) as info:
        load_figure_spec("fig5", "smoke")
    assert "smoke.yaml" in str(info.value) and "'digits_99'" in str(info.value) and "digits_16" in str(info.value)


def test_the_docs_figure_table_lists_the_csv_columns_the_code_writes():
    from synermix.results.figures import accuracy, beta, curves

    readme = (ROOT / "docs" / "protocol-and-figures.md").read_text()
    for columns in (accuracy.COLUMNS, beta.COLUMNS, curves.COLUMNS):
        assert f"`{', '.join(columns)}`" in readme
