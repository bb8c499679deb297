"""The paper's six backbones: every preset trains, mix points are where the paper puts them, weights load offline."""

import pytest
import torch
import torchvision
from omegaconf import OmegaConf
from torch import nn

from helpers import make_cfg
from synermix.config.presets import preset_switches
from synermix.method.loss import SynerMixLoss
from synermix.models import WeightsError, build_model
from synermix.run.training import run_training
from synermix.run.validation import ConfigError, validate_config

PAPER_MODELS = ["resnet18", "resnet34", "resnet50", "resnet101", "mobilenetv3_large", "swin_t"]
ALL_MODELS = ["cifar_resnet", *PAPER_MODELS]
LOSS_PRESETS = {m: preset_switches(m) for m in ("baseline", "mixup", "manifold_mixup", "synermix", "synermix_mm")}
EXPECTED_MIX_POINTS = {
    "cifar_resnet": ("input", "layer1", "layer2"),
    "resnet18": ("input", "layer1", "layer2"),
    "resnet34": ("input", "layer1", "layer2"),
    "resnet50": ("input", "layer1", "layer2"),
    "resnet101": ("input", "layer1", "layer2"),
    "mobilenetv3_large": ("input", "stem", "block1", "block2"),
    "swin_t": ("input", "patch_embed", "block2", "block4"),
}


def model_cfg(name, **overrides):
    return OmegaConf.merge(make_cfg(f"model={name}").model, overrides)


def build(name, image_size=16, num_classes=4, in_channels=3, **overrides):
    torch.manual_seed(0)
    return build_model(model_cfg(name, **overrides), num_classes, in_channels, image_size)


@pytest.mark.parametrize(
    "name", [n if n != "resnet101" else pytest.param(n, marks=pytest.mark.slow) for n in PAPER_MODELS]
)
def test_every_loss_preset_runs_forward_and_backward(name):  # ResNet-101: ResNet-50's code path, 9 s: test-all
    model = build(name)
    g = torch.Generator().manual_seed(0)
    x_orig, x_aug = torch.randn(6, 3, 16, 16), torch.randn(6, 3, 16, 16)
    y = torch.tensor([0, 0, 1, 1, 3, 3])
    for intra, inter, beta in LOSS_PRESETS.values():
        model.zero_grad()
        terms = SynerMixLoss(intra, inter, beta, num_classes=4)(model, x_orig, x_aug, y, g)
        assert torch.isfinite(terms.total)
        terms.total.backward()
        assert model.head.weight.grad is not None and torch.isfinite(model.head.weight.grad).all()


@pytest.mark.parametrize("name", ALL_MODELS)
def test_head_is_the_final_linear_layer_and_features_feed_it(name):
    model = build(name, num_classes=7).eval()
    x = torch.randn(2, 3, 16, 16)
    f = model.features(x)
    assert isinstance(model.head, nn.Linear) and model.head.out_features == 7
    assert f.shape == (2, model.head.in_features)
    torch.testing.assert_close(model(x), model.head(f))
    assert model.mix_points == EXPECTED_MIX_POINTS[name]


@pytest.mark.parametrize("name", ALL_MODELS)
def test_mixing_at_each_point_changes_exactly_the_activations_after_it(name):
    model = build(name).eval()
    outputs = {}
    for stage_name, stage in model.stages.items():
        stage.register_forward_hook(lambda m, i, o, n=stage_name: outputs.__setitem__(n, o.detach().clone()))
    x = torch.randn(3, 3, 16, 16)
    model.features(x)
    clean = dict(outputs)
    names = list(model.stages)
    for point in model.mix_points:
        model.features(x, mix_at=point, mix_fn=lambda h: 0.5 * h + 0.5 * h.flip(0))
        first_changed = 0 if point == "input" else names.index(point) + 1
        for i, stage_name in enumerate(names):
            assert torch.equal(clean[stage_name], outputs[stage_name]) == (i < first_changed), (point, stage_name)


def test_small_input_stem_is_chosen_from_the_image_size():
    small = build("resnet18", image_size=32)
    stem = small.stages["stem"]
    assert stem[0].kernel_size == (3, 3) and stem[0].stride == (1, 1) and isinstance(stem[3], nn.Identity)
    large = build("resnet18", image_size=224)
    stem = large.stages["stem"]
    assert stem[0].kernel_size == (7, 7) and stem[0].stride == (2, 2) and isinstance(stem[3], nn.MaxPool2d)
    assert build("resnet34", image_size=84).stages["stem"][0].kernel_size == (3, 3)  # mini-ImageNet


def test_grey_input_adapts_the_first_convolution():
    for name in ("resnet18", "mobilenetv3_large", "swin_t"):
        assert build(name, image_size=224, in_channels=1)(torch.randn(2, 1, 64, 64)).shape == (2, 4)
    assert build("resnet18", image_size=28, in_channels=1)(torch.randn(2, 1, 28, 28)).shape == (2, 4)


def reference_features(name, net):
    """torchvision's own forward up to (not including) its final linear layer."""
    if name.startswith("resnet"):
        net.fc = nn.Identity()
    elif name == "mobilenetv3_large":
        net.classifier[-1] = nn.Identity()
    else:
        net.head = nn.Identity()
    return net.eval()


@pytest.mark.parametrize(
    "name,ctor",
    [
        ("resnet18", torchvision.models.resnet18),
        ("mobilenetv3_large", torchvision.models.mobilenet_v3_large),
        ("swin_t", torchvision.models.swin_t),
    ],
)
def test_weights_file_round_trips(name, ctor, tmp_path):
    torch.manual_seed(123)
    net = ctor()
    path = tmp_path / "weights.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in net.state_dict().items()}}, path)  # DDP-style checkpoint
    model = build(name, image_size=224, num_classes=5, weights=str(path)).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model.features(x), reference_features(name, net)(x))
    assert model.head.out_features == 5


def test_pretrained_comes_from_torchvisions_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsError) as info:
        build("resnet18", image_size=224, pretrained=True)
    message = str(info.value)
    expected = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    assert str(expected) in message and "model.weights=" in message and "model.download=true" in message
    torch.manual_seed(5)
    net = torchvision.models.resnet18()
    expected.parent.mkdir(parents=True)
    torch.save(net.state_dict(), expected)
    model = build("resnet18", image_size=224, pretrained=True).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model.features(x), reference_features("resnet18", net)(x))


def test_bad_weights_files_are_refused_clearly(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        build("resnet18", weights=str(tmp_path / "nope.pth"))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(WeightsError, match="not a PyTorch checkpoint"):
        build("resnet18", weights=str(junk))
    other = tmp_path / "r34.pth"
    torch.save(torchvision.models.resnet34().state_dict(), other)
    with pytest.raises(WeightsError, match="do not fit resnet18"):
        build("resnet18", weights=str(other))
    swin = tmp_path / "swin.pth"
    torch.save(torchvision.models.swin_t().state_dict(), swin)
    with pytest.raises(WeightsError, match="do not fit resnet50"):
        build("resnet50", weights=str(swin))


@pytest.mark.parametrize("keep", [False, True])
def test_a_runs_weights_or_checkpoint_can_initialise_a_new_run(tmp_path, keep):
    run_training(
        make_cfg(
            "method=baseline",
            "train.epochs=2",
            "train.average_last=1",
            "dataset.max_per_class=4",
            f"train.keep_checkpoints={str(keep).lower()}",
        ),
        tmp_path,
    )
    saved = torch.load(tmp_path / "weights.pt", weights_only=True)
    for name in ["weights.pt"] + (["checkpoint.pt"] if keep else []):
        model = build_model(model_cfg("cifar_resnet", weights=str(tmp_path / name)), 10, 1, 8)
        torch.testing.assert_close(model.stages["layer1"][0].conv1.weight, saved["stages.layer1.0.conv1.weight"])
    assert (tmp_path / "checkpoint.pt").exists() == keep and (tmp_path / "checkpoint.prev.pt").exists() == keep


def test_pretrained_flag_is_refused_for_the_model_without_imagenet_weights():
    with pytest.raises(ConfigError, match="no pretrained weights exist for model.name=cifar_resnet"):
        validate_config(make_cfg("model.pretrained=true"))


# In `make test-all` (10-60 s each): `make test` trains one epoch of MobileNetV3, Swin-T and ResNet-18 through
# the figures' smoke run (Fig. 9), and checks every preset's forward/backward on all six above.
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) for n in PAPER_MODELS])
def test_one_epoch_with_every_method_on_a_tiny_fixture(name, tmp_path):
    for method in ["baseline", "intra", "intra_aug", "mixup", "manifold_mixup", "synermix", "synermix_mm"]:
        cfg = make_cfg(
            f"model={name}",
            f"method={method}",
            "dataset.max_per_class=4",
            "train.batch_size=8",
            "train.epochs=1",
            "train.average_last=1",
        )
        summary = run_training(cfg, tmp_path / method)
        assert summary["status"] == "complete" and summary["model"] == name
        assert 0 <= summary["final_acc"] <= 100
        assert (tmp_path / method / "metrics.csv").read_text().count("\n") == 2


@pytest.mark.parametrize(
    "name,expected",
    [
        ("resnet18", {"input": 1 / 3, "layer1": 1 / 3, "layer2": 1 / 3}),
        ("mobilenetv3_large", {"input": 1 / 2, "stem": 1 / 4, "block1": 1 / 4}),
        ("swin_t", {"input": 1 / 2, "patch_embed": 1 / 4, "merge1": 1 / 4}),
    ],
)
def test_authors_mix_points_are_drawn_as_the_released_code_draws_them(name, expected):
    # Released code: ResNets random.randint(0, 2) over input/layer1/layer2; MobileNetV3 and Swin-T
    # random.randint(0, 3) where 0 and 1 both mix the input, 2 after features[0], 3 after features[1] (MobileNet)
    # or after features[2] (Swin).
    from synermix.method.mixers.manifold import ManifoldMixUp

    model = build(name, image_size=224 if name == "swin_t" else 16, mix_points="authors")
    assert build(name, image_size=16).mix_points == EXPECTED_MIX_POINTS[name]  # the default stays the paper's
    mixer, g, y = ManifoldMixUp(), torch.Generator().manual_seed(0), torch.arange(4)
    draws = [mixer.draw(y, g, (4, 3, 16, 16), model.mix_points).mix_at for _ in range(6000)]
    for point, p in expected.items():
        assert draws.count(point) / len(draws) == pytest.approx(p, abs=0.02), point
    assert set(draws) == set(expected)
    torch.manual_seed(0)
    net = {
        "resnet18": torchvision.models.resnet18,
        "mobilenetv3_large": torchvision.models.mobilenet_v3_large,
        "swin_t": torchvision.models.swin_t,
    }[name]()
    after = {"mobilenetv3_large": ("stem", 0, "block1", 1), "swin_t": ("patch_embed", 0, "merge1", 2)}.get(name)
    if after:  # the stages named are torchvision's features[i] themselves
        for stage, index in (after[:2], after[2:]):
            assert type(model.stages[stage]) is type(net.features[index])
            assert [p.shape for p in model.stages[stage].parameters()] == [
                p.shape for p in net.features[index].parameters()
            ]


def test_small_input_stem_keeps_pytorchs_default_conv_init_like_the_authors():
    # The authors replace conv1 with a new nn.Conv2d(3, 64, 3, 1, 1, bias=False): kaiming_uniform(a=sqrt(5)),
    # i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)), std bound/sqrt(3) (kaiming_normal fan_out would give ~0.059).
    w = build("resnet18", image_size=32).stages["stem"][0].weight.detach()
    bound = 1 / (3 * 9) ** 0.5
    assert w.abs().max() <= bound
    assert w.std().item() == pytest.approx(bound / 3**0.5, rel=0.05)


def test_the_registry_names_torchvision_constructors_weights_and_mix_point_sets_that_exist():
    import torchvision.models as tvm

    from synermix.models import MIX_POINT_SETS, MODELS, model_entry
    from synermix.models.torchvision_archs import TorchvisionArch
    from synermix.models.torchvision_models import MIX_POINTS, WRAPPERS, imagenet_weights

    archs = {name: model_entry({"name": name}) for name in MODELS.names()}
    archs = {name: entry for name, entry in archs.items() if isinstance(entry, TorchvisionArch)}
    assert tuple(archs) == tuple(PAPER_MODELS)
    for name, arch in archs.items():
        assert arch.name == name and callable(getattr(tvm, arch.ctor)) and arch.family in WRAPPERS
        assert imagenet_weights(arch.weights) in tvm.get_model_weights(arch.ctor)
    assert all(tuple(sets) == MIX_POINT_SETS for sets in MIX_POINTS.values())
