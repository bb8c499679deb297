"""Figures 5, 6 and 9: final test accuracy (mean ± std over seeds) of the six methods per scenario."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Iterable, Optional, Tuple

import numpy as np
import pandas as pd

from synermix.figures.plots import bars, method_colors, save, scenario_panels
from synermix.figures.runs import FigureRuns
from synermix.figures.spec import paper_name

TITLES = {
    "fig5": "Figure 5: accuracy across datasets and batch sizes",
    "fig6": "Figure 6: accuracy at a small batch size",
    "fig9": "Figure 9: accuracy with (pre-trained) models of three architectures",
}
COLUMNS = ["scenario", "label", "method", "paper_name", "beta", "n_seeds", "acc_mean", "acc_std", "accs", "seeds"]


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


def table(runs: FigureRuns) -> Optional[pd.DataFrame]:
    """Every (scenario, method) of the spec through the protocol; None when only planning."""
    return accuracy_rows(runs, ((s, m, None) for s in runs.spec.scenarios for m in runs.spec.methods))


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
    fig.suptitle(f"{TITLES.get(runs.spec.name, runs.spec.name)}\nmean ± std over {runs.spec.seeds} seed(s), "
                 f"scale {runs.spec.scale}", fontsize=10)
    save(fig, data, out_dir, runs.spec.name)
    return data


def markdown(data: pd.DataFrame) -> str:
    """The figure's numbers as a Markdown table: accuracy mean ± std over seeds per scenario and method."""
    def cell(row) -> str:
        if not row.n_seeds:
            return "failed"
        spread = "" if np.isnan(row.acc_std) else f" ± {row.acc_std:.2f}"
        return f"{row.acc_mean:.2f}{spread}"

    view = pd.DataFrame({
        "scenario": data["label"], "method": data["paper_name"] + " (" + data["method"] + ")",
        "beta": data["beta"], "seeds": data["n_seeds"], "test accuracy (%)": data.apply(cell, axis=1),
    })
    return view.to_markdown(index=False)
