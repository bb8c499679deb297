"""Hydra plugin: `hydra/sweeper=optuna` as hydra-optuna-sweeper with a study that resumes (resumable_optuna_sweeper.py)."""
