"""Importers on the real DMC-Net UCF101 score files, and their failure modes.

The 202-video subset in tests/data keeps the published layout; the published
top-1 figures need the whole files in ../shared/data and skip without them.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from conftest import FIXTURES, shared_data

from condsel.datasets.ucf101 import UCF101_MODELS, load_ucf101_split1, ucf101_score_files
from condsel.selection.data.importers import join_scores, read_scores
from condsel.selection.method.metrics import topk_correct
from condsel._io import load_npy
from condsel.selection.data.table import PredictionTable

SUBSET = FIXTURES / "ucf101_scores_subset"

# top-1 on split 1 as stated in the data README (from the DMC-Net authors' logs)
PUBLISHED_TOP1 = {"mv": 68.0, "residual": 78.7, "gen_flow": 80.0, "flow": 82.7, "iframe": 86.7}


@pytest.fixture(scope="module")
def split1() -> PredictionTable:
    files = ucf101_score_files(shared_data("ucf101_scores"), split=1)
    return join_scores({name: read_scores(path) for name, path in files.items()})


@pytest.fixture(scope="module")
def subset() -> PredictionTable:
    files = ucf101_score_files(SUBSET, split=1)
    return join_scores({name: read_scores(path) for name, path in files.items()})


def test_published_layout_reads_like_a_plain_numpy_load(subset):
    """The reference is numpy's own unpickling of the file (ours never unpickles anything but arrays)."""
    assert subset.num_samples == 202 and subset.num_classes == 101
    path = ucf101_score_files(SUBSET, split=1)["iframe"]
    with np.load(path, allow_pickle=True) as raw:
        order = np.argsort(raw["names"])
        reference = np.stack([row[0].reshape(-1) for row in raw["scores"]])[order]
        np.testing.assert_array_equal(subset.names, raw["names"][order])
        np.testing.assert_array_equal(subset.labels, raw["labels"][order])
    np.testing.assert_array_equal(subset.logits["iframe"], reference)


def test_subset_agrees_with_the_bundled_copy(subset):
    bundled = load_ucf101_split1()
    rows = np.searchsorted(bundled.names, subset.names)
    np.testing.assert_array_equal(bundled.names[rows], subset.names)
    np.testing.assert_array_equal(bundled.labels[rows], subset.labels)
    for model in UCF101_MODELS:
        np.testing.assert_allclose(bundled.logits[model][rows], subset.logits[model], rtol=2e-3, atol=2e-3)


def test_published_top1_is_reproduced(split1):
    assert split1.num_samples == 3783 and split1.num_classes == 101
    for model, top1 in PUBLISHED_TOP1.items():
        measured = 100 * topk_correct(split1.logits[model], split1.labels).mean()
        assert measured == pytest.approx(top1, abs=0.05), model


def test_join_is_by_name_not_row_order(subset, tmp_path):
    rng = np.random.default_rng(0)
    perm = rng.permutation(subset.num_samples)
    shuffled = tmp_path / "iframe_shuffled.npz"
    np.savez(shuffled, names=subset.names[perm], labels=subset.labels[perm], logits=subset.logits["iframe"][perm])
    files = ucf101_score_files(SUBSET, split=1)
    joined = join_scores({"mv": read_scores(files["mv"]), "iframe": read_scores(shuffled)})
    np.testing.assert_array_equal(joined.names, subset.names)
    np.testing.assert_array_equal(joined.logits["iframe"], subset.logits["iframe"])


def test_bundled_copy_matches_the_published_files(split1):
    bundled = load_ucf101_split1()
    np.testing.assert_array_equal(bundled.names, split1.names)
    np.testing.assert_array_equal(bundled.labels, split1.labels)
    for model in UCF101_MODELS:
        flips = bundled.logits[model].argmax(1) != split1.logits[model].argmax(1)
        assert flips.sum() <= 3, model  # float16 can only reorder near-tied classes
        top1 = [topk_correct(t.logits[model], t.labels).sum() for t in (bundled, split1)]
        assert abs(top1[0] - top1[1]) <= 1, model
        np.testing.assert_allclose(bundled.logits[model], split1.logits[model], rtol=2e-3, atol=2e-3)


def _plain(path, names, labels, logits):
    np.savez(path, names=np.asarray(names), labels=np.asarray(labels), logits=np.asarray(logits, dtype=np.float32))
    return read_scores(path)


def test_mismatched_sample_sets_name_the_files(tmp_path):
    a = _plain(tmp_path / "a.npz", ["v1", "v2"], [0, 1], np.eye(2))
    b = _plain(tmp_path / "b.npz", ["v1", "v3"], [0, 1], np.eye(2))
    with pytest.raises(ValueError, match=r"b\.npz.*a\.npz.*different samples.*v2.*v3"):
        join_scores({"a": a, "b": b})


def test_disagreeing_labels_name_the_video(tmp_path):
    a = _plain(tmp_path / "a.npz", ["v1", "v2"], [0, 1], np.eye(2))
    b = _plain(tmp_path / "b.npz", ["v2", "v1"], [1, 1], np.eye(2))
    with pytest.raises(ValueError, match=r"label of v1 disagrees"):
        join_scores({"a": a, "b": b})


def test_class_count_mismatch(tmp_path):
    a = _plain(tmp_path / "a.npz", ["v1", "v2"], [0, 1], np.eye(2))
    b = _plain(tmp_path / "b.npz", ["v1", "v2"], [0, 1], np.eye(3)[:2])
    with pytest.raises(ValueError, match="3 classes"):
        join_scores({"a": a, "b": b})


def test_nan_scores_are_rejected(tmp_path):
    logits = np.eye(2)
    logits[1, 0] = np.nan
    with pytest.raises(ValueError, match=r"NaN/inf.*v2"):
        _plain(tmp_path / "a.npz", ["v1", "v2"], [0, 1], logits)


def test_csv_layout(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("name,label,c0,c1,c2\nv1,2,0.1,0.2,3.0\nv2,0,1.0,0.0,0.0\n")
    scores = read_scores(path)
    assert scores.labels.tolist() == [2, 0] and scores.logits.shape == (2, 3)
    path.write_text("name,label,c0\nv1,0\n")
    with pytest.raises(ValueError, match=r"m\.csv: row 2"):
        read_scores(path)


class _Exploit:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickled_payloads_other_than_arrays_are_refused(tmp_path):
    path = tmp_path / "evil.npy"
    np.save(path, np.array([_Exploit()], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"evil\.npy.*refusing to unpickle builtins\.print"):
        load_npy(path)
    # a genuine object array of lists and arrays still loads
    good = tmp_path / "good.npy"
    np.save(good, np.array([[1.5, 2.0], [3.0]], dtype=object), allow_pickle=True)
    assert load_npy(good)[1] == [3.0]
    assert pickle.HIGHEST_PROTOCOL >= 2
