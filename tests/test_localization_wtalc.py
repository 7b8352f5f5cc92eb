"""W-TALC losses against hand/numpy references, and a head that learns where the action is."""

import math

import numpy as np
import pytest
import torch

from condsel.localization.wtalc import (
    WTALCConfig,
    class_activations,
    co_activity_loss,
    mil_loss,
    topk_pool,
    train_wtalc,
)


def test_topk_pool_ignores_padding_and_uses_ceil_t_over_8():
    cas = torch.tensor([[[1.0], [5.0], [3.0], [2.0], [4.0], [0.0], [0.0], [0.0], [-1.0], [99.0]]])  # (1, 10, 1)
    # 9 valid clips -> k = ceil(9 / 8) = 2 -> mean(5, 4); the padded 99 must not count
    assert topk_pool(cas, torch.tensor([9])).item() == pytest.approx(4.5)


def test_mil_loss_matches_hand_computation():
    rng = np.random.default_rng(0)
    cas = rng.normal(size=(2, 17, 3))
    lengths = [17, 12]
    labels = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    expected = 0.0
    for b in range(2):
        k = math.ceil(lengths[b] / 8)
        pooled = [np.mean(sorted(cas[b, : lengths[b], c])[-k:]) for c in range(3)]
        log_z = math.log(sum(math.exp(p) for p in pooled))
        target = labels[b] / labels[b].sum()
        expected -= sum(t * (p - log_z) for t, p in zip(target, pooled)) / 2
    got = mil_loss(torch.tensor(cas), torch.tensor(lengths), torch.tensor(labels))
    assert got.item() == pytest.approx(expected, rel=1e-9)


def casl_reference(x1, a1, x2, a2, shared, margin=0.5):
    """The co-activity loss of one pair, written out class by class."""
    def pooled(x, a, c):
        w = np.exp(a[:, c] - a[:, c].max())
        w /= w.sum()
        high = (x * w[:, None]).sum(axis=0)
        low = (x * ((1 - w) / max(len(x) - 1, 1))[:, None]).sum(axis=0)
        return high, low

    def dist(u, v):
        return 1 - u @ v / (np.linalg.norm(u) * np.linalg.norm(v))

    total = 0.0
    for c in np.flatnonzero(shared):
        h1, l1 = pooled(x1, a1, c)
        h2, l2 = pooled(x2, a2, c)
        total += 0.5 * (max(0, dist(h1, h2) - dist(h1, l2) + margin) + max(0, dist(h1, h2) - dist(h2, l1) + margin))
    return total


def test_co_activity_loss_matches_reference_with_padding():
    rng = np.random.default_rng(1)
    lengths = [7, 5, 6, 6]
    x = rng.random((4, 7, 4))
    a = rng.normal(size=(4, 7, 3))
    labels = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1], [1, 0, 0]], dtype=float)
    got = co_activity_loss(torch.tensor(x), torch.tensor(a), torch.tensor(lengths), torch.tensor(labels))
    pair1 = casl_reference(x[0, :7], a[0, :7], x[1, :5], a[1, :5], labels[0] * labels[1])
    pair2 = casl_reference(x[2, :6], a[2, :6], x[3, :6], a[3, :6], labels[2] * labels[3])  # no shared class
    assert got.item() == pytest.approx((pair1 + pair2) / 2, rel=1e-9)  # 2 shared classes in all


def toy_videos(n, seed):
    """Class c's pattern (a fixed random vector of norm ~6) on a random run of 6 of 32 clips, noise elsewhere."""
    rng = np.random.default_rng(seed)
    patterns = np.random.default_rng(99).normal(size=(3, 32)) * 6 / np.sqrt(32)
    features, labels, foreground = [], [], []
    for i in range(n):
        c = i % 3
        x = rng.normal(size=(32, 32)).astype(np.float32)
        start = rng.integers(0, 26)
        x[start : start + 6] += patterns[c]
        fg = np.zeros(32, dtype=bool)
        fg[start : start + 6] = True
        features.append(x)
        labels.append(np.eye(3)[c])
        foreground.append(fg)
    return features, np.array(labels, dtype=np.float32), foreground


def test_head_learns_class_and_location_from_video_labels():
    torch.set_num_threads(1)
    x_train, y_train, _ = toy_videos(45, seed=0)
    x_test, y_test, fg_test = toy_videos(15, seed=1)
    model = train_wtalc(x_train, y_train, WTALCConfig(iterations=300, lr=1e-3), seed=0)
    cas = class_activations(model, x_test)
    correct = [np.argmax(np.sort(c, axis=0)[-4:].mean(axis=0)) == np.argmax(y) for c, y in zip(cas, y_test)]
    assert np.mean(correct) >= 0.9
    # the top-6 clips of the labelled class fall inside the action
    hits = [fg[np.argsort(-c[:, np.argmax(y)])[:6]].mean() for c, y, fg in zip(cas, y_test, fg_test)]
    assert np.mean(hits) >= 0.9


def test_training_is_deterministic_per_seed():
    torch.set_num_threads(1)
    x, y, _ = toy_videos(12, seed=2)
    config = WTALCConfig(iterations=15, lr=1e-3)
    a = train_wtalc(x, y, config, seed=3).state_dict()
    b = train_wtalc(x, y, config, seed=3).state_dict()
    c = train_wtalc(x, y, config, seed=4).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_published_defaults():
    """sujoyp/wtalc-pytorch options.py / main.py / model.py."""
    d = WTALCConfig()
    assert (d.lr, d.weight_decay, d.batch_size, d.num_similar, d.mil_weight, d.max_seqlen, d.dropout, d.iterations) == (
        1e-4, 5e-4, 10, 3, 0.5, 750, 0.7, 100_000)
