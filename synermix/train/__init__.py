"""The training loop: Trainer, hooks, the per-epoch evaluation, recipes (optimizers, schedules, EMA), distributed."""
