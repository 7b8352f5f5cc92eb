"""The synthetic benchmark: files and manifests on disk, determinism, and the premise built into the classes."""

from __future__ import annotations

import csv
import hashlib

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from condsel.cli import main
from condsel.synthetic import CLASS_NAMES, generate, render_clip
from condsel.synthetic.dataset import assign_labels_and_splits
from condsel.synthetic.render import FPS, HEIGHT, NUM_FRAMES, REVERSED_CLASSES, WIDTH
from condsel.video.decode import decode_video


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("synth"), 12, seed=3)


def _read_csv(path):
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def test_manifest_lists_every_video_with_its_class_name(small_set):
    rows = _read_csv(small_set.root / "manifest.csv")
    assert rows[0] == ["path", "label"]
    assert len(rows) == 13
    assert sorted(label for _, label in rows[1:]) == sorted(CLASS_NAMES)  # 12 videos: each class once
    for (path, label), y in zip(rows[1:], small_set.labels):
        assert (small_set.root / path).is_file() and label == CLASS_NAMES[y]
    assert (small_set.root / "classes.txt").read_text().split() == list(CLASS_NAMES)
    split_rows = sorted(r for s in ("train", "val", "test") for r in _read_csv(small_set.root / f"{s}.csv")[1:])
    assert split_rows == sorted(rows[1:])


def test_videos_decode_back_to_the_rendered_size_and_length(small_set):
    for path in small_set.paths:
        video = decode_video(path)
        assert video.frames.shape == (NUM_FRAMES, HEIGHT, WIDTH, 3)
        assert video.num_frames == NUM_FRAMES and video.fps == pytest.approx(FPS)


def test_decoded_frames_are_close_to_the_rendered_ones(small_set):
    i = 0
    rendered = render_clip(CLASS_NAMES[small_set.labels[i]], np.random.default_rng([3, i])).astype(int)
    decoded = decode_video(small_set.paths[i]).frames.astype(int)
    assert np.abs(decoded - rendered).mean() < 8  # H.264 at crf 18 with 4:2:0 chroma, on noisy frames


def test_the_same_seed_gives_the_same_bytes(tmp_path, small_set):
    def digests(data):
        return [hashlib.sha256(p.read_bytes()).hexdigest() for p in data.paths]

    assert digests(generate(tmp_path / "again", 12, seed=3)) == digests(small_set)
    assert not set(digests(generate(tmp_path / "other", 12, seed=4))) & set(digests(small_set))


def test_labels_are_balanced_and_splits_stratified():
    labels, splits = assign_labels_and_splits(1200, seed=0)
    assert np.bincount(labels).tolist() == [100] * len(CLASS_NAMES)
    for c in range(len(CLASS_NAMES)):
        counts = {s: int(np.sum((labels == c) & (splits == s))) for s in ("train", "val", "test")}
        assert counts == {"train": 50, "val": 25, "test": 25}
    assert np.array_equal(assign_labels_and_splits(1200, seed=0)[0], labels)
    assert not np.array_equal(assign_labels_and_splits(1200, seed=1)[0], labels)


@pytest.mark.parametrize("backward, forward", sorted(REVERSED_CLASSES.items()))
def test_each_motion_class_is_its_partner_played_backwards(backward, forward):
    for seed in range(3):
        fwd = render_clip(forward, np.random.default_rng([9, seed]))
        bwd = render_clip(backward, np.random.default_rng([9, seed]))
        np.testing.assert_array_equal(bwd, fwd[::-1])
        assert not np.array_equal(bwd, fwd)  # the order, and only the order, differs


def _features(clips: list[np.ndarray], order_sensitive: bool) -> np.ndarray:
    """8x8-pooled images: of the mean frame, or of late minus early frames."""
    out = []
    for clip in clips:
        c = clip.astype(np.float64)
        image = c[NUM_FRAMES // 2 :].mean(0) - c[: NUM_FRAMES // 2].mean(0) if order_sensitive else c.mean(0)
        out.append(image.reshape(HEIGHT // 8, 8, WIDTH // 8, 8, 3).mean(axis=(1, 3)).ravel())
    return np.array(out)


@pytest.mark.parametrize("pair", [("move_left", "move_right"), ("grow", "shrink")])
def test_frame_averages_cannot_tell_a_pair_apart_but_frame_order_can(pair):
    """A linear classifier on the mean frame is at chance; on late-minus-early frames it separates the pair."""
    clips, labels = [], []
    for k, name in enumerate(pair):
        for i in range(40):
            clips.append(render_clip(name, np.random.default_rng([11, k, i])))
            labels.append(k)
    labels = np.array(labels)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=2000))
    order_free = cross_val_score(model, _features(clips, False), labels, cv=5).mean()
    ordered = cross_val_score(model, _features(clips, True), labels, cv=5).mean()
    assert order_free < 0.7, order_free
    assert ordered > 0.85, ordered


def test_synth_command_writes_the_set(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path / "s"), "--videos", "3", "--seed", "1", "--no-progress"]) == 0
    assert len(_read_csv(tmp_path / "s" / "manifest.csv")) == 4
    assert "wrote 3 videos" in capsys.readouterr().out
    assert main(["synth", "--out", str(tmp_path / "t"), "--videos", "0"]) == 2
