"""The runs behind a figure, through the protocol machinery: composed like scripts/protocol.py, reused when
finished, resumed when not, and listed as commands instead (`plan`) for a cluster to run first."""

from __future__ import annotations

import logging
import shlex
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import pandas as pd
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from synermix.config.identity import protocol_dir_of, run_dir_of
from synermix.results.figures.spec import CONFIG_DIR, FigureSpec, Scenario
from synermix.results.protocol import attempt, run_config, run_protocol
from synermix.run.validation import validate_config

log = logging.getLogger(__name__)
Runner = Callable[[DictConfig, Path], Dict[str, Any]]


def read_metrics(run_dir: Path) -> pd.DataFrame:
    """A run's per-epoch metrics.csv."""
    from synermix.store.rundir import RunDir  # late: torch-heavy, and plans need none of it

    return RunDir(run_dir).read_metrics()


class FigureRuns:
    """Runs (or plans) the protocol and validation runs of one figure spec, collecting failures."""

    def __init__(
        self, spec: FigureSpec, runner: Optional[Runner] = None, plan: bool = False, data_root: Optional[Path] = None
    ):
        if runner is None:
            from synermix.run.training import run_training  # late: torch-heavy, and plans need none of it

            runner = run_training
        self.spec = spec
        self.runner = runner
        self.plan = plan
        self.data_root = data_root  # each dataset read from data_root/<dataset name>
        self.commands: List[str] = []
        self.failures: List[str] = []
        self.table: Optional[str] = None  # the figure's numbers as Markdown, for figures that have a table

    def overrides(self, scenario: Scenario, method: str, extra: Sequence[str] = (), tag: str = "") -> List[str]:
        """Command-line overrides of one job: scale-wide, scenario, method, then figure-specific ones;
        `tag` is appended to the scenario's run_tag (a variant such as _P2)."""
        tags = [f"run_tag={scenario.tag}{tag}"] if scenario.tag or tag else []
        args = [*self.spec.common, *scenario.overrides]
        datasets = [a.split("=", 1)[1] for a in args if a.startswith("dataset=")]
        root = [f"dataset.root={self.data_root}/{datasets[-1]}"] if self.data_root and datasets else []
        return [*args, *root, f"method={method}", *tags, *extra, f"out_root={self.spec.runs}"]

    def compose(self, overrides: Sequence[str]) -> DictConfig:
        """The protocol config scripts/protocol.py composes for `overrides`."""
        with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR)):
            return compose(config_name="protocol", overrides=list(overrides))

    def protocol(
        self, scenario: Scenario, method: str, beta: Optional[float] = None, extra: Sequence[str] = (), tag: str = ""
    ) -> Optional[Dict[str, Any]]:
        """Test runs of `method` on `scenario` with the spec's seeds: beta from validation when the spec
        selects it and no `beta` is given, else `beta` (or the preset's). None when planning."""
        fixed = beta is not None or not self.spec.select_beta
        args = self.overrides(scenario, method, [*([f"method.beta={beta}"] if beta is not None else []), *extra], tag)
        args += [f"seeds={self.spec.seeds}"] + (["method.beta_grid=[]"] if fixed else [])
        if self.plan:
            self.commands.append("python scripts/protocol.py " + " ".join(shlex.quote(a) for a in args))
            return None
        cfg = self.compose(args)
        validate_config(run_config(cfg))  # a bad setting stops the figure before any run, not every run
        # Fixed beta: protocol.json beside the seeds' runs; selected beta: where scripts/protocol.py writes it.
        first = run_config(cfg, phase="test")
        out_dir = run_dir_of(first).parent if fixed else protocol_dir_of(cfg)
        result = run_protocol(cfg, self.runner, out_dir)
        failed = [t["run_dir"] for t in result["test"] if t["final_acc"] is None]
        failed += [f"{method} val beta={b}" for b, a in result["val_final_acc"].items() if a is None]
        self.failures += failed
        return result

    def val(self, scenario: Scenario, method: str, beta: Optional[float] = None) -> Optional[float]:
        """Final validation accuracy of one phase=val run (Fig. 10); None when planning or failed."""
        extra = ["phase=val", *([f"method.beta={beta}"] if beta is not None else [])]
        args = self.overrides(scenario, method, extra)
        if self.plan:
            self.commands.append("python scripts/train.py " + " ".join(shlex.quote(a) for a in args))
            return None
        cfg = run_config(self.compose(args))
        validate_config(cfg)
        summary = attempt(self.runner, cfg)
        if summary is None:
            self.failures.append(str(run_dir_of(cfg)))
            return None
        return summary["final_acc"]

    def beta_grid(self, scenario: Scenario, method: str) -> List[float]:
        """The method's beta candidates (its config's method.beta_grid)."""
        cfg = self.compose(self.overrides(scenario, method))
        return [float(b) for b in cfg.method.get("beta_grid") or []]
