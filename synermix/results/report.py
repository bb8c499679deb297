"""Collect run summaries into tables: mean ± std over seeds per configuration, flags, and SynerMix's gains."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from synermix.config.identity import IDENTITY_COLUMNS, run_identity
from synermix.config.presets import synermix_variants
from synermix.results.paired import describe, paired_difference, synergy_margin
from synermix.run.validation import METHOD_NAMES
from synermix.store.rundir import CONFIG, ERROR, SUMMARY

MAIN_KEYS = ["dataset", "model", "batch_size", "method", "beta", "tag", "phase"]  # tag: run_tag (variants)
# A configuration is every identity key but the seed; the main keys first, as the tables show them.
GROUP_KEYS = MAIN_KEYS + [k for k in IDENTITY_COLUMNS if k not in MAIN_KEYS and k != "seed"]
SCENARIO_KEYS = ["dataset", "model", "batch_size"]
# (SynerMix preset, its inter-class component) for Sec. 4.2.3's comparisons; the intra component is `intra`.
SYNERMIX_VARIANTS = synermix_variants()  # (combo, its mixer alone, tag) from the presets


def _unreadable_row(path: Path, exc: Exception) -> dict:
    """The row of a run whose summary.json cannot be read: status `unreadable`, its identity from config.yaml
    where that is readable (so the table flags its configuration), the problem in `error`."""
    row = {
        "status": "unreadable",
        "run_dir": str(path.parent),
        "error": f"{path} is unreadable ({type(exc).__name__}: {exc}); the run's results are not counted",
    }
    try:
        config = OmegaConf.load(path.parent / CONFIG)
        if isinstance(config, DictConfig):
            row.update(run_identity(config))
    except Exception:  # no readable config.yaml either: listed below the table
        pass
    return row


def load_summaries(root: Path) -> pd.DataFrame:
    """One row per run directory under `root`: its summary.json, or a failed row for a run that left only error.txt,
    or an `unreadable` row for a summary.json that is not valid JSON."""
    rows = []
    for path in sorted(Path(root).rglob(SUMMARY)):
        try:
            summary = json.loads(path.read_text())
            if not isinstance(summary, dict):
                raise ValueError("not a JSON object")
            if summary.get("status") == "complete" and not isinstance(summary.get("final_acc"), (int, float)):
                raise ValueError("status complete but no final_acc number")
        except (OSError, ValueError) as exc:
            rows.append(_unreadable_row(path, exc))
            continue
        rows.append({**summary, "run_dir": str(path.parent)})
    for path in sorted(Path(root).rglob(ERROR)):
        if not (path.parent / SUMMARY).exists():
            lines = path.read_text().strip().splitlines()
            rows.append({"status": "failed", "error": lines[-1] if lines else "", "run_dir": str(path.parent)})
    return pd.DataFrame(rows)


def _sort(table: pd.DataFrame) -> pd.DataFrame:
    """Paper order for the presets, then any custom method names alphabetically."""
    order = {name: i for i, name in enumerate(METHOD_NAMES)}
    return table.sort_values(
        by=[*SCENARIO_KEYS, "method", "beta", "tag", "phase"],
        key=lambda col: col.map(lambda m: (order.get(m, len(order)), m)) if col.name == "method" else col,
    ).reset_index(drop=True)


# summary.json's final_* the printed table shows (a column the runs lack is empty); the CSV table has every final_*
REPORTED = ("final_acc", "final_acc5", "final_acc_ema", "final_ece", "final_nll")
COUNTS = ("n_seeds", "n_incomplete", "n_failed", "n_unreadable", "missing_seeds", "flag", "seed_accs")


def _with_status(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs with a method, their identity columns filled and complete/failed/unreadable/incomplete flags."""
    known = runs.dropna(subset=["method"])
    for key in ["tag", *GROUP_KEYS[len(MAIN_KEYS) :]]:  # absent from summaries of older versions
        known = known.assign(**{key: known[key].map(lambda v: "" if pd.isna(v) else v) if key in known else ""})
    return known.astype({"batch_size": int, "seed": int}).assign(
        complete=known["status"].eq("complete"),
        failed=known["status"].eq("failed"),
        unreadable=known["status"].eq("unreadable"),
        incomplete=~known["status"].isin(["complete", "failed", "unreadable"]),
    )


def final_columns(runs: pd.DataFrame) -> list:
    """Every final_* of the summaries (one rule for every metric, summary.json's), REPORTED first."""
    return [*REPORTED, *sorted(c for c in runs.columns if c.startswith("final_") and c not in REPORTED)]


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """Per configuration: mean over complete seeds of every final_* (and final_acc's std), counts of
    incomplete/failed runs, seeds missing relative to the other configurations of the same scenario and phase, and
    a flag."""
    finals = final_columns(runs)
    means = [f"{c}_mean" for c in finals]
    columns = [*GROUP_KEYS, means[0], "final_acc_std", "best_acc_mean", *means[1:], *COUNTS]
    known = _with_status(runs) if "method" in runs else pd.DataFrame()
    if known.empty:
        return pd.DataFrame(columns=columns)
    # sort=False: identity columns of older summaries may mix "" with numbers
    grouped = known.groupby(GROUP_KEYS, dropna=False, sort=False)
    table = grouped.agg(
        n_incomplete=("incomplete", "sum"), n_failed=("failed", "sum"), n_unreadable=("unreadable", "sum")
    ).reset_index()
    for key in ("best_acc", *finals):  # absent: older or unreadable summaries, or a metric no run has
        known = known.assign(**{key: pd.to_numeric(known[key], errors="coerce") if key in known else float("nan")})
    done = known[known["complete"]].groupby(GROUP_KEYS, dropna=False, sort=False)
    stats = done.agg(
        final_acc_std=("final_acc", "std"),
        best_acc_mean=("best_acc", "mean"),
        n_seeds=("final_acc", "count"),
        **{mean: (column, "mean") for mean, column in zip(means, finals)},
    ).reset_index()
    table = table.merge(stats, on=GROUP_KEYS, how="left")
    table["seed_accs"] = _seed_accuracies(known, table)
    table["n_seeds"] = table["n_seeds"].fillna(0).astype(int)
    table["missing_seeds"] = _missing_seeds(known, grouped, table)
    table["flag"] = table.apply(_flag, axis=1)
    return _sort(table[columns])


def _missing_seeds(known: pd.DataFrame, grouped, table: pd.DataFrame) -> pd.Series:
    """Per row of `table`: the seeds other configurations of its scenario and phase have and it lacks."""
    expected = known.groupby([*SCENARIO_KEYS, "phase"], dropna=False, sort=False)["seed"].apply(set)
    present = grouped["seed"].apply(set)

    def missing(row) -> str:
        want = expected[tuple(row[k] for k in [*SCENARIO_KEYS, "phase"])]
        have = present[tuple(row[k] for k in GROUP_KEYS)]
        return ",".join(str(s) for s in sorted(want - have))

    return table.apply(missing, axis=1)


def _flag(row) -> str:
    """The table's flag column: what keeps a configuration's mean from standing on all its seeds."""
    parts = []
    if row.n_failed:
        parts.append(f"{row.n_failed} failed")
    if row.n_incomplete:
        parts.append(f"{row.n_incomplete} incomplete")
    if row.n_unreadable:
        parts.append(f"{row.n_unreadable} unreadable summary.json")
    if row.missing_seeds:
        parts.append(f"missing seeds {row.missing_seeds}")
    return "; ".join(parts) or "ok"


def _seed_accuracies(known: pd.DataFrame, table: pd.DataFrame) -> list:
    """Per row of `table`: {seed: final_acc} of its complete runs (what paired comparisons pair)."""
    by_config: dict = {}
    for run in known[known["complete"]].to_dict("records"):
        by_config.setdefault(tuple(run[k] for k in GROUP_KEYS), {})[int(run["seed"])] = float(run["final_acc"])
    return [by_config.get(tuple(row[k] for k in GROUP_KEYS), {}) for row in table.to_dict("records")]


# synermix.results.paired's statistics -> the suffix of their gains column (`vs_intra_diff`, `synergy_margin_p`, ...)
PAIRED_FIELDS = {
    "n": "pairs",
    "mean": "diff",
    "ci_low": "ci_low",
    "ci_high": "ci_high",
    "p": "p",
    "significant": "significant",
}


def paired_columns(prefix: str, stats: dict) -> dict:
    """The CSV columns of one paired comparison: pairs, mean difference, 95% CI, p, significant ('n/a' < 2 pairs)."""
    return {f"{prefix}_{suffix}": stats[key] for key, suffix in PAIRED_FIELDS.items()}


def gains(table: pd.DataFrame) -> pd.DataFrame:
    """Sec. 4.2.3 on the test phase: SynerMix(M/MM) minus w-RA, minus w-ER, minus the better of the two,
    and whether its gain over the baseline exceeds the sum of the two components' gains (synergy).
    Where a method has test runs at several beta, its best mean accuracy is used; tagged variants are left out.
    Each comparison is also paired by seed (synermix.results.paired): mean difference, 95% CI, paired t-test p."""
    test = table[(table["phase"] == "test") & (table["n_seeds"] > 0) & (table["tag"] == "")]
    if test.empty:
        return pd.DataFrame()
    keys = [*SCENARIO_KEYS, "method"]
    best = test.loc[test.groupby(keys, sort=False)["final_acc_mean"].idxmax()]
    chosen = {tuple(r[k] for k in keys): r for r in best.to_dict("records")}
    rows = []
    for scenario in test[SCENARIO_KEYS].drop_duplicates().itertuples(index=False):
        row_of = {m: chosen.get((*scenario, m)) for m in METHOD_NAMES}
        for combo, inter, tag in SYNERMIX_VARIANTS:
            combined, intra, alone = row_of[combo], row_of["intra"], row_of[inter]
            if combined is None or intra is None or alone is None:
                continue
            rows.append(_gain_row(dict(zip(SCENARIO_KEYS, scenario)), tag, combined, intra, alone, row_of["baseline"]))
    return pd.DataFrame(rows)


def _gain_row(scenario: dict, tag: str, combo: dict, intra: dict, inter: dict, base) -> dict:
    """One gains row: differences of the means (Sec. 4.2.3) and the same comparisons paired by seed."""
    acc = {"combo": combo["final_acc_mean"], "intra": intra["final_acc_mean"], "inter": inter["final_acc_mean"]}
    better = intra if acc["intra"] >= acc["inter"] else inter
    row = dict(
        scenario,
        variant=tag,
        synermix_acc=acc["combo"],
        intra_acc=acc["intra"],
        inter_acc=acc["inter"],
        gain_vs_intra=acc["combo"] - acc["intra"],
        gain_vs_inter=acc["combo"] - acc["inter"],
        gain_vs_best=acc["combo"] - max(acc["intra"], acc["inter"]),
    )
    if base is None:
        row["synergy"] = None
    else:
        b = base["final_acc_mean"]
        row["synergy"] = bool(acc["combo"] - b > (acc["intra"] - b) + (acc["inter"] - b))
    for name, other in (("intra", intra), ("inter", inter), ("best", better)):
        row.update(paired_columns(f"vs_{name}", paired_difference(combo["seed_accs"], other["seed_accs"])))
    margin = synergy_margin(
        combo["seed_accs"], intra["seed_accs"], inter["seed_accs"], base["seed_accs"] if base is not None else {}
    )
    row.update(paired_columns("synergy_margin", margin))
    return row


def format_gains(g: pd.DataFrame) -> pd.DataFrame:
    """Printed view of `gains`: accuracies, then each paired comparison as 'diff [95% CI] p=… *' (* p < 0.05)."""
    view = g[[*SCENARIO_KEYS, "variant", "synermix_acc", "intra_acc", "inter_acc"]].copy()
    for prefix, title in (
        ("vs_intra", "vs w-RA"),
        ("vs_inter", "vs w-ER"),
        ("vs_best", "vs better"),
        ("synergy_margin", "synergy margin"),
    ):
        view[f"{title} (paired)"] = [
            describe({k: r[f"{prefix}_{c}"] for k, c in PAIRED_FIELDS.items()}) for r in g.to_dict("records")
        ]
    return view


def format_table(table: pd.DataFrame) -> pd.DataFrame:
    """Human-readable view: final_acc as 'mean ± std' in percent, with counts and the flag."""

    def cell(row) -> str:
        if pd.isna(row.final_acc_mean):
            return "—"
        if pd.isna(row.final_acc_std):  # a single seed has no spread
            return f"{row.final_acc_mean:.2f}"
        return f"{row.final_acc_mean:.2f} ± {row.final_acc_std:.2f}"

    # other identity keys only where they tell configurations of one method apart (e.g. a train.lr sweep)
    varying = [
        k
        for k in GROUP_KEYS[len(MAIN_KEYS) :]
        if len(table) and table.assign(_k=table[k].astype(str)).groupby("method")["_k"].nunique().max() > 1
    ]
    view = table[MAIN_KEYS + varying].copy()
    view["final_acc (%)"] = table.apply(cell, axis=1) if len(table) else []
    # the paper reports final_acc (last-k average); the best epoch is shown apart, never in its place
    view["best_epoch_acc (%)"] = table["best_acc_mean"].map(lambda v: "—" if pd.isna(v) else f"{v:.2f}")
    for column, title in (("final_acc5_mean", "top5 (%)"), ("final_acc_ema_mean", "EMA acc (%)")):
        if table[column].notna().any():  # top-5: more than five classes; EMA: runs with train.ema
            view[title] = table[column].map(lambda v: "—" if pd.isna(v) else f"{v:.2f}")
    # calibration over the same final epochs (lower is better)
    view["ECE (%)"] = table["final_ece_mean"].map(lambda v: "—" if pd.isna(v) else f"{100 * v:.2f}")
    view["NLL"] = table["final_nll_mean"].map(lambda v: "—" if pd.isna(v) else f"{v:.3f}")
    view["n_seeds"] = table["n_seeds"]
    view["flag"] = table["flag"]
    return view


def unattributed_failures(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs that failed before writing a summary (e.g. a bad config), and unreadable summaries: run dir and error."""
    if runs.empty or "error" not in runs:
        return pd.DataFrame(columns=["run_dir", "error"])
    if "method" not in runs:
        return runs[["run_dir", "error"]]
    return runs[runs["method"].isna() | runs["status"].eq("unreadable")][["run_dir", "error"]]
