"""MLflow: a local SQLite store by default (out_root/mlflow.db; browse it with
`mlflow ui --backend-store-uri sqlite:///outputs/runs/mlflow.db`), or any tracking server's URI."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from synermix.config.checks import Check
from synermix.run.trackers import TrackedRun, Tracker, metric_values, summary_results

CHECKS = (
    Check("experiment", lambda v: isinstance(v, str) and v.strip() != "", "an MLflow experiment name"),
    Check(
        "tracking_uri",
        lambda v: v is None or (isinstance(v, str) and v.strip() != ""),
        "null (sqlite:///<out_root>/mlflow.db) or an MLflow tracking URI",
    ),
)
STATUSES = {"complete": "FINISHED", "interrupted": "KILLED", "failed": "FAILED"}
MAX_PARAM = 6000  # MLflow's limit on a parameter value's length


def _flat(config: Dict[str, Any], prefix: str = "") -> Dict[str, str]:
    out: Dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flat(value, name + "."))
        else:
            out[name] = str(value)[:MAX_PARAM]
    return out


class MlflowTracker(Tracker):
    """One MLflow run per run directory (its id kept in trackers.json, so a resumed run continues it), the resolved
    config as parameters, each row's numbers at step `epoch`, summary.json's as final metrics."""

    SETUP_HINT = (
        "Set logger.mlflow.tracking_uri to a store it can write (sqlite:///<writable folder>/mlflow.db) or a "
        "reachable MLflow server"
    )

    def __init__(self, experiment: str = "synermix", tracking_uri: Optional[str] = None) -> None:
        self.experiment, self.tracking_uri = experiment, tracking_uri
        self.client: Any = None
        self.run_id: Any = None

    def _uri(self, run: TrackedRun) -> str:
        if self.tracking_uri:
            return self.tracking_uri
        return f"sqlite:///{(Path(str(run.config.get('out_root', '.'))) / 'mlflow.db').resolve()}"

    def start(self, run: TrackedRun) -> Dict[str, Any]:
        """Open the MLflow run (the saved one after an interruption) in the experiment, creating either if needed."""
        from mlflow.tracking import MlflowClient  # the tracker's client: only runs that select it

        uri = self._uri(run)
        if uri.startswith("sqlite:///"):
            Path(uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
        self.client = MlflowClient(tracking_uri=uri)
        experiment = self.client.get_experiment_by_name(self.experiment)
        experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(self.experiment)
        self.run_id = run.saved.get("run_id") if run.saved.get("tracking_uri") == uri else None
        if self.run_id is not None:
            self.client.update_run(self.run_id, status="RUNNING")
        else:
            created = self.client.create_run(
                experiment_id, run_name=run.name, tags={"synermix.run_dir": str(run.path.resolve())}
            )
            self.run_id = created.info.run_id
            self._log_params(_flat(run.config))
        return {"run_id": self.run_id, "tracking_uri": uri}

    def _log_params(self, params: Dict[str, str]) -> None:
        from mlflow.entities import Param  # the tracker's client: only runs that select it

        items: List[Param] = [Param(k, v) for k, v in sorted(params.items())]
        for i in range(0, len(items), 100):  # MLflow takes at most 100 parameters a batch
            self.client.log_batch(self.run_id, params=items[i : i + 100])

    def _log_metrics(self, values: Dict[str, float], step: int) -> None:
        from mlflow.entities import Metric  # the tracker's client: only runs that select it

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, step) for k, v in values.items()])

    def log_epoch(self, row: Dict[str, Any]) -> None:
        """The row's numbers at step `epoch`."""
        self._log_metrics(metric_values(row), int(row["epoch"]))

    def log_summary(self, summary: Dict[str, Any]) -> None:
        """summary.json's numbers, at the last epoch's step."""
        self._log_metrics(summary_results(summary), int(summary["epochs_completed"]))

    def close(self, status: str) -> None:
        """Mark the MLflow run FINISHED, KILLED (interrupted: resumed later) or FAILED."""
        if self.client is not None:
            self.client.set_terminated(self.run_id, status=STATUSES[status])
