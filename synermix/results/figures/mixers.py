"""One table across mixers (`make mixers SCALE=...`): every inter-class mixer with and without the intra-class term,
plus the baseline and w-RA, over the scale's seeds: accuracy, ECE, cohesion metrics, and the paired difference
that adding the intra-class term makes to each mixer (mean, 95% CI, p)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import pandas as pd

from synermix.config.presets import method_presets, synermix_variants
from synermix.results.figures.accuracy import accuracy_row, seed_accuracies
from synermix.results.figures.plots import pyplot, save
from synermix.results.figures.runs import FigureRuns, read_metrics
from synermix.results.paired import describe, paired_difference
from synermix.results.report import PAIRED_FIELDS, paired_columns
from synermix.store.io import write_text_atomic
from synermix.train.cohesion import COHESION_COLUMNS

REFERENCES = ("baseline", "intra")  # drawn as lines: no inter-class mixing, and the intra-class term alone


def methods() -> List[str]:
    """The baseline, w-RA, then each mixer alone and with the intra-class term, in the presets' order."""
    return [*REFERENCES, *[m for combo, alone, _ in synermix_variants() for m in (alone, combo)]]


def _run_means(result: Dict[str, Any]) -> Dict[str, float]:
    """Mean over the test runs of final ECE and NLL (summary.json) and the last epoch's cohesion metrics."""
    values: Dict[str, List[float]] = {}
    for test in result["test"]:
        if test["final_acc"] is None:
            continue
        summary = json.loads((Path(test["run_dir"]) / "summary.json").read_text())
        last = read_metrics(Path(test["run_dir"])).iloc[-1]
        found = {
            "ece": summary.get("final_ece"),
            "nll": summary.get("final_nll"),
            **{c: last.get(c) for c in COHESION_COLUMNS},
        }
        for key, value in found.items():
            if value is not None and not pd.isna(value):
                values.setdefault(key, []).append(float(value))
    return {f"{k}_mean": float(np.mean(v)) for k, v in values.items()}


def table(runs: FigureRuns) -> Optional[pd.DataFrame]:
    """A row per method (run through the protocol), each SynerMix variant paired by seed with its mixer alone."""
    scenario, presets, rows = runs.spec.scenario, method_presets(), []
    for method in methods():
        result = runs.protocol(scenario, method)
        if result is not None:
            row = accuracy_row(scenario, method, result)
            rows.append(
                {**row, "intra": presets[method]["intra"], "inter": presets[method]["inter"], **_run_means(result)}
            )
    if runs.plan:
        return None
    data = pd.DataFrame(rows)
    alone_of = {combo: alone for combo, alone, _ in synermix_variants()}
    by_method = {r["method"]: r for r in rows}
    paired = [
        paired_columns(
            "intra_gain",
            paired_difference(
                seed_accuracies(r),
                seed_accuracies(by_method[alone_of[r["method"]]]) if alone_of.get(r["method"]) in by_method else {},
            ),
        )
        for r in rows
    ]
    return pd.concat([data, pd.DataFrame(paired, index=data.index)], axis=1)


def markdown(data: pd.DataFrame) -> str:
    """Per mixer: accuracy and ECE alone and with the intra-class term, the paired gain, the cohesion ratio."""
    by_method = {r["method"]: r for r in data.to_dict("records")}

    def cell(row, key: str, scale: float = 1.0, digits: int = 2) -> str:
        value = row.get(key) if row else None
        return "—" if value is None or pd.isna(value) else f"{scale * value:.{digits}f}"

    def acc(row) -> str:
        if not row or not row["n_seeds"]:
            return "failed"
        return f"{row['acc_mean']:.2f}" + ("" if pd.isna(row["acc_std"]) else f" ± {row['acc_std']:.2f}")

    lines = []
    for combo, alone, _tag in synermix_variants():
        a, b = by_method.get(alone), by_method.get(combo)
        if a is None and b is None:
            continue
        gain = describe({k: b[f"intra_gain_{c}"] for k, c in PAIRED_FIELDS.items()}) if b else "—"
        lines.append(
            {
                "mixer": method_presets()[combo]["inter"],
                "alone: acc (%)": acc(a),
                "alone: ECE (%)": cell(a, "ece_mean", 100),
                "+ intra: acc (%)": acc(b),
                "+ intra: ECE (%)": cell(b, "ece_mean", 100),
                "intra-class term: acc gain (paired)": gain,
                "cohesion ratio alone → + intra": (
                    f"{cell(a, 'cohesion_ratio_mean', digits=3)} → {cell(b, 'cohesion_ratio_mean', digits=3)}"
                ),
            }
        )
    references = "; ".join(
        f"{m}: {acc(by_method[m])}% (ECE {cell(by_method[m], 'ece_mean', 100)}%)" for m in REFERENCES if m in by_method
    )
    return pd.DataFrame(lines).to_markdown(index=False) + (f"\n\nReferences — {references}." if references else "")


def make(runs: FigureRuns, out_dir: Path) -> Optional[pd.DataFrame]:
    """Write mixers.png (accuracy per mixer, alone and with the intra-class term), mixers.csv and mixers.md."""
    data = table(runs)
    if data is None:
        return None
    by_method = {r["method"]: r for r in data.to_dict("records")}
    variants = [(c, a, t) for c, a, t in synermix_variants() if c in by_method and a in by_method]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(1.3 * len(variants) + 5, 4))
    x = np.arange(len(variants))
    for offset, index, label, color in (
        (-0.2, 1, "mixer alone (w-ER)", "#8c8c8c"),
        (0.2, 0, "+ intra-class term", "#4c72b0"),
    ):
        rows = [by_method[v[index]] for v in variants]
        ax.bar(
            x + offset,
            [r["acc_mean"] for r in rows],
            0.4,
            yerr=[np.nan_to_num(r["acc_std"]) for r in rows],
            capsize=3,
            color=color,
            label=label,
        )
    for method, style in zip(REFERENCES, ("--", ":")):
        if method in by_method:
            ax.axhline(
                by_method[method]["acc_mean"],
                color="black",
                linestyle=style,
                linewidth=1,
                label=f"{method} (no inter-class mixing)" if method == "baseline" else "w-RA alone",
            )
    means = [by_method[m]["acc_mean"] for m in by_method if not pd.isna(by_method[m]["acc_mean"])]
    if means:
        ax.set_ylim(max(0.0, min(means) - 3), min(100.0, max(means) + 2))
    ax.set_xticks(x)
    ax.set_xticklabels([method_presets()[c]["inter"] for c, _, _ in variants])
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title(
        f"Every mixer with and without the intra-class term — {runs.spec.scenario.label}\n"
        f"mean ± std over {runs.spec.seeds} seed(s), scale {runs.spec.scale}",
        fontsize=9,
    )
    save(fig, data, out_dir, "mixers")
    write_text_atomic(Path(out_dir) / "mixers.md", markdown(data) + "\n")
    return data
