"""Resumable Optuna studies (the beta search): one SQLite study per search; re-running continues it.

A process killed mid-search leaves its trials in state RUNNING. On the next start those trials are closed
as failed and queued again with the same parameters, so they re-run in (and resume) the same run
directories; the trials still owed are `n_trials` minus the trials that really finished. Both the Hydra
sweeper (`hydra/sweeper=optuna`) and `scripts/protocol.py search=optuna` go through here.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Optional, Sequence

INTERRUPTED = "synermix_interrupted_trials"  # study user attribute: numbers of trials closed by a resume
SQLITE = "sqlite:///"


def sqlite_url(path: Path) -> str:
    """The storage URL of an SQLite file (`open_study` creates its folder)."""
    return SQLITE + str(Path(path).resolve())


def open_study(
    storage: Optional[str], name: Optional[str], directions: Sequence[str] = ("maximize",), sampler: Any = None
):
    """Create the study `name` in `storage`, or load it if it exists (an SQLite file's folder is created)."""
    import optuna  # optuna: only the Optuna search

    if storage and str(storage).startswith(SQLITE):
        Path(str(storage)[len(SQLITE) :]).parent.mkdir(parents=True, exist_ok=True)
    return optuna.create_study(
        study_name=name, storage=storage, sampler=sampler, directions=list(directions), load_if_exists=True
    )


def resume(study, n_trials: int) -> int:
    """Close the trials an interrupted process left running and queue them again (same parameters);
    return how many of `n_trials` remain to be run."""
    from optuna.trial import TrialState  # optuna: only the Optuna search

    interrupted = set(study.user_attrs.get(INTERRUPTED, []))
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        with warnings.catch_warnings():  # enqueue_trial is marked experimental in optuna 2.x
            warnings.simplefilter("ignore")
            study.enqueue_trial(dict(trial.params))
        study.tell(trial.number, state=TrialState.FAIL)
        interrupted.add(trial.number)
    if interrupted:
        study.set_user_attr(INTERRUPTED, sorted(interrupted))
    finished = (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)
    done = [t for t in study.get_trials(deepcopy=False, states=finished) if t.number not in interrupted]
    return max(0, n_trials - len(done))


def completed_trials(study) -> list:
    """The study's completed trials (value and parameters), in trial order."""
    from optuna.trial import TrialState  # optuna: only the Optuna search

    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
