"""Collect run summaries (summary.json) into a pandas table: one row per configuration, mean ± std over seeds."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from synermix.config import METHOD_NAMES

GROUP_KEYS = ["dataset", "model", "batch_size", "method", "beta", "phase"]


def load_summaries(root: Path) -> pd.DataFrame:
    """One row per summary.json found under `root` (with its run directory)."""
    rows = []
    for path in sorted(Path(root).rglob("summary.json")):
        with open(path) as f:
            rows.append({**json.load(f), "run_dir": str(path.parent)})
    return pd.DataFrame(rows)


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and std of final_acc over seeds per configuration, with seed and incomplete-run counts."""
    if runs.empty:
        return pd.DataFrame(columns=[*GROUP_KEYS, "final_acc_mean", "final_acc_std", "n_seeds", "n_incomplete"])
    runs = runs.assign(complete=runs["status"].eq("complete"))
    done = runs[runs["complete"]]
    table = (
        done.groupby(GROUP_KEYS, dropna=False)["final_acc"]
        .agg(final_acc_mean="mean", final_acc_std="std", n_seeds="count")
        .reset_index()
    )
    incomplete = (~runs["complete"]).groupby([runs[k] for k in GROUP_KEYS], dropna=False).sum()
    incomplete = incomplete.rename("n_incomplete").reset_index()
    table = incomplete.merge(table, on=GROUP_KEYS, how="left")
    table["n_seeds"] = table["n_seeds"].fillna(0).astype(int)
    # Paper order for the presets, then any custom method names alphabetically.
    order = {name: i for i, name in enumerate(METHOD_NAMES)}
    table = table.sort_values(
        by=[*GROUP_KEYS[:3], "method", "beta", "phase"],
        key=lambda col: col.map(lambda m: (order.get(m, len(order)), m)) if col.name == "method" else col,
    ).reset_index(drop=True)
    return table[[*GROUP_KEYS, "final_acc_mean", "final_acc_std", "n_seeds", "n_incomplete"]]


def format_table(table: pd.DataFrame) -> pd.DataFrame:
    """Human-readable view: final_acc as 'mean ± std' in percent."""
    def cell(row) -> str:
        if pd.isna(row.final_acc_mean):
            return "—"
        if pd.isna(row.final_acc_std):  # a single seed has no spread
            return f"{row.final_acc_mean:.2f}"
        return f"{row.final_acc_mean:.2f} ± {row.final_acc_std:.2f}"

    view = table[GROUP_KEYS].copy()
    view["final_acc (%)"] = table.apply(cell, axis=1) if len(table) else []
    view["n_seeds"] = table["n_seeds"]
    view["n_incomplete"] = table["n_incomplete"]
    return view
