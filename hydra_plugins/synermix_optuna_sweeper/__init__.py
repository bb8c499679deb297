"""Hydra plugin: hydra-optuna-sweeper with a study that resumes (configs/hydra/sweeper/optuna.yaml selects it)."""
