"""Sweeps that skip finished jobs and survive failing ones; the beta-selection protocol; launcher configs."""

import json
import subprocess
import sys

import pytest
from omegaconf import OmegaConf, open_dict

from helpers import ROOT, make_cfg
from synermix.config.identity import run_dir_of
from synermix.errors import SynerMixError
from synermix.results.protocol import run_config, run_protocol, select_beta
from synermix.results.report import load_summaries, summarize

TINY = ["train.epochs=1", "train.average_last=1", "dataset.max_per_class=12"]


def run_script(name, *args, check=True):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / name), *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_multirun_grid_then_rerun_skips_every_finished_job(tmp_path):
    args = ["-m", "method=synermix", "method.beta=0.1,0.4", "seed=0", *TINY, f"out_root={tmp_path}"]
    first = run_script("train.py", *args)
    assert "Sweep finished: 2 job(s), 2 complete, 0 failed." in first.stdout
    summaries = sorted(p.parent for p in tmp_path.rglob("summary.json"))
    assert summaries == sorted(
        run_dir_of(make_cfg("method=synermix", f"method.beta={b}", f"seed={s}", *TINY, f"out_root={tmp_path}"))
        for b in ("0.1", "0.4")
        for s in (0,)
    )
    assert summaries[0].parent.name.startswith("bs32_beta0.1_")  # readable name + config id
    second = run_script("train.py", *args)
    assert second.stdout.count("is already complete") == 2
    assert "epoch 1/1" not in second.stdout  # nothing retrained


def test_a_failing_job_is_recorded_and_the_rest_still_run(tmp_path):
    proc = run_script(
        "train.py", "-m", "method=synermix", "method.beta=0.1,1.5,0.4", *TINY, f"out_root={tmp_path}", check=False
    )
    assert proc.returncode == 1
    assert "Sweep finished: 3 job(s), 2 complete, 1 failed." in proc.stdout
    bad = run_dir_of(make_cfg("method=synermix", "method.beta=1.5", *TINY, f"out_root={tmp_path}"))
    assert not bad.exists() and not bad.parent.exists()  # refused before it trained: Hydra's empty folder removed
    assert "method.beta=1.5 is invalid" in proc.stdout and "(refused before it trained)" in proc.stdout
    assert len(list(tmp_path.rglob("summary.json"))) == 2
    assert "Traceback" not in proc.stderr


def test_select_beta_prefers_the_best_then_the_first_on_ties():
    grid = [0.05, 0.1, 0.2, 0.4]
    assert select_beta({0.05: 80.0, 0.1: 85.0, 0.2: 85.0, 0.4: None}, grid) == 0.1
    assert select_beta({0.05: 70.0, 0.1: 60.0, 0.2: 75.5, 0.4: 75.4}, grid) == 0.2
    with pytest.raises(SynerMixError, match="Every validation run"):
        select_beta({0.05: None}, [0.05])


def test_protocol_validates_the_grid_then_tests_the_best_beta_with_n_seeds(tmp_path):
    with_seeds = make_cfg("method=synermix", "train.batch_size=16", f"out_root={tmp_path}")
    with open_dict(with_seeds):
        with_seeds.seeds = 3
    val_acc = {0.05: 70.0, 0.1: 72.0, 0.2: 90.0, 0.4: 60.0}
    calls = []

    def runner(sub, run_dir):
        calls.append((sub.phase, sub.method.beta, sub.seed, run_dir))
        assert "seeds" not in sub and run_dir == run_dir_of(sub)
        acc = val_acc[sub.method.beta] if sub.phase == "val" else 50.0 + sub.seed
        return {"final_acc": acc}

    result = run_protocol(with_seeds, runner, tmp_path / "protocol")
    assert [c[:3] for c in calls] == [
        ("val", 0.05, 0),
        ("val", 0.1, 0),
        ("val", 0.2, 0),
        ("val", 0.4, 0),
        ("test", 0.2, 0),
        ("test", 0.2, 1),
        ("test", 0.2, 2),
    ]
    assert calls[4][3] == run_dir_of(
        make_cfg("method=synermix", "train.batch_size=16", "method.beta=0.2", f"out_root={tmp_path}")
    )
    assert calls[4][3].parent.name.startswith("bs16_beta0.2_") and calls[4][3].name == "test_seed0"
    assert result["chosen_beta"] == 0.2 and result["test_final_acc_mean"] == pytest.approx(51.0)
    saved = json.loads((tmp_path / "protocol" / "protocol.json").read_text())
    assert saved["chosen_beta"] == 0.2 and saved["val_final_acc"]["0.2"] == 90.0
    # a protocol step's config is exactly what train.py composes for the same overrides
    same = make_cfg("method=synermix", "train.batch_size=16", f"out_root={tmp_path}", "phase=val", "method.beta=0.4")
    assert OmegaConf.to_container(
        run_config(with_seeds, **{"phase": "val", "method.beta": 0.4})
    ) == OmegaConf.to_container(same)


def test_protocol_cli_end_to_end_and_resumable(tmp_path):
    args = ["method=synermix", "method.beta_grid=[0.1,0.4]", "seeds=1", *TINY, f"out_root={tmp_path}"]
    first = run_script("protocol.py", *args)
    assert "chosen beta:" in first.stdout
    chosen = float(first.stdout.split("chosen beta:")[1].split()[0])
    result = json.loads(next(tmp_path.rglob("protocol.json")).read_text())
    best = max(result["val_final_acc"], key=lambda b: result["val_final_acc"][b])
    assert chosen == result["chosen_beta"] == float(best)
    assert len(list(tmp_path.rglob("val_seed0/summary.json"))) == 2
    assert len(list(tmp_path.rglob("test_seed*/summary.json"))) == 1
    second = run_script("protocol.py", *args)
    assert second.stdout.count("is already complete") == 3


def test_method_grids_follow_the_paper():
    assert make_cfg("method=intra").method.beta_grid == [0.2, 0.4, 0.5, 0.7]
    assert make_cfg("method=synermix_mm").method.beta_grid == [0.05, 0.1, 0.2, 0.4]
    assert make_cfg("method=mixup").method.beta_grid == []


def test_slurm_and_joblib_launcher_configs_compose():
    slurm = run_script(
        "train.py",
        "hydra/launcher=slurm",
        "hydra.launcher.partition=gpu",
        "hydra.launcher.gpus_per_node=2",
        "hydra.launcher.timeout_min=60",
        "--cfg",
        "hydra",
    ).stdout
    assert "SlurmLauncher" in slurm and "partition: gpu" in slurm and "gpus_per_node: 2" in slurm
    assert "timeout_min: 60" in slurm
    joblib = run_script("train.py", "hydra/launcher=joblib", "--cfg", "hydra").stdout
    assert "JoblibLauncher" in joblib


def test_every_training_key_is_part_of_the_run_identity_and_neutral_keys_are_not():
    base = make_cfg("method=synermix")
    same = [
        make_cfg("method=synermix", k)
        for k in (
            "train.num_workers=4",
            "device=cpu",
            "train.log_interval=7",
            "train.checkpoint_every_steps=3",
            "out_root=outputs/runs",
            "train.keep_checkpoints=true",
            "train.lr=0.05",
        )
    ]
    assert all(run_dir_of(c) == run_dir_of(base) for c in same)  # lr=0.05 is digits' own default
    other = [
        make_cfg("method=synermix", k)
        for k in (
            "train.lr=0.01",
            "method.lam_mode=elem",
            "method.num_per_class=2",
            "method.alpha=0.5",
            "dataset.augment.cutout=0",
            "train.epochs=3",
        )
    ]
    dirs = {run_dir_of(c) for c in other}
    assert len(dirs) == len(other) and run_dir_of(base) not in dirs
    assert all(d.parent.name.startswith("bs32_beta0.1_") for d in dirs)


def test_a_sweep_over_a_key_outside_the_folder_name_trains_one_run_per_value(tmp_path):
    proc = run_script("train.py", "-m", "method=baseline", "train.lr=0.1,0.01", *TINY, f"out_root={tmp_path}")
    assert "Sweep finished: 2 job(s), 2 complete, 0 failed." in proc.stdout
    summaries = [json.loads(p.read_text()) for p in sorted(tmp_path.rglob("summary.json"))]
    assert sorted(s["lr"] for s in summaries) == [0.01, 0.1] and len({s["config_id"] for s in summaries}) == 2
    table = summarize(load_summaries(tmp_path))
    assert len(table) == 2 and (table["n_seeds"] == 1).all()


def test_protocol_json_lands_in_protocol_subdir_with_and_without_multirun():
    from hydra import compose, initialize_config_dir

    from helpers import CONFIG_DIR

    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR)):
        cfg = compose(config_name="protocol", overrides=["method=intra"], return_hydra_config=True)
    where = f"{cfg.out_root}/{cfg.protocol_subdir}"
    assert cfg.hydra.run.dir == where
    assert f"{cfg.hydra.sweep.dir}/{cfg.hydra.sweep.subdir}" == where
    assert "_protocol_" in cfg.protocol_subdir
