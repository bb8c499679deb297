"""One training run: the composition root (config -> data, model, loss, trainer, run directory), its validation,
recording and trackers."""
