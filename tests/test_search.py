"""The resumable Optuna beta search: scripts/protocol.py search=optuna and train.py -m hydra/sweeper=optuna."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
import yaml
from hydra import compose, initialize_config_dir
from optuna.trial import TrialState

from helpers import CONFIG_DIR, ROOT, TESTS, hook_override
from synermix.errors import ConfigError, Interrupted
from synermix.results.protocol import run_protocol
from synermix.results.search import INTERRUPTED, sqlite_url

TINY = ["train.epochs=2", "train.average_last=1", "dataset.max_per_class=12", "train.cohesion_samples=0"]


def protocol_cfg(*overrides):
    with initialize_config_dir(version_base="1.3", config_dir=CONFIG_DIR):
        return compose(config_name="protocol", overrides=["method=synermix", "search=optuna", *overrides])


def val_score(beta):
    return 90.0 - 100.0 * math.log(beta / 0.1) ** 2  # best at beta = 0.1


def test_protocol_optuna_search_resumes_an_interrupted_study_and_tests_its_best_beta(tmp_path):
    cfg = protocol_cfg("optuna.n_trials=4", "seeds=2", f"out_root={tmp_path}")
    calls, interrupt_at = [], [3]

    def runner(sub, run_dir):
        calls.append((sub.phase, sub.method.beta, sub.seed))
        if sub.phase == "val" and len(calls) == interrupt_at[0]:
            raise Interrupted("stopped", signal.SIGTERM)
        return {"final_acc": val_score(sub.method.beta) if sub.phase == "val" else 50.0 + sub.seed}

    out = tmp_path / "protocol"
    with pytest.raises(Interrupted):
        run_protocol(cfg, runner, out)
    killed_beta = calls[-1][1]
    study = optuna.load_study(study_name="protocol", storage=sqlite_url(out / "optuna.db"))
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.RUNNING]

    calls.clear()
    interrupt_at[0] = 0
    result = run_protocol(cfg, runner, out)
    val = [c for c in calls if c[0] == "val"]
    assert len(val) == 2 and val[0][1] == killed_beta  # the interrupted trial re-runs first, same beta (same run dir)
    study = optuna.load_study(study_name="protocol", storage=sqlite_url(out / "optuna.db"))
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 4 and study.user_attrs[INTERRUPTED] == [2]
    best = max(complete, key=lambda t: t.value)
    assert result["chosen_beta"] == best.params["method.beta"] == study.best_params["method.beta"]
    assert [c for c in calls if c[0] == "test"] == [
        ("test", result["chosen_beta"], 0),
        ("test", result["chosen_beta"], 1),
    ]
    saved = json.loads((out / "protocol_optuna.json").read_text())
    assert (
        saved["search"] == "optuna"
        and saved["chosen_beta"] == result["chosen_beta"]
        and len(saved["val_final_acc"]) == 4
    )
    assert not (out / "protocol.json").exists()  # the grid protocol's result is a different file

    calls.clear()
    run_protocol(cfg, runner, out)  # finished: no validation run again
    assert [c[0] for c in calls] == ["test", "test"]


def test_protocol_optuna_ranges_are_checked(tmp_path):
    cfg = protocol_cfg("optuna.beta=[0.5,0.1]", f"out_root={tmp_path}")
    with pytest.raises(ConfigError, match=r"optuna.beta=.* must be \[low, high\] with 0 < low < high"):
        run_protocol(cfg, lambda sub, run_dir: {"final_acc": 1.0}, tmp_path)


def sweep(out, *extra, **popen):
    args = [
        sys.executable,
        str(ROOT / "scripts" / "train.py"),
        "-m",
        "hydra/sweeper=optuna",
        "hydra.sweeper.n_trials=3",
        *TINY,
        f"out_root={out}",
        *extra,
    ]
    return subprocess.Popen(
        args,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(TESTS)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def test_hydra_sweeper_optuna_is_the_resumable_one_with_synermix_defaults():
    with initialize_config_dir(version_base="1.3", config_dir=CONFIG_DIR):
        cfg = compose(config_name="train", overrides=["hydra/sweeper=optuna"], return_hydra_config=True)
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("ResumableOptunaSweeper") and sweeper.direction == "maximize"
    assert sweeper.storage == f"sqlite:///{cfg.hydra.sweep.dir}/optuna.db" and sweeper.sampler.seed == cfg.seed
    assert dict(sweeper.params) == {"phase": "val", "method.beta": "tag(log, interval(0.02, 0.8))"}
    assert sweeper.study_name.startswith("digits-cifar_resnet-synermix-bs32-")


@pytest.mark.slow  # ~25 s: three CLI processes; the resume logic itself is tested above, in process
def test_hydra_optuna_sweep_killed_mid_trial_resumes_and_reports_the_best_trial(tmp_path):
    out = tmp_path / "runs"
    proc = sweep(out, "train.checkpoint_every_steps=1", hook_override("pause", "PauseAt", epoch=2, step=1))
    deadline = time.monotonic() + 120
    while not list(out.rglob("paused")):  # the first trial, mid-way through its second epoch
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    killed_dir = next(out.rglob("paused")).parent

    again = sweep(out)
    stdout, stderr = again.communicate(timeout=300)
    assert again.returncode == 0, stderr[-3000:]
    assert "Sweep finished: 3 job(s), 3 complete, 0 failed." in stdout
    summaries = {p.parent: json.loads(p.read_text()) for p in out.rglob("summary.json")}
    assert len(summaries) == 3 and killed_dir in summaries  # the killed trial resumed in its own run dir
    assert all(s["phase"] == "val" and s["status"] == "complete" for s in summaries.values())
    best = yaml.safe_load((out / "optimization_results.yaml").read_text())
    top = max(summaries.values(), key=lambda s: s["final_acc"])
    assert best["best_params"]["method.beta"] == top["beta"] and best["best_value"] == top["final_acc"]
    (study,) = optuna.get_all_study_summaries(sqlite_url(out / "optuna.db"))
    assert study.study_name.startswith("digits-cifar_resnet-synermix-bs32-") and study.n_trials == 4  # 3 + the killed
