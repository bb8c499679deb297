"""The method presets: configs/method/*.yaml, the one list of them (read, not repeated)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Dict, Tuple

from omegaconf import OmegaConf

from synermix.config.checks import plain_dict

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"


INTRA_ORDER = ("none", "original", "augmented")
INTER_ORDER = ("none", "mixup", "manifold", "cutmix", "saliencymix", "resizemix", "fmix")
# The paper's names for the presets (Sec. 4.1.2), used as labels; mixers the paper does not test are named in its
# scheme: w-ER(<mixer>) alone, w-RA&ER(<mixer>) with the intra-class term.
PAPER_NAMES = {
    "baseline": "wo-RA&ER",
    "intra": "w-RA",
    "intra_aug": "w-RA(aug)",
    "mixup": "w-ER(M)",
    "manifold_mixup": "w-ER(MM)",
    "synermix": "w-RA&ER(M)",
    "synermix_mm": "w-RA&ER(MM)",
    "cutmix": "w-ER(C)",
    "synermix_cutmix": "w-RA&ER(C)",
    "saliencymix": "w-ER(S)",
    "synermix_saliencymix": "w-RA&ER(S)",
    "resizemix": "w-ER(R)",
    "synermix_resizemix": "w-RA&ER(R)",
    "fmix": "w-ER(F)",
    "synermix_fmix": "w-RA&ER(F)",
}


def _paper_order(preset: dict) -> tuple:
    """The paper's table order, from a preset's switches: each component alone (baseline, the intra-class terms,
    the inter-class mixers), then their SynerMix combinations; mixers the paper does not test (CutMix, ...) last."""
    intra, inter = preset["intra"], preset["inter"]
    inter_rank = INTER_ORDER.index(inter) if inter in INTER_ORDER else len(INTER_ORDER)
    intra_rank = INTRA_ORDER.index(intra) if intra in INTRA_ORDER else len(INTRA_ORDER)
    return inter_rank >= INTER_ORDER.index("cutmix"), intra != "none" and inter != "none", inter_rank, intra_rank


@lru_cache(maxsize=1)
def method_presets() -> Dict[str, dict]:
    """Every method preset by name (its config group file as a plain dict), in the paper's table order."""
    presets = {p.stem: plain_dict(OmegaConf.load(p)) for p in (CONFIG_DIR / "method").glob("*.yaml")}
    return dict(sorted(presets.items(), key=lambda item: (_paper_order(item[1]), item[0])))


def paper_name(method: str) -> str:
    """The paper's label for a preset (a custom method keeps its own name)."""
    return PAPER_NAMES.get(method, method)


def synermix_variants() -> Tuple[Tuple[str, str, str], ...]:
    """(SynerMix preset, the preset of its inter-class mixer alone, the mixer's tag) for every mixer with both
    presets, e.g. (synermix, mixup, M), in the paper's order."""
    presets = method_presets()
    variants = []
    for name, preset in presets.items():
        if preset["intra"] != "original" or preset["inter"] == "none":
            continue
        alone = next((n for n, q in presets.items() if q["intra"] == "none" and q["inter"] == preset["inter"]), None)
        if alone is not None:
            variants.append((name, alone, paper_name(name).split("(")[-1].rstrip(")")))
    return tuple(variants)


def preset_switches(name: str) -> Tuple[str, str, float]:
    """(intra, inter, beta) of the preset `name`."""
    preset = method_presets()[name]
    return preset["intra"], preset["inter"], float(preset["beta"])
