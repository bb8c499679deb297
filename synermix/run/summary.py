"""A run's summary.json, computed from its metric rows: one rule for every numeric column."""

from __future__ import annotations

from typing import Any

import numpy as np
from omegaconf import DictConfig

from synermix.config.identity import run_identity

INDEX_COLUMNS = ("epoch", "epoch_seconds")  # the row's index and its wall time: not results of the run


def final_accuracy(values: list[float], average_last: int) -> float | None:
    """Mean of the last `average_last` values (the paper's final-epochs average), None without any."""
    return float(np.mean(values[-average_last:])) if values else None


def final_name(column: str) -> str:
    """summary.json's name of a column's final value: eval_acc -> final_acc, train_loss -> final_train_loss."""
    return "final_" + (column[len("eval_") :] if column.startswith("eval_") else column)


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)


def final_values(rows: list[dict[str, Any]], columns: list[str], average_last: int) -> dict[str, float | None]:
    """final_<column> for every numeric column: the mean of its last `average_last` epochs, None (empty) when one
    of them lacks a value (a metric the method does not compute, or rows recorded before the column existed)."""
    last = rows[-average_last:]
    finals: dict[str, float | None] = {}
    for column in columns:
        if column in INDEX_COLUMNS:
            continue
        values = [row.get(column) for row in last]
        numbers = [float(v) for v in values if _numeric(v)]  # type: ignore[arg-type]  # numeric: checked
        known = bool(values) and len(numbers) == len(values)
        finals[final_name(column)] = final_accuracy(numbers, average_last) if known else None
    return finals


def run_summary(
    rows: list[dict[str, Any]], columns: list[str], cfg: DictConfig, status: str, error: str | None = None
) -> dict[str, Any]:
    """summary.json's content for `rows` (the metric rows so far): status, final_* of a complete run, progress
    (epochs, best and last accuracy) and the run's identity."""
    accs = [r["eval_acc"] for r in rows if r.get("eval_acc") is not None]
    k = int(cfg.train.average_last)
    finals = final_values(rows, columns, k)
    if status != "complete":
        finals = dict.fromkeys(finals)
    summary = {
        "status": status,
        "final_acc": finals.pop("final_acc", None),
        **finals,
        "best_acc": max(accs) if accs else None,
        "last_acc": accs[-1] if accs else None,
        "epochs_completed": len(rows),
        "average_last": k,
        **run_identity(cfg),
    }
    if error is not None:
        summary["error"] = error
    return summary
