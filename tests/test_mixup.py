"""Eq. 1 (intra-class mixup), lambda sampling and Eq. 3 mixing on hand-computed and random cases."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from timm.data.mixup import cutmix_bbox_and_lam, rand_bbox

from synermix.method.inter import cutmix, cutmix_box, cutmix_boxes, mix, mixup_cross_entropy, sample_lam
from synermix.method.intra import intra_class_mixup


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_weights_are_normalised_uniform_draws_of_each_class():
    # With features = identity, each synthesized row IS its weight vector over the batch.
    labels = torch.tensor([2, 0, 2, 1, 0, 2])
    syn, syn_labels = intra_class_mixup(torch.eye(6), labels, generator=gen(3))
    assert syn_labels.tolist() == [0, 1, 2]
    r = torch.rand((1, 1, 6), generator=gen(3)).flatten()  # the draws the function made
    for row, c in zip(syn, syn_labels.tolist()):
        members = labels == c
        expected = torch.where(members, r, torch.zeros(6)) / r[members].sum()
        torch.testing.assert_close(row, expected)
        assert row.sum().item() == pytest.approx(1.0)
        assert (row[~members] == 0).all() and (row[members] > 0).all()


def test_hand_computed_two_member_class():
    f = torch.tensor([[1.0, 0.0], [3.0, 4.0], [10.0, 10.0]])
    labels = torch.tensor([5, 5, 7])
    syn, syn_labels = intra_class_mixup(f, labels, generator=gen(1))
    r1, r2, _ = torch.rand((1, 1, 3), generator=gen(1)).flatten().tolist()
    w1, w2 = r1 / (r1 + r2), r2 / (r1 + r2)
    torch.testing.assert_close(syn[0], torch.tensor([w1 * 1 + w2 * 3, w2 * 4]))
    torch.testing.assert_close(syn[1], f[2])  # a single-member class yields its own row
    assert syn_labels.tolist() == [5, 7]


def test_num_per_class_rows_are_grouped_by_ascending_class():
    labels = torch.tensor([3, 1, 3, 1, 1])
    f = torch.randn(5, 4, generator=gen(0))
    syn, syn_labels = intra_class_mixup(f, labels, num_per_class=3, generator=gen(0))
    assert syn.shape == (6, 4)
    assert syn_labels.tolist() == [1, 1, 1, 3, 3, 3]
    assert not torch.allclose(syn[0], syn[1])  # independent draws per synthesized row


def test_convex_combination_invariant_on_random_inputs():
    g = gen(7)
    for _ in range(20):
        n, d, k = 40, 8, 6
        f = torch.randn(n, d, generator=g)
        labels = torch.randint(k, (n,), generator=g)
        syn, syn_labels = intra_class_mixup(f, labels, num_per_class=2, generator=g)
        assert torch.equal(syn_labels, torch.unique(labels).repeat_interleave(2))
        for row, c in zip(syn, syn_labels):
            members = f[labels == c]
            assert (row >= members.min(0).values - 1e-5).all() and (row <= members.max(0).values + 1e-5).all()


def test_weights_follow_normalised_uniforms_not_dirichlet():
    # Two members: w1 = r1 / (r1 + r2). P(w1 < 1/4) = P(r2 > 3 r1) = 1/6 (a Dirichlet(1,1) would give 1/4).
    labels = torch.zeros(2, dtype=torch.long)
    syn, _ = intra_class_mixup(torch.eye(2), labels, num_per_class=60000, generator=gen(11))
    frac = (syn[:, 0] < 0.25).float().mean().item()
    assert abs(frac - 1 / 6) < 0.01


def test_gradients_reach_every_member_row():
    f = torch.randn(8, 3, requires_grad=True)
    labels = torch.tensor([0, 1, 0, 2, 1, 1, 2, 0])
    syn, _ = intra_class_mixup(f, labels, generator=gen(0))
    syn.pow(2).sum().backward()
    assert (f.grad.abs().sum(dim=1) > 0).all()


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="features"):
        intra_class_mixup(torch.randn(4, 2), torch.zeros(3, dtype=torch.long))


def test_sample_lam_shapes_range_and_distribution():
    assert sample_lam(1.0, 16, "batch", gen(0)).shape == ()
    lam = sample_lam(1.0, 50000, "elem", gen(0))
    assert lam.shape == (50000,) and (lam >= 0).all() and (lam <= 1).all()
    assert lam.var().item() == pytest.approx(1 / 12, abs=0.003)  # Beta(1,1) = U(0,1)
    lam = sample_lam(0.2, 50000, "elem", gen(1))
    assert lam.var().item() == pytest.approx(1 / (4 * (2 * 0.2 + 1)), abs=0.005)  # Beta(a,a) variance
    assert torch.equal(sample_lam(0.4, 5, "elem", gen(9)), sample_lam(0.4, 5, "elem", gen(9)))
    with pytest.raises(ValueError, match="alpha"):
        sample_lam(0.0, 4, "batch", gen(0))
    with pytest.raises(ValueError, match="lam_mode"):
        sample_lam(1.0, 4, "pair", gen(0))


def test_mix_hand_computed_batch_and_elementwise():
    x = torch.tensor([[0.0], [10.0]])
    y = torch.tensor([0, 1])
    perm = torch.tensor([1, 0])
    mixed, y_a, y_b = mix(x, y, torch.tensor(0.3), perm)
    torch.testing.assert_close(mixed, torch.tensor([[7.0], [3.0]]))
    assert y_a.tolist() == [0, 1] and y_b.tolist() == [1, 0]
    mixed, _, _ = mix(x, y, torch.tensor([0.3, 0.9]), perm)
    torch.testing.assert_close(mixed, torch.tensor([[7.0], [9.0]]))
    img = torch.ones(2, 3, 4, 4)
    img[1] = 5
    mixed, _, _ = mix(img, y, torch.tensor([0.25, 1.0]), perm)
    assert torch.allclose(mixed[0], torch.full((3, 4, 4), 0.25 + 0.75 * 5)) and torch.allclose(mixed[1], img[1])


def test_mixup_cross_entropy_matches_definition():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    y_a, y_b = torch.tensor([0, 2]), torch.tensor([1, 0])
    lsm = F.log_softmax(logits, dim=1)
    for lam in (torch.tensor(0.3), torch.tensor([0.2, 0.9])):
        lam_e = lam.expand(2)
        expected = -(lam_e * lsm[[0, 1], y_a] + (1 - lam_e) * lsm[[0, 1], y_b]).mean()
        assert mixup_cross_entropy(logits, y_a, y_b, lam).item() == pytest.approx(expected.item())
    # lam = 1 is plain cross-entropy on y_a
    ce = (
        -(
            math.log(math.exp(2) / (math.exp(2) + 1 + math.exp(-1)))
            + math.log(math.exp(3) / (2 * math.exp(0.5) + math.exp(3)))
        )
        / 2
    )
    assert mixup_cross_entropy(logits, y_a, y_b, torch.tensor(1.0)).item() == pytest.approx(ce)


def test_mix_gradient_matches_the_plain_expression():
    x = torch.randn(6, 3, 4, 4, requires_grad=True)
    y = torch.arange(6)
    perm = torch.randperm(6, generator=gen(2))
    for lam in (torch.tensor(0.3), torch.rand(6, generator=gen(3))):
        w = torch.randn(6, 3, 4, 4)
        (mix(x, y, lam, perm)[0] * w).sum().backward()
        fast = x.grad.clone()
        x.grad = None
        lam_b = lam.view(-1, 1, 1, 1) if lam.dim() else lam
        ((lam_b * x + (1 - lam_b) * x[perm]) * w).sum().backward()
        torch.testing.assert_close(fast, x.grad)
        x.grad = None


@pytest.mark.parametrize("shape", [(32, 32), (28, 28), (7, 9), (224, 160)])
@pytest.mark.parametrize("lam", [0.05, 0.3, 0.5, 0.77, 0.99])
def test_cutmix_box_and_lambda_match_timm(shape, lam):
    h, w = shape
    for seed in range(5):
        np.random.seed(seed)
        expected = rand_bbox((3, h, w), lam)
        np.random.seed(seed)
        _, timm_lam = cutmix_bbox_and_lam((3, h, w), lam, correct_lam=True)
        np.random.seed(seed)  # timm draws the row centre, then the column centre
        cy, cx = np.random.randint(0, h), np.random.randint(0, w)
        boxes, kept = cutmix_box(h, w, torch.tensor(lam, dtype=torch.float64), torch.tensor([cy]), torch.tensor([cx]))
        assert boxes[0].tolist() == [int(v) for v in expected]
        assert kept.item() == pytest.approx(timm_lam, abs=1e-6)


def test_cutmix_pastes_the_partner_box_and_lambda_is_the_share_left():
    x = torch.arange(3 * 1 * 4 * 5, dtype=torch.float32).view(3, 1, 4, 5)
    perm = torch.tensor([2, 0, 1])
    boxes = torch.tensor([[1, 3, 0, 2]])  # rows 1-2, columns 0-1, one box for the batch
    out = cutmix(x, perm, boxes)
    inside = torch.zeros(4, 5, dtype=torch.bool)
    inside[1:3, 0:2] = True
    for i in range(3):
        torch.testing.assert_close(out[i, 0][inside], x[perm[i], 0][inside])
        torch.testing.assert_close(out[i, 0][~inside], x[i, 0][~inside])
    per_sample = torch.tensor([[0, 4, 0, 5], [0, 0, 0, 0], [2, 4, 3, 5]])  # whole image, nothing, a corner
    out = cutmix(x, perm, per_sample)
    torch.testing.assert_close(out[0], x[2])
    torch.testing.assert_close(out[1], x[1])
    torch.testing.assert_close(out[2, 0, 2:, 3:], x[1, 0, 2:, 3:])
    x.requires_grad_(True)
    cutmix(x, perm, boxes).sum().backward()
    torch.testing.assert_close(x.grad, torch.ones_like(x))  # every pixel used exactly once


def test_cutmix_draws_are_seeded_uniform_and_per_sample_in_elem_mode():
    g = torch.Generator().manual_seed(0)
    lam = sample_lam(1.0, 7, "elem", g)  # an odd (supplemented) batch
    boxes, kept = cutmix_boxes(32, 32, lam, g)
    assert boxes.shape == (7, 4) and kept.shape == (7,)
    area = (boxes[:, 1] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 2])
    torch.testing.assert_close(kept, 1 - area.float() / 1024)
    first = cutmix_boxes(32, 32, lam, torch.Generator().manual_seed(9))
    second = cutmix_boxes(32, 32, lam, torch.Generator().manual_seed(9))
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])  # one seed, one set (exact resume)
    many, _ = cutmix_boxes(32, 32, torch.full((20000,), 0.75), torch.Generator().manual_seed(1))
    centre_rows = ((many[:, 0] + many[:, 1]) / 2).float()
    assert abs(centre_rows.mean().item() - 15.75) < 0.75 and centre_rows.min() < 6 and centre_rows.max() > 26
    one, lam_one = cutmix_boxes(32, 32, torch.tensor(0.5), g)
    assert one.shape == (1, 4) and lam_one.shape == ()
