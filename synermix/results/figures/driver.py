"""One entry point for every figure target: load the scale's spec, run or reuse its runs, draw."""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Optional

from synermix.results.figures import fig1
from synermix.results.figures.runs import FigureRuns, Runner
from synermix.results.figures.spec import load_figure_spec

# figure -> module with make(runs, out_dir); fig1 is analytic and needs no runs.
MODULES = {
    "fig2": "tsne",
    "fig5": "accuracy",
    "fig6": "accuracy",
    "fig7": "curves",
    "fig8": "tsne",
    "fig9": "accuracy",
    "fig10": "beta",
    "fig11": "curves",
    "fig12": "views",
    "mixers": "mixers",  # not a paper figure: every mixer with and without the intra-class term
}
FIGURES = ("fig1", *sorted((n for n in MODULES if n.startswith("fig")), key=lambda n: int(n[3:])))
TARGETS = (*FIGURES, "mixers")  # `all` makes the paper's FIGURES


def make_figure(
    name: str,
    scale: str,
    out_dir: Path,
    runs_root: Optional[Path] = None,
    plan: bool = False,
    runner: Optional[Runner] = None,
    data_root: Optional[Path] = None,
) -> Optional[FigureRuns]:
    """Make figure `name` at `scale` into out_dir (figN.png + figN.csv); with `plan`, only list the jobs;
    `data_root` sets every dataset's root to data_root/<dataset name>.
    Returns the FigureRuns (commands planned, failures met), or None for the analytic Figure 1."""
    if name == "fig1":
        if not plan:
            fig1.make(Path(out_dir), scale)
        return None
    module = import_module(f"synermix.results.figures.{MODULES[name]}")
    runs = FigureRuns(load_figure_spec(name, scale, runs_root), runner=runner, plan=plan, data_root=data_root)
    data = module.make(runs, Path(out_dir))
    if data is not None and hasattr(module, "markdown"):
        runs.table = module.markdown(data)
    return runs
