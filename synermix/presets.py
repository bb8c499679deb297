"""The method presets: configs/method/*.yaml, the one list of them (read, not repeated)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Dict, Tuple

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


@lru_cache(maxsize=1)
def method_presets() -> Dict[str, dict]:
    """Every method preset by name: its config group file as a plain dict."""
    from omegaconf import OmegaConf

    return {p.stem: OmegaConf.to_container(OmegaConf.load(p)) for p in sorted((CONFIG_DIR / "method").glob("*.yaml"))}


def preset_switches(name: str) -> Tuple[str, str, float]:
    """(intra, inter, beta) of the preset `name`."""
    preset = method_presets()[name]
    return preset["intra"], preset["inter"], float(preset["beta"])
