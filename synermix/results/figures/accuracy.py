"""Figures 5, 6 and 9: final test accuracy (mean ± std over seeds) of the six methods per scenario."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import numpy as np
import pandas as pd

from synermix.results.figures.plots import bars, method_colors, save, scenario_panels
from synermix.results.figures.runs import FigureRuns
from synermix.results.figures.spec import paper_name
from synermix.results.paired import describe, paired_difference
from synermix.results.report import PAIRED_FIELDS, SYNERMIX_VARIANTS, paired_columns

TITLES = {
    "fig5": "Figure 5: accuracy across datasets and batch sizes",
    "fig6": "Figure 6: accuracy at a small batch size",
    "fig9": "Figure 9: accuracy with (pre-trained) models of three architectures",
}
COLUMNS = ["scenario", "label", "method", "paper_name", "beta", "n_seeds", "acc_mean", "acc_std", "accs", "seeds"]
# paired columns' prefix -> their title in the printed table ('diff [95% CI] p=… *', * p < 0.05)
COMPARISONS = {
    "vs_baseline": "vs baseline (paired)",
    "vs_better_component": "vs better component (paired)",
    "vs_original_views": "vs original views (paired)",
}


def accuracy_row(scenario, method: str, result: Dict[str, Any]) -> Dict[str, Any]:
    """One CSV row: a protocol result's test accuracies reduced to mean, std and the per-seed values."""
    done = [t for t in result["test"] if t["final_acc"] is not None]
    accs = np.array([t["final_acc"] for t in done], dtype=float)
    return {
        "scenario": scenario.key,
        "label": scenario.label,
        "method": method,
        "paper_name": paper_name(method),
        "beta": result["chosen_beta"],
        "n_seeds": len(done),
        "acc_mean": float(accs.mean()) if accs.size else float("nan"),
        "acc_std": float(accs.std(ddof=1)) if accs.size > 1 else float("nan"),
        "accs": ";".join(f"{a:.4f}" for a in accs),
        "seeds": ";".join(str(t["seed"]) for t in done),
    }


def accuracy_rows(runs: FigureRuns, jobs: Iterable[Tuple[Any, str, Optional[float]]]) -> Optional[pd.DataFrame]:
    """accuracy_row of each (scenario, method, beta) job through the protocol (beta None: the spec's choice);
    None when only planning."""
    rows = []
    for scenario, method, beta in jobs:
        result = runs.protocol(scenario, method, beta=beta)
        if result is not None:
            rows.append(accuracy_row(scenario, method, result))
    return None if runs.plan else pd.DataFrame(rows, columns=COLUMNS)


def seed_accuracies(row: Dict[str, Any]) -> Dict[int, float]:
    """{seed: test accuracy} of one accuracy row (its `seeds` and `accs` columns)."""
    if not row["seeds"]:
        return {}
    return dict(zip((int(s) for s in row["seeds"].split(";")), (float(a) for a in row["accs"].split(";"))))


def add_paired(
    data: pd.DataFrame, prefix: str, reference: Callable[[dict, List[dict]], Optional[dict]]
) -> pd.DataFrame:
    """Columns <prefix>_pairs/_diff/_ci_low/_ci_high/_p/_significant: each row's per-seed accuracies minus those
    of the row `reference(row, rows of its scenario)` picks, paired by seed (synermix.results.paired; 'n/a' where it
    picks none or fewer than two seeds pair up)."""
    records = data.to_dict("records")
    columns = []
    for row in records:
        other = reference(row, [r for r in records if r["scenario"] == row["scenario"]])
        stats = paired_difference(seed_accuracies(row), seed_accuracies(other) if other else {})
        columns.append(paired_columns(prefix, stats))
    return pd.concat([data, pd.DataFrame(columns, index=data.index)], axis=1) if records else data


def versus_baseline(row: dict, scenario: List[dict]) -> Optional[dict]:
    """The baseline of the row's scenario (none for the baseline itself)."""
    return None if row["method"] == "baseline" else next((r for r in scenario if r["method"] == "baseline"), None)


def versus_better_component(row: dict, scenario: List[dict]) -> Optional[dict]:
    """For a SynerMix variant, the better (by mean accuracy) of its components w-RA and its w-ER; else none."""
    inter = dict((combo, inter) for combo, inter, _ in SYNERMIX_VARIANTS).get(row["method"])
    parts = [r for r in scenario if r["method"] in ("intra", inter) and r["n_seeds"]]
    return max(parts, key=lambda r: r["acc_mean"]) if inter and len(parts) == 2 else None


def table(runs: FigureRuns) -> Optional[pd.DataFrame]:
    """Every (scenario, method) of the spec through the protocol, each paired by seed with its scenario's
    baseline and (SynerMix variants) its better component; None when only planning."""
    data = accuracy_rows(runs, ((s, m, None) for s in runs.spec.scenarios for m in runs.spec.methods))
    if data is None:
        return None
    return add_paired(add_paired(data, "vs_baseline", versus_baseline), "vs_better_component", versus_better_component)


def make(runs: FigureRuns, out_dir: Path) -> Optional[pd.DataFrame]:
    """Write <fig>.png (one panel per scenario, one bar per method) and <fig>.csv."""
    data = table(runs)
    if data is None:
        return None
    fig, panels = scenario_panels(data)
    colors = method_colors(len(runs.spec.methods))
    for ax, part in panels:
        bars(ax, list(part["paper_name"]), part["acc_mean"], part["acc_std"], colors[: len(part)])
        ax.set_title(part["label"].iloc[0], fontsize=9)
        ax.set_ylabel("test accuracy (%)")
    fig.suptitle(
        f"{TITLES.get(runs.spec.name, runs.spec.name)}\nmean ± std over {runs.spec.seeds} seed(s), "
        f"scale {runs.spec.scale}",
        fontsize=10,
    )
    save(fig, data, out_dir, runs.spec.name)
    return data


def markdown(data: pd.DataFrame) -> str:
    """The figure's numbers as a Markdown table: accuracy mean ± std over seeds per scenario and method."""

    def cell(row) -> str:
        if not row.n_seeds:
            return "failed"
        spread = "" if np.isnan(row.acc_std) else f" ± {row.acc_std:.2f}"
        return f"{row.acc_mean:.2f}{spread}"

    view = pd.DataFrame(
        {
            "scenario": data["label"],
            "method": data["paper_name"] + " (" + data["method"] + ")",
            "beta": data["beta"],
            "seeds": data["n_seeds"],
            "test accuracy (%)": data.apply(cell, axis=1),
        }
    )
    for prefix, title in COMPARISONS.items():
        if f"{prefix}_diff" in data:
            view[title] = [
                describe({k: r[f"{prefix}_{c}"] for k, c in PAIRED_FIELDS.items()}) if r[f"{prefix}_pairs"] else ""
                for r in data.to_dict("records")
            ]
    return view.to_markdown(index=False)
