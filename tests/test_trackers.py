"""The logger group: W&B (offline) and MLflow (SQLite) receive exactly metrics.csv, read back through each
library; a resumed run continues the same tracked run without repeating an epoch; bad selections are refused."""

import csv

import pytest

from helpers import make_cfg
from helpers.hooks import CrashAfterEpoch
from helpers.trackers import wandb_history, wandb_run_ids
from synermix.errors import ConfigError
from synermix.run.training import run_training

RUN = ("method=synermix", "train.epochs=3", "train.average_last=2", "train.batch_size=64", "train.cohesion_samples=0")


def csv_columns(run_dir):
    """metrics.csv as {column: [(epoch, value), ...]} for the numeric cells."""
    with open(run_dir / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    columns = {}
    for row in rows:
        for key, value in row.items():
            if key != "epoch" and value != "":
                columns.setdefault(key, []).append((int(row["epoch"]), float(value)))
    return columns


@pytest.fixture(scope="module")
def resumed_run(tmp_path_factory):
    """A 3-epoch run with csv, wandb and mlflow, interrupted after epoch 1 and resumed to the end."""
    out = tmp_path_factory.mktemp("tracked")
    cfg = make_cfg(*RUN, "logger=[csv,wandb,mlflow]", f"out_root={out}")
    run_dir = out / "run"
    with pytest.raises(KeyboardInterrupt):
        run_training(cfg, run_dir, hooks=[CrashAfterEpoch(1)])
    summary = run_training(cfg, run_dir)
    return out, run_dir, summary


def test_wandb_offline_history_equals_metrics_csv_across_the_resume(resumed_run):
    _, run_dir, summary = resumed_run
    history = wandb_history(run_dir)
    assert [step for step, _ in history] == [1, 2, 3]  # one entry per epoch: the resume repeated none
    ids = wandb_run_ids(run_dir)
    assert len(ids) == 2 and len(set(ids)) == 1  # two attempts, one W&B run
    logged = {}
    for step, values in history:
        for key, value in values.items():
            logged.setdefault(key, []).append((step, value))
    assert logged == csv_columns(run_dir)
    assert summary["status"] == "complete" and not (run_dir / "tb").exists()  # tensorboard not selected


def test_mlflow_metrics_params_and_status_equal_the_run(resumed_run):
    from mlflow.tracking import MlflowClient

    out, run_dir, summary = resumed_run
    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("synermix")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1  # the resumed attempt continued the same MLflow run
    run = runs[0]
    assert run.info.run_name == "run" and run.info.status == "FINISHED"
    assert run.data.params["method.name"] == "synermix" and run.data.params["train.epochs"] == "3"
    for key, expected in csv_columns(run_dir).items():
        history = client.get_metric_history(run.info.run_id, key)
        assert sorted((m.step, m.value) for m in history) == expected, key
    assert run.data.metrics["final_acc"] == summary["final_acc"]


def test_unknown_tracker_and_bad_options_are_refused(tmp_path):
    with pytest.raises(
        ConfigError, match=r"logger.wandb.mode='sometimes' is invalid: it must be one of \['offline', 'online'"
    ):
        run_training(make_cfg(*RUN, "logger=[tensorboard,wandb]", "logger.wandb.mode=sometimes"), tmp_path)
    cfg = make_cfg(*RUN)
    cfg.logger = {"neptune": {}}
    with pytest.raises(ConfigError, match=r"logger=\['neptune'\] is invalid.*tensorboard,wandb,mlflow,csv.*_target_"):
        run_training(cfg, tmp_path)
    assert not (tmp_path / "metrics.csv").exists()
