"""What a figure needs at a scale: its scenarios, methods and seeds, read from
synermix/results/figures/scales/<scale>.yaml
(kept out of configs/ so that train.py's --help does not list them as a config group of training)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from omegaconf import OmegaConf

from synermix.config.checks import plain_dict
from synermix.config.presets import PAPER_NAMES, paper_name  # noqa: F401  (the figures' labels)
from synermix.errors import ConfigError
from synermix.run.validation import METHOD_NAMES

CONFIG_DIR = Path(__file__).resolve().parents[3] / "configs"
SCALES_DIR = Path(__file__).resolve().parent / "scales"
SCALES = ("smoke", "cpu", "paper")


@dataclass(frozen=True)
class Scenario:
    """One experimental setting: Hydra overrides on top of the scale's common ones."""

    key: str
    label: str
    overrides: List[str]
    tag: str = ""  # run_tag: keeps a variant's run directories apart


@dataclass
class FigureSpec:
    """Everything one figure target runs at one scale."""

    name: str
    scale: str
    runs: Path
    seeds: int
    select_beta: bool
    common: List[str]
    methods: List[str]
    scenarios: List[Scenario]
    options: Dict[str, Any] = field(default_factory=dict)

    @property
    def scenario(self) -> Scenario:
        """The single scenario of a one-scenario figure (t-SNE)."""
        return self.scenarios[0]


def _scenario(table: Dict[str, Any], key: str, source: Path, figure: str) -> Scenario:
    if key not in table:
        raise ConfigError(
            f"{source}: {figure} refers to scenario {key!r}, which its `scenarios:` table does not define "
            f"(defined: {', '.join(sorted(table)) or 'none'})."
        )
    entry = table[key]
    overrides = [str(o) for o in entry.get("overrides") or []]
    tag = str(entry.get("tag") or "")
    if tag and (not tag.startswith("_") or "/" in tag):
        raise ConfigError(f"{source}: scenario {key!r} has tag={tag!r}; a tag must start with '_' and hold no '/'.")
    return Scenario(key=key, label=str(entry.get("label") or key), overrides=overrides, tag=tag)


def load_figure_spec(name: str, scale: str, runs: Optional[Path] = None) -> FigureSpec:
    """The spec of figure `name` at `scale`; `runs` replaces the scale's run folder (e.g. a test's tmp dir)."""
    if scale not in SCALES:
        raise ConfigError(f"Unknown scale {scale!r}: it must be one of {list(SCALES)}.")
    source = SCALES_DIR / f"{scale}.yaml"
    data = plain_dict(OmegaConf.load(source))
    if name not in data:
        raise ConfigError(
            f"{source} defines no `{name}:` entry; figures defined there: "
            f"{', '.join(k for k in data if k.startswith('fig'))}."
        )
    entry = data[name] or {}
    keys = entry.get("scenarios") or ([entry["scenario"]] if "scenario" in entry else [])
    if not keys:
        raise ConfigError(f"{source}: `{name}:` lists no scenario (give `scenarios: [...]` or `scenario: key`).")
    methods = [str(m) for m in entry.get("methods", data.get("methods") or [])]
    unknown = [m for m in methods if m not in METHOD_NAMES]
    if unknown:
        raise ConfigError(f"{source}: {name} lists unknown methods {unknown}; presets are {list(METHOD_NAMES)}.")
    seeds = entry.get("seeds", data.get("seeds", 3))
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise ConfigError(f"{source}: {name} has seeds={seeds!r}; it must be an integer >= 1.")
    options = {k: v for k, v in entry.items() if k not in ("scenarios", "scenario", "methods", "seeds", "select_beta")}
    return FigureSpec(
        name=name,
        scale=scale,
        runs=Path(runs) if runs is not None else Path(data.get("runs") or "outputs/runs"),
        seeds=seeds,
        select_beta=bool(entry.get("select_beta", data.get("select_beta", True))),
        common=[str(o) for o in data.get("common") or []],
        methods=methods,
        scenarios=[_scenario(data.get("scenarios") or {}, str(k), source, name) for k in keys],
        options=options,
    )
