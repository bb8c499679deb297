"""SupplementedBatchSampler invariants (Sec. 3.1.1) on random label sets."""

from collections import Counter

import numpy as np
import pytest

from synermix.method.sampling import SupplementationError, SupplementedBatchSampler, shard_bounds


def random_labels(rng, n, k, min_per_class=2):
    """Labels of n samples over k classes, every class with >= min_per_class members."""
    base = np.repeat(np.arange(k), min_per_class)
    return rng.permutation(np.concatenate((base, rng.integers(0, k, n - base.size))))


@pytest.mark.parametrize("n,k,bs", [(200, 10, 16), (300, 100, 32), (100, 40, 8), (500, 5, 128), (97, 30, 2)])
def test_invariants_on_random_label_sets(n, k, bs):
    rng = np.random.default_rng(n * k + bs)
    labels = random_labels(rng, n, k)
    sampler = SupplementedBatchSampler(labels, bs, seed=3)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler) == n // bs
        heads = [b[:bs] for b in batches]
        flat = [i for h in heads for i in h]
        assert len(set(flat)) == len(flat) == (n // bs) * bs  # the random parts are a permutation's prefix
        for batch in batches:
            head, extra = batch[:bs], batch[bs:]
            head_counts = Counter(labels[head])
            singles = sorted(c for c, m in head_counts.items() if m == 1)
            assert [labels[i] for i in extra] == singles  # one extra per singleton class, ascending
            assert not set(extra) & set(head) and len(set(extra)) == len(extra)
            assert min(Counter(labels[batch]).values()) >= 2


def test_deterministic_per_seed_and_epoch():
    labels = random_labels(np.random.default_rng(0), 300, 50)
    a = SupplementedBatchSampler(labels, 16, seed=5)
    b = SupplementedBatchSampler(labels, 16, seed=5)
    a.set_epoch(2)
    b.set_epoch(2)
    assert list(a) == list(b)
    b.set_epoch(3)
    assert list(a) != list(b)
    assert list(SupplementedBatchSampler(labels, 16, seed=6)) != list(SupplementedBatchSampler(labels, 16, seed=5))


def test_without_supplement_yields_the_same_random_batches():
    labels = random_labels(np.random.default_rng(1), 300, 50)
    sup = SupplementedBatchSampler(labels, 16, seed=2)
    plain = SupplementedBatchSampler(labels, 16, seed=2, supplement=False)
    assert [b[:16] for b in sup] == list(plain)


def test_drop_last_false_covers_every_sample_once():
    labels = random_labels(np.random.default_rng(2), 103, 10)
    sampler = SupplementedBatchSampler(labels, 10, seed=0, drop_last=False)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 11
    heads = [i for b in batches[:-1] for i in b[:10]] + [i for i in batches[-1][:3]]
    assert sorted(heads) == list(range(103))


def test_extra_is_uniform_over_the_other_members():
    # Class 0 has 5 members; in every batch where it appears once, the extra must be one of the other 4, uniformly.
    labels = np.array([0] * 5 + [1] * 45 + [2] * 50)
    sampler = SupplementedBatchSampler(labels, 10, seed=0)
    picks = Counter()
    for epoch in range(600):
        sampler.set_epoch(epoch)
        for batch in sampler:
            head, extra = batch[:10], batch[10:]
            members = [i for i in head if labels[i] == 0]
            if len(members) == 1:
                (e,) = [i for i in extra if labels[i] == 0]
                picks[(members[0], e)] += 1
    by_member = {m: [picks[(m, e)] for e in range(5) if e != m] for m in range(5)}
    for m, counts in by_member.items():
        assert picks[(m, m)] == 0
        expected = sum(counts) / 4
        assert all(abs(c - expected) < 0.35 * expected for c in counts), (m, counts)


def test_singleton_class_in_training_set_is_refused_by_name():
    labels = np.array([0, 0, 1, 2, 2, 2])
    with pytest.raises(SupplementationError, match=r"class 1 has a single image"):
        SupplementedBatchSampler(labels, 4)
    assert len(list(SupplementedBatchSampler(labels, 4, supplement=False))) == 1


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="batch_size"):
        SupplementedBatchSampler([0, 0, 1, 1], 1)
    with pytest.raises(ValueError, match="larger than the training set"):
        SupplementedBatchSampler([0, 0, 1, 1], 8)


def test_distributed_shards_are_the_single_process_batches_cut_in_parts():
    labels = random_labels(np.random.default_rng(4), 400, 60)
    single = SupplementedBatchSampler(labels, 30, seed=9)
    ranks = [SupplementedBatchSampler(labels, 30, seed=9, num_replicas=4, rank=r) for r in range(4)]
    for s in (single, *ranks):
        s.set_epoch(1)
    shards = [list(r) for r in ranks]
    assert all(len(s) == len(single) == 400 // 30 for s in shards)
    for b, batch in enumerate(single):
        assert [i for r in range(4) for i in shards[r][b]] == batch  # supplemented once, globally, then cut
        sizes = [len(shards[r][b]) for r in range(4)]
        assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)
        assert [len(p) for p in np.array_split(batch, 4)] == sizes


def test_shard_bounds_cut_like_numpy_array_split():
    for size in range(1, 40):
        for world in range(1, 6):
            parts = np.array_split(np.arange(size), world)
            assert [tuple(np.arange(size)[slice(*shard_bounds(size, world, r))]) for r in range(world)] == [
                tuple(p) for p in parts
            ]


def test_distributed_batch_needs_one_sample_per_process():
    with pytest.raises(ValueError, match="at least the number of processes"):
        SupplementedBatchSampler(np.repeat(np.arange(5), 10), 3, num_replicas=4, rank=0)
    with pytest.raises(ValueError, match="rank=4"):
        SupplementedBatchSampler(np.repeat(np.arange(5), 10), 32, num_replicas=4, rank=4)
