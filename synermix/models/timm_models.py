"""Any timm model as a SynerMix classifier: timm's own feature/head split, Manifold MixUp by a forward hook."""

from __future__ import annotations

import difflib
import logging
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch
from torch import Tensor, nn

from synermix.errors import WeightsError, first_line
from synermix.models.registry import ModelEntry
from synermix.models.staged import INPUT
from synermix.models.weights import load_backbone_weights

log = logging.getLogger(__name__)
DEFAULT_POINTS = "feature_info"  # input + the first two feature_info stages past the stem (reduction > 2)


class TimmClassifier(nn.Module):
    """A timm model seen as features (forward_features, then forward_head(pre_logits=True)) + its classifier.

    Manifold MixUp at a point other than the input registers a forward hook on that module for the one
    forward, replacing its output by the mixed one: the model's code is not patched."""

    def __init__(self, net: nn.Module, mix_points: Sequence[str]):
        super().__init__()
        self.net: Any = net  # timm's API (get_classifier, forward_features, ...) beyond nn.Module's
        unknown = [p for p in mix_points if p != INPUT and p not in dict(net.named_modules())]
        if unknown or not mix_points:
            raise ValueError(
                f"model.mix_points={list(mix_points)} must be a non-empty list of 'input' and module "
                f"names of {type(net).__name__} (e.g. its feature_info stages "
                f"{feature_stages(net)}); unknown: {unknown}."
            )
        self.mix_points = tuple(mix_points)

    @property
    def head(self) -> nn.Module:
        """The classifier timm's `get_classifier()` returns (a property: its weights stay under `net.`)."""
        return self.net.get_classifier()

    def features(
        self, x: Tensor, mix_at: Optional[str] = None, mix_fn: Optional[Callable[[Tensor], Tensor]] = None
    ) -> Tensor:
        """Penultimate features of `x`; with `mix_at`, `mix_fn` is applied to that point's output."""
        if mix_at is not None and mix_at not in self.mix_points:
            raise ValueError(f"mix_at={mix_at!r} is not one of this model's mix points {self.mix_points}.")
        if mix_at is not None and mix_fn is None:
            raise ValueError(f"mix_at={mix_at!r} needs the mix_fn to apply there.")
        if mix_at == INPUT and mix_fn is not None:
            x = mix_fn(x)
        handle = None
        if mix_at is not None and mix_at != INPUT and mix_fn is not None:
            handle = self.net.get_submodule(mix_at).register_forward_hook(lambda module, args, out: mix_fn(out))
        try:
            return self.net.forward_head(self.net.forward_features(x), pre_logits=True)
        finally:
            if handle is not None:
                handle.remove()

    def forward(self, x: Tensor) -> Tensor:
        """Class logits."""
        return self.head(self.features(x))


def feature_stages(net: nn.Module) -> List[str]:
    """The modules timm's `feature_info` names past the stem (reduction > 2), in order (empty without one)."""
    info = getattr(net, "feature_info", None) or []
    return [f["module"] for f in info if f.get("reduction", 4) > 2]


def default_mix_points(net: nn.Module) -> List[str]:
    """input + the first two feature_info stages past the stem (for ResNets: layer1, layer2, as Sec. 4.1.2)."""
    return [INPUT, *feature_stages(net)[:2]]


def unknown_arch(arch: str) -> Optional[str]:
    """What is wrong with `model.arch` (None for a name timm.list_models() knows), with the closest names."""
    import timm  # timm: ~1 s, only runs that use it

    names = timm.list_models()
    if arch in names:
        return None
    close = difflib.get_close_matches(arch, names, n=5, cutoff=0.6)
    hint = f"the closest names are {', '.join(close)}" if close else "no name is close to it"
    return (
        f'model.arch={arch!r} is not a timm model: {hint} (python -c "import timm; '
        "print(timm.list_models('*name*'))\" lists them)"
    )


def build_timm_model(
    cfg,
    num_classes: int,
    in_channels: int,
    image_size: int,
    state: Optional[Dict[str, Tensor]] = None,
    source: str = "",
) -> TimmClassifier:
    """timm.create_model(model.arch, num_classes, in_chans, **model.kwargs) wrapped as a TimmClassifier; weights
    from `state` (a local file) or, with model.pretrained, timm's local cache; the classifier always new."""
    import timm  # timm: ~1 s, only runs that use it

    arch, kwargs = str(cfg.arch), dict(cfg.get("kwargs") or {})
    problem = unknown_arch(arch)
    if problem:
        raise ValueError(problem)
    overlay: Dict[str, Any] = {}
    if state is None and cfg.pretrained:
        overlay = {"pretrained_cfg_overlay": {"file": _cached_pretrained_file(arch, bool(cfg.get("download", False)))}}
    net = timm.create_model(
        arch, pretrained=bool(overlay), num_classes=num_classes, in_chans=in_channels, **overlay, **kwargs
    )
    if state is not None:
        state = {k.removeprefix("net."): v for k, v in state.items()}
        head = str(getattr(net, "pretrained_cfg", {}).get("classifier", "head"))
        load_backbone_weights(net, state, head + ".", f"timm {arch}", source)
    points = cfg.get("mix_points", DEFAULT_POINTS)
    if points == DEFAULT_POINTS and not feature_stages(net):
        log.info(
            "timm %s has no feature_info: Manifold MixUp mixes the input only (model.mix_points=[input, "
            "<module name>, ...] picks hidden points).",
            arch,
        )
    points = default_mix_points(net) if points == DEFAULT_POINTS else list(points)
    model = TimmClassifier(net, points)
    _check_input_size(model, arch, in_channels, image_size)
    return model


def _check_input_size(model: TimmClassifier, arch: str, in_channels: int, image_size: int) -> None:
    """One dry forward of a (2, C, S, S) batch, so an image size the architecture cannot take is one message now."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model.features(torch.zeros(2, in_channels, image_size, image_size))
    except Exception as exc:  # timm's own message says what did not fit
        raise ValueError(
            f"timm {arch} cannot take the data's {image_size}x{image_size} images: "
            f"{first_line(exc) or type(exc).__name__}. Pass the size to the "
            f"model (e.g. model.kwargs.img_size={image_size} for ViTs) or pick an architecture "
            "for small inputs."
        ) from None
    finally:
        model.train(was_training)


def _cached_pretrained_file(arch: str, download: bool) -> str:
    """The local file of timm's default pretrained weights for `arch` (Hugging Face or torch hub cache)."""
    import timm  # timm: ~1 s, only runs that use it
    from huggingface_hub import hf_hub_download, try_to_load_from_cache  # with timm: only pretrained timm weights

    cfg = timm.models.get_pretrained_cfg(arch)
    hub_id = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
    if not hub_id:
        raise WeightsError(
            f"model.pretrained=true but timm has no pretrained weights for {arch} on the Hugging Face "
            "hub; pass model.weights=/path/to/file instead."
        )
    for filename in ("model.safetensors", "pytorch_model.bin"):
        found = try_to_load_from_cache(hub_id, filename)
        if isinstance(found, str):
            return found
    if download:
        return hf_hub_download(hub_id, "model.safetensors")
    raise WeightsError(
        f"model.pretrained=true but the pretrained weights of timm {arch} ({hub_id}) are not in the local Hugging "
        "Face cache ($HF_HOME, by default ~/.cache/huggingface). Nothing is downloaded silently: copy them there, "
        "pass model.weights=/path/to/file (a state_dict of this architecture), or set model.download=true on a "
        "machine with internet access."
    )


class Timm(ModelEntry):
    """The registry entry of model=timm: any timm architecture (model.arch), timm's own pretrained weights."""

    pretrained = True

    def problems(self, group) -> List[str]:
        """An architecture timm does not know (closest names offered)."""
        arch = group.get("arch")
        return [p for p in [unknown_arch(arch)] if p] if isinstance(arch, str) else []

    def build(self, cfg, num_classes: int, in_channels: int, image_size: int, state, source: str) -> TimmClassifier:
        """build_timm_model (see there)."""
        return build_timm_model(cfg, num_classes, in_channels, image_size, state, source)


TIMM = Timm()
