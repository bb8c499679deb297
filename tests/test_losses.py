"""The one SynerMix loss: every preset against a direct computation of Eq. 2-8."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers import tiny_model
from synermix.config.presets import method_presets, preset_switches
from synermix.method.inter import sample_lam
from synermix.method.intra import intra_class_loss
from synermix.method.loss import SynerMixLoss
from synermix.method.mixers import build_mixer
from synermix.models.staged import StagedClassifier

PRESETS = {name: preset_switches(name) for name in method_presets()}
IMAGE_MIXERS = ("cutmix", "saliencymix", "resizemix", "fmix")  # they need image batches (N, C, H, W)


def batch(seed=0, n=10, d=4, k=3):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % k
    return torch.randn(n, d, generator=g), torch.randn(n, d, generator=g), y


def direct_intra(model, x, y, g, P=1):
    """Eq. 1-2 written out with an explicit loop over classes."""
    f = model.features(x)
    r = torch.rand((P, 1, len(y)), generator=g)[:, 0]
    losses = []
    for c in sorted(set(y.tolist())):
        m = y == c
        for p in range(P):
            w = r[p][m] / r[p][m].sum()
            f_syn = (w[:, None] * f[m]).sum(0)
            losses.append(F.cross_entropy(model.head(f_syn)[None], torch.tensor([c])))
    return torch.stack(losses).mean()


def direct_inter(model, x, y, inter, g, alpha=1.0, lam_mode="batch"):
    """Eq. 3/4 (or plain CE when inter='none'), with the loss's documented draw order."""
    if inter == "none":
        return F.cross_entropy(model(x), y)
    perm = torch.randperm(len(y), generator=g)
    lam = sample_lam(alpha, len(y), lam_mode, g)
    points = ("input",) if inter == "mixup" else model.mix_points
    point = points[int(torch.randint(len(points), (1,), generator=g))]
    lam_b = lam.view(-1, 1) if lam.dim() else lam
    h = x
    if point == "input":
        h = lam_b * h + (1 - lam_b) * h[perm]
    for name, stage in model.stages.items():
        h = stage(h)
        if name == point:
            h = lam_b * h + (1 - lam_b) * h[perm]
    logp = F.log_softmax(model.head(h), dim=1)
    n = torch.arange(len(y))
    return -(lam * logp[n, y] + (1 - lam) * logp[n, y[perm]]).mean()


@pytest.mark.parametrize("preset", [p for p in PRESETS if PRESETS[p][1] not in IMAGE_MIXERS])  # images: below
@pytest.mark.parametrize("lam_mode", ["batch", "elem"])
def test_every_preset_matches_direct_computation(preset, lam_mode):
    intra, inter, beta = PRESETS[preset]
    model = tiny_model()
    x_orig, x_aug, y = batch()
    loss = SynerMixLoss(intra, build_mixer(inter, alpha=0.7, lam_mode=lam_mode), beta, num_classes=3)
    terms = loss(model, x_orig, x_aug, y, torch.Generator().manual_seed(42))

    g = torch.Generator().manual_seed(42)
    l_inter = direct_inter(model, x_aug, y, inter, g, alpha=0.7, lam_mode=lam_mode)
    expected = (1 - beta) * l_inter
    if intra != "none":
        l_intra = direct_intra(model, x_orig if intra == "original" else x_aug, y, g)
        expected = expected + beta * l_intra
        assert terms.intra.item() == pytest.approx(l_intra.item(), rel=1e-5)
    else:
        assert terms.intra is None
    assert terms.inter.item() == pytest.approx(l_inter.item(), rel=1e-5)
    assert terms.total.item() == pytest.approx(expected.item(), rel=1e-5)
    terms.total.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_intra_only_with_single_rows_is_mean_class_cross_entropy():
    # beta = 1, one row per class: f_syn^c = f_c, so L_total = L_intra = mean_c CE(head(f_c), c).
    model = tiny_model()
    x, _, _ = batch(n=3)
    y = torch.tensor([2, 0, 1])
    terms = SynerMixLoss("original", "none", beta=1.0, num_classes=3)(model, x, x, y, torch.Generator())
    assert terms.inter is None
    assert terms.total.item() == pytest.approx(F.cross_entropy(model(x), y).item(), rel=1e-6)


def test_num_per_class_averages_all_synthesized_rows():
    model = tiny_model()
    x, _, y = batch(n=9)
    got = intra_class_loss(model.head, model.features(x), y, 4, torch.Generator().manual_seed(5), num_classes=3)
    want = direct_intra(model, x, y, torch.Generator().manual_seed(5), P=4)
    assert got.item() == pytest.approx(want.item(), rel=1e-5)


def test_fixed_class_list_equals_unique_classes_when_some_are_absent():
    # num_classes=7 masks the absent classes 1, 3-6; the result equals the unique-label path.
    model = tiny_model(classes=7)
    x, _, _ = batch(n=6)
    y = torch.tensor([0, 2, 0, 2, 2, 0])
    f = model.features(x)
    a = intra_class_loss(model.head, f, y, 2, torch.Generator().manual_seed(1), num_classes=7)
    b = intra_class_loss(model.head, f, y, 2, torch.Generator().manual_seed(1), num_classes=None)
    assert a.item() == pytest.approx(b.item(), rel=1e-6)


def test_manifold_mixup_draws_every_mix_point():
    model = tiny_model()
    seen = []
    original = model.features

    def spy(x, mix_at=None, mix_fn=None):
        seen.append(mix_at)
        return original(x, mix_at, mix_fn)

    model.features = spy
    loss = SynerMixLoss("none", "manifold", 0.0)
    g = torch.Generator().manual_seed(0)
    x, _, y = batch()
    for _ in range(60):
        loss(model, None, x, y, g)
    assert set(seen) == {"input", "l1"}
    seen.clear()
    SynerMixLoss("none", "mixup", 0.0)(model, None, x, y, g)
    assert seen == ["input"]


def test_original_view_is_required_only_for_intra_original():
    model = tiny_model()
    _, x, y = batch()
    with pytest.raises(ValueError, match="x_orig"):
        SynerMixLoss("original", "mixup", 0.1)(model, None, x, y, torch.Generator())
    assert not SynerMixLoss("augmented", "mixup", 0.1).needs_original
    assert not SynerMixLoss("original", "mixup", 0.0).needs_original  # beta = 0: intra not computed


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(intra="orig"), "intra"),
        (dict(inter="cutout"), "inter"),
        (dict(label_smoothing=1.0), "label_smoothing"),
        (dict(beta=1.5), "beta"),
        (dict(beta=-0.1), "beta"),
        (dict(intra="none", beta=0.3), "beta=0.3"),
        (dict(inter={"_target_": "synermix.method.mixers.mixup.MixUp", "alpha": 0.0}), "alpha"),
        (dict(inter={"_target_": "synermix.method.mixers.cutmix.CutMix", "lam_mode": "x"}), "lam_mode"),
        (dict(num_per_class=0), "num_per_class"),
    ],
)
def test_bad_switches_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SynerMixLoss(**kwargs)


@pytest.mark.parametrize("preset", PRESETS)
def test_term_by_term_backward_gives_the_gradients_of_the_total(preset):
    intra, inter, beta = PRESETS[preset]
    x_orig, x_aug, y = batch()
    if inter in IMAGE_MIXERS:
        x_orig, x_aug = x_orig.repeat(1, 15).view(-1, 2, 5, 6), x_aug.repeat(1, 15).view(-1, 2, 5, 6)
    grads = []
    for early in (False, True):
        model = image_model() if inter in IMAGE_MIXERS else tiny_model()
        loss = SynerMixLoss(intra, inter, beta, num_classes=3)
        generator = torch.Generator().manual_seed(4)
        if early:  # as the trainer does: each term back-propagated before the next one's forward
            total = 0.0
            for term in loss.terms(model, x_orig, x_aug, y, generator):
                (term.weight * term.value).backward(retain_graph=loss.shares_graph)
                total += term.weight * term.value.item()
        else:
            terms = loss(model, x_orig, x_aug, y, generator)
            terms.total.backward()
            total = terms.total.item()
        grads.append(([p.grad.clone() for p in model.parameters()], total))
    for a, b in zip(grads[0][0], grads[1][0]):
        torch.testing.assert_close(a, b)
    assert grads[0][1] == pytest.approx(grads[1][1])


def image_model(seed=0, classes=3):
    """A BatchNorm-free classifier of (N, 2, 5, 6) images (CutMix needs images)."""
    torch.manual_seed(seed)
    return StagedClassifier(
        stages=[("flat", nn.Flatten()), ("l1", nn.Linear(60, 6)), ("act", nn.Tanh()), ("l2", nn.Linear(6, 5))],
        head=nn.Linear(5, classes),
        mix_points=("input",),
    )


def direct_cutmix(model, x, y, g, alpha, lam_mode, label_smoothing=0.0):
    """CutMix written out per sample: draws in the loss's order (permutation, lambda, box rows, box columns)."""
    n, h, w = len(y), x.shape[-2], x.shape[-1]
    perm = torch.randperm(n, generator=g)
    lam = sample_lam(alpha, n, lam_mode, g).reshape(-1)
    cy, cx = torch.randint(0, h, (lam.numel(),), generator=g), torch.randint(0, w, (lam.numel(),), generator=g)
    mixed, kept = x.clone(), []
    for i in range(n):
        k = i if lam.numel() > 1 else 0
        ch, cw = int(h * math.sqrt(1 - float(lam[k]))), int(w * math.sqrt(1 - float(lam[k])))
        y0, y1 = max(int(cy[k]) - ch // 2, 0), min(int(cy[k]) + (ch + 1) // 2, h)
        x0, x1 = max(int(cx[k]) - cw // 2, 0), min(int(cx[k]) + (cw + 1) // 2, w)
        mixed[i, :, y0:y1, x0:x1] = x[perm[i], :, y0:y1, x0:x1]
        kept.append(1 - (y1 - y0) * (x1 - x0) / (h * w))
    logits = model(mixed)
    ce_a = F.cross_entropy(logits, y, reduction="none", label_smoothing=label_smoothing)
    ce_b = F.cross_entropy(logits, y[perm], reduction="none", label_smoothing=label_smoothing)
    kept = torch.tensor(kept)
    return (kept * ce_a + (1 - kept) * ce_b).mean()


@pytest.mark.parametrize("preset", ["cutmix", "synermix_cutmix"])
@pytest.mark.parametrize("lam_mode", ["batch", "elem"])
@pytest.mark.parametrize("n", [9, 12])  # odd: a supplemented batch
def test_cutmix_presets_match_direct_computation(preset, lam_mode, n):
    intra, inter, beta = PRESETS[preset]
    model = image_model()
    g = torch.Generator().manual_seed(1)
    x_orig, x_aug, y = torch.randn(n, 2, 5, 6, generator=g), torch.randn(n, 2, 5, 6, generator=g), torch.arange(n) % 3
    loss = SynerMixLoss(
        intra, build_mixer(inter, alpha=0.6, lam_mode=lam_mode), beta, num_classes=3, label_smoothing=0.1
    )
    terms = loss(model, x_orig, x_aug, y, torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    l_inter = direct_cutmix(model, x_aug, y, g, 0.6, lam_mode, label_smoothing=0.1)
    assert terms.inter.item() == pytest.approx(l_inter.item(), rel=1e-5)
    expected = (1 - beta) * l_inter
    if intra != "none":
        l_intra = intra_class_loss(model.head, model.features(x_orig), y, 1, g, num_classes=3, label_smoothing=0.1)
        expected = expected + beta * l_intra
    assert terms.total.item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("preset", ["baseline", "mixup", "intra", "synermix"])
def test_label_smoothing_applies_to_every_cross_entropy_term(preset):
    intra, inter, beta = PRESETS[preset]
    model = tiny_model()
    x_orig, x_aug, y = batch()
    smooth = SynerMixLoss(intra, inter, beta, num_classes=3, label_smoothing=0.2)
    terms = smooth(model, x_orig, x_aug, y, torch.Generator().manual_seed(3))
    # CE with smoothing eps = (1 - eps) * CE(hard) + eps * mean over classes of -log p: rebuild it by hand
    g = torch.Generator().manual_seed(3)
    if inter == "none":
        logp = F.log_softmax(model(x_aug), 1)
        hard = F.nll_loss(logp, y)
        expected_inter = 0.8 * hard - 0.2 * logp.mean(1).mean()
    else:
        perm = torch.randperm(len(y), generator=g)
        lam = sample_lam(1.0, len(y), "batch", g)
        torch.randint(1, (1,), generator=g)  # the mix point draw (one point: input)
        logp = F.log_softmax(model(lam * x_aug + (1 - lam) * x_aug[perm]), 1)
        uniform = -logp.mean(1)
        ce_a = 0.8 * F.nll_loss(logp, y, reduction="none") + 0.2 * uniform
        ce_b = 0.8 * F.nll_loss(logp, y[perm], reduction="none") + 0.2 * uniform
        expected_inter = (lam * ce_a + (1 - lam) * ce_b).mean()
    assert terms.inter.item() == pytest.approx(expected_inter.item(), rel=1e-5)
    if intra != "none":
        hard = SynerMixLoss(intra, inter, beta, num_classes=3)(
            model, x_orig, x_aug, y, torch.Generator().manual_seed(3)
        )
        assert terms.intra.item() != pytest.approx(hard.intra.item())  # the intra-class CE is smoothed too
    zero = SynerMixLoss(intra, inter, beta, num_classes=3, label_smoothing=0.0)(
        model, x_orig, x_aug, y, torch.Generator().manual_seed(3)
    )
    default = SynerMixLoss(intra, inter, beta, num_classes=3)(model, x_orig, x_aug, y, torch.Generator().manual_seed(3))
    assert zero.total.item() == default.total.item()  # 0 leaves the numbers as they were


def _bn_model(seed=0, k=3):
    torch.manual_seed(seed)
    stages = [
        ("conv", nn.Conv2d(1, 4, 3, padding=1)),
        ("bn", nn.BatchNorm2d(4)),
        ("act", nn.ReLU()),
        ("pool", nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())),
    ]
    return StagedClassifier(stages, nn.Linear(4, k), ("input",))


def _authors_step(model, x_orig, x_aug, y, g, beta=0.1):
    """One SynerMix(M) step written out in the authors' order: original view, L_intra, backward; then the
    mixed augmented view, L_inter, backward (draws: partner permutation, lambda, mix point, intra weights)."""
    perm = torch.randperm(len(y), generator=g)
    lam = sample_lam(1.0, len(y), "batch", g)
    torch.randint(1, (1,), generator=g)  # the mix point: MixUp has one
    (beta * direct_intra(model, x_orig, y, g)).backward()
    logp = F.log_softmax(model(lam * x_aug + (1 - lam) * x_aug[perm]), dim=1)
    n = torch.arange(len(y))
    ((1 - beta) * -(lam * logp[n, y] + (1 - lam) * logp[n, y[perm]]).mean()).backward()


@pytest.mark.parametrize("view_order", ["original_first", "augmented_first"])
def test_batchnorm_statistics_follow_the_authors_order(view_order):
    from synermix.data.stream import Batch
    from synermix.seeding import RunSeeds
    from synermix.train.trainer import Trainer, TrainOptions

    g = torch.Generator().manual_seed(4)
    x_orig, y = torch.randn(12, 1, 6, 6, generator=g), torch.arange(12) % 3
    x_aug = x_orig.flip(-1) + 0.5 * torch.randn(12, 1, 6, 6, generator=g) + 1.0  # other batch statistics
    ours, theirs = _bn_model(), _bn_model()
    loss = SynerMixLoss("original", "mixup", 0.1, num_classes=3, view_order=view_order)
    trainer = Trainer(ours, loss, torch.optim.SGD(ours.parameters(), lr=0.1), None, TrainOptions(RunSeeds(9)))
    trainer.run_step(Batch(0, x_orig, x_aug, y))  # the trainer's step: each term back-propagated as it comes
    optimizer = torch.optim.SGD(theirs.parameters(), lr=0.1)
    _authors_step(theirs, x_orig, x_aug, y, torch.Generator().manual_seed(RunSeeds(9).step(0, 0)[0]))
    optimizer.step()
    # The gradients do not depend on the order: the updated weights agree to float32 rounding either way.
    for (name, a), b in zip(ours.named_parameters(), theirs.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    bn_ours, bn_theirs = ours.stages["bn"], theirs.stages["bn"]
    # Running statistics: 0.81 * init + 0.09 * (first view's) + 0.1 * (second view's) batch statistics; the two
    # views' statistics differ by O(1) here, so the other order is off by ~1e-2, float32 rounding by ~1e-7.
    close = all(
        torch.allclose(a, b, rtol=0, atol=1e-5)
        for a, b in ((bn_ours.running_mean, bn_theirs.running_mean), (bn_ours.running_var, bn_theirs.running_var))
    )
    assert close == (view_order == "original_first")
    if not close:
        assert (bn_ours.running_mean - bn_theirs.running_mean).abs().max() > 1e-3


def test_term_by_term_backward_runs_the_original_view_first():
    seen = []
    model = tiny_model()
    model.stages["l1"].register_forward_hook(lambda m, i, o: seen.append(i[0].clone()))
    x_orig, x_aug, y = batch()
    loss = SynerMixLoss("original", "mixup", 0.1, num_classes=3)
    names = []
    for term in loss.terms(model, x_orig, x_aug, y, torch.Generator().manual_seed(0)):
        assert len(seen) == len(names) + 1  # each term's forward runs when the term is asked for
        names.append(term.name)
    assert (
        names == ["intra", "inter"]
        and len(seen) == 2
        and torch.equal(seen[0], x_orig)
        and not torch.equal(seen[1], x_aug)
    )
