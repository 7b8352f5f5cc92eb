"""The selector's training, determinism, persistence and cost."""

from __future__ import annotations

import numpy as np
import pytest

from condsel.selection.method.network import Selector


def _toy(n=600, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6)).astype(np.float32)
    G = np.eye(3, dtype=np.float32)[(X[:, 0] > 0).astype(int) + (X[:, 1] > 1).astype(int)]
    return X, G


def test_learns_a_separable_rule():
    X, G = _toy()
    Xt, Gt = _toy(seed=1)
    proba = Selector(seed=0).fit(X, G).predict_proba(Xt)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)
    assert (proba.argmax(1) == Gt.argmax(1)).mean() > 0.85


def test_soft_targets_are_fitted_as_soft_cross_entropy():
    X = np.zeros((400, 2), dtype=np.float32)
    G = np.tile(np.array([[0.2, 0.8]], dtype=np.float32), (400, 1))  # constant input: the optimum is G itself
    proba = Selector(epochs=20, milestones=(15,), seed=0).fit(X, G).predict_proba(X[:1])
    np.testing.assert_allclose(proba[0], [0.2, 0.8], atol=0.03)


def test_same_seed_same_model_and_round_trip(tmp_path):
    X, G = _toy()
    a = Selector(seed=3).fit(X, G)
    b = Selector(seed=3).fit(X, G)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    a.save(tmp_path / "sel.pt")
    loaded = Selector.load(tmp_path / "sel.pt")
    np.testing.assert_array_equal(loaded.predict_proba(X), a.predict_proba(X))


def test_gflops_is_the_mlp_multiply_adds():
    X, G = _toy()
    sel = Selector(hidden=(32, 16)).fit(X, G)
    assert sel.gflops() == pytest.approx((6 * 32 + 32 * 16 + 16 * 3) / 1e9)


def test_bad_checkpoint_names_the_file(tmp_path):
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="broken.pt"):
        Selector.load(bad)
