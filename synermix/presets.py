"""The method presets: configs/method/*.yaml, the one list of them (read, not repeated)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Dict, Tuple

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


INTRA_ORDER, INTER_ORDER = ("none", "original", "augmented"), ("none", "mixup", "manifold", "cutmix")


def _paper_order(preset: dict) -> tuple:
    """The paper's table order, from a preset's switches: each component alone (baseline, the intra-class terms,
    the inter-class mixers), then their SynerMix combinations; mixers the paper does not test (CutMix) last."""
    intra, inter = preset["intra"], preset["inter"]
    inter_rank = INTER_ORDER.index(inter) if inter in INTER_ORDER else len(INTER_ORDER)
    intra_rank = INTRA_ORDER.index(intra) if intra in INTRA_ORDER else len(INTRA_ORDER)
    return inter_rank >= INTER_ORDER.index("cutmix"), intra != "none" and inter != "none", inter_rank, intra_rank


@lru_cache(maxsize=1)
def method_presets() -> Dict[str, dict]:
    """Every method preset by name (its config group file as a plain dict), in the paper's table order."""
    from omegaconf import OmegaConf

    presets = {p.stem: OmegaConf.to_container(OmegaConf.load(p)) for p in (CONFIG_DIR / "method").glob("*.yaml")}
    return dict(sorted(presets.items(), key=lambda item: (_paper_order(item[1]), item[0])))


def preset_switches(name: str) -> Tuple[str, str, float]:
    """(intra, inter, beta) of the preset `name`."""
    preset = method_presets()[name]
    return preset["intra"], preset["inter"], float(preset["beta"])
