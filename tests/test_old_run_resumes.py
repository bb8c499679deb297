"""A run directory written by the code before the layered package (commit 9433a78: digits, a run stopped by SIGTERM
at epoch 2, step 2; tests/data/run_before_layers/) resumes with today's code: the same config id, one load of its
checkpoint, its recorded epoch kept as it was."""

import csv
import json
import shutil

from helpers import TESTS, make_cfg
from synermix.config.identity import run_identity
from synermix.run.training import run_training

OLD_RUN = TESTS / "data" / "run_before_layers"
# the command that trained it (its SIGTERM hook left out: hooks may change between a run and its resumption)
COMMAND = (
    "dataset=digits",
    "dataset.max_per_class=10",
    "method=synermix",
    "model.depth=8",
    "model.width=8",
    "train.epochs=2",
    "train.average_last=1",
    "train.batch_size=16",
    "train.cohesion_samples=40",
    "train.checkpoint_every_steps=1",
    "seed=5",
    "device=cpu",
    "logger=csv",
)


def rows(run_dir):
    with open(run_dir / "metrics.csv") as f:
        return list(csv.DictReader(f))


def test_a_run_directory_of_the_code_before_resumes_with_the_same_config_id(tmp_path, caplog):
    run_dir = tmp_path / "run"
    shutil.copytree(OLD_RUN, run_dir)
    before = json.loads((OLD_RUN / "summary.json").read_text())
    cfg = make_cfg(*COMMAND)
    assert run_identity(cfg)["config_id"] == before["config_id"]
    with caplog.at_level("INFO", logger="synermix"):
        summary = run_training(cfg, run_dir)
    assert "at epoch 2, step 2" in caplog.text  # resumed from its checkpoint, not restarted
    assert summary["status"] == "complete" and summary["config_id"] == before["config_id"]
    after = rows(run_dir)
    assert len(after) == 2 and after[0] == rows(OLD_RUN)[0]  # the recorded epoch, byte for byte
    assert 0 <= summary["final_acc"] <= 100 and summary["final_acc"] == float(after[1]["eval_acc"])
    assert summary["final_train_loss"] == float(after[1]["train_loss"])  # a final_* of every numeric column
