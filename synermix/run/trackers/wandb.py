"""Weights & Biases: offline by default (the run is written under the run directory's wandb/ and uploaded later
with `wandb sync`); `logger.wandb.mode=online` logs live where the machine can reach the server."""

from __future__ import annotations

import netrc
import os
import uuid
from typing import Any, Dict, List, Optional, Sequence
from urllib.parse import urlparse

from synermix.config.checks import Check, one_of
from synermix.run.trackers import TrackedRun, Tracker, metric_values, summary_results

MODES = ("offline", "online", "disabled")
CHECKS = (
    Check("mode", one_of(MODES), f"one of {list(MODES)} (offline: no network; `wandb sync` uploads later)"),
    Check("project", lambda v: isinstance(v, str) and v.strip() != "", "a W&B project name"),
)
EXIT_CODES = {"complete": 0, "interrupted": 255, "failed": 1}


def _has_credentials() -> bool:
    """Whether W&B would find an API key without asking: WANDB_API_KEY, an identity token file, or ~/.netrc's entry
    for the server (`wandb login` writes it)."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or ""
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def setup_problems(options) -> List[str]:
    """An online run that W&B could not log in for (no API key): refused before the run starts, where wandb.init
    would fail after waiting for it."""
    if options.get("mode", "offline") != "online" or _has_credentials():
        return []
    return [
        "logger.wandb.mode=online needs a W&B API key, and none is set (no WANDB_API_KEY, no `wandb login` entry "
        "in ~/.netrc); run `wandb login` or set WANDB_API_KEY, or keep logger.wandb.mode=offline (the default; "
        "`wandb sync` uploads later)"
    ]


class WandbTracker(Tracker):
    """One W&B run per run directory: its id is kept in trackers.json, so a resumed run continues it."""

    SETUP_HINT = (
        "Set logger.wandb.mode=offline (the default), or make W&B reachable and logged in (`wandb login`, "
        "WANDB_API_KEY)"
    )

    def __init__(
        self,
        project: str = "synermix",
        entity: Optional[str] = None,
        mode: str = "offline",
        group: Optional[str] = None,
        tags: Sequence[str] = (),
    ) -> None:
        self.options: Dict[str, Any] = dict(
            project=project, entity=entity, mode=mode, group=group, tags=list(tags) or None
        )
        self.run: Any = None

    def start(self, run: TrackedRun) -> Dict[str, Any]:
        """Open the W&B run (resumed by id after an interruption), with the resolved config."""
        import wandb  # the tracker's client: only runs that select it

        run_id = run.saved.get("id") or uuid.uuid4().hex[:16]
        self.run = wandb.init(
            name=run.name,
            id=run_id,
            resume="allow",
            dir=str(run.path),
            config=run.config,
            reinit="create_new",
            **self.options,
        )
        return {"id": run_id}

    def log_epoch(self, row: Dict[str, Any]) -> None:
        """The row's numbers at step `epoch`."""
        self.run.log(metric_values(row), step=int(row["epoch"]))

    def log_summary(self, summary: Dict[str, Any]) -> None:
        """summary.json's numbers in the W&B run's summary."""
        self.run.summary.update(summary_results(summary))

    def close(self, status: str) -> None:
        """Finish the W&B run (exit code 0 complete, 255 interrupted, 1 failed)."""
        if self.run is not None:
            self.run.finish(exit_code=EXIT_CODES[status])
