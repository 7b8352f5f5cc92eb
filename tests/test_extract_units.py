"""Extraction building blocks against hand-computed cases: manifest checks, windows, view aggregation, the store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from condsel.pool.inference import aggregate_views, normalise
from condsel.extract.dataset import is_worker_failure
from condsel.extract.manifest import read_manifest
from condsel.extract.store import Failure, Store, video_key
from condsel.pool.views import frame_windows
from condsel.video.sampling import to_model_input

CLASSES = ["run", "jump", "swim"]


def _manifest(tmp_path, data: bytes):
    path = tmp_path / "m.csv"
    path.write_bytes(data)
    return path


def test_manifest_bad_header_is_an_error_naming_the_file(tmp_path):
    for header in (b"file,label\n", b"", b"\xff\xfe,label\n", b"path,path,label\n"):
        with pytest.raises(ValueError, match=r"m\.csv: the header"):
            read_manifest(_manifest(tmp_path, header + b"a.mp4,run\n"), 3, CLASSES)
    with pytest.raises(ValueError, match="cannot read"):
        read_manifest(tmp_path / "absent.csv", 3, CLASSES)


def test_manifest_unknown_labels_are_an_error_before_any_work(tmp_path):
    path = _manifest(tmp_path, b"path,label\na.mp4,run\nb.mp4,fly\nc.mp4,7\nd.mp4,2\n")
    with pytest.raises(ValueError, match=r"2 row\(s\).*line 3: 'fly', line 4: '7'"):
        read_manifest(path, 3, CLASSES)


def test_manifest_unreadable_rows_are_recorded_and_the_rest_kept(tmp_path):
    path = _manifest(
        tmp_path,
        b"\xef\xbb\xbfpath,label,note\r\n"  # BOM and CRLF, as spreadsheets write them
        b"a.mp4,run,x\r\n"
        b"b\xff.mp4,jump,x\n"  # not UTF-8
        b"c.mp4,swim\n"  # a field short
        b",run,x\n"  # no path
        b"\n"
        b"a.mp4,jump,x\n"  # repeats line 2
        b"/abs/d.mp4,2,y\n",  # absolute path, class index
    )
    manifest = read_manifest(path, 3, CLASSES)
    assert [(e.name, e.label) for e in manifest.entries] == [("a.mp4", 0), ("/abs/d.mp4", 2)]
    assert manifest.entries[0].path == tmp_path / "a.mp4"
    assert str(manifest.entries[1].path) == "/abs/d.mp4"
    bad = {r.name: r.error for r in manifest.bad_rows}
    assert sorted(bad) == ["m.csv:3", "m.csv:4", "m.csv:5", "m.csv:7"]
    assert "not UTF-8" in bad["m.csv:3"] and "2 fields, the header has 3" in bad["m.csv:4"]
    assert "empty path" in bad["m.csv:5"] and "repeats line 2" in bad["m.csv:7"]
    assert manifest.names == ["a.mp4", "/abs/d.mp4", "m.csv:3", "m.csv:4", "m.csv:5", "m.csv:7"]


def test_manifest_without_class_names_takes_indices(tmp_path):
    manifest = read_manifest(_manifest(tmp_path, b"path,label\na.mp4,4\n"), 5)
    assert manifest.entries[0].label == 4
    with pytest.raises(ValueError, match=r"class index in \[0, 4\)"):
        read_manifest(_manifest(tmp_path, b"path,label\na.mp4,4\n"), 4)


def test_frame_windows_hand_computed():
    assert frame_windows(37, 8.0, None).tolist() == [[0, 37]]
    # 2 s at 10 fps = 20 frames: 50 frames -> 3 windows, the last one short
    assert frame_windows(50, 10.0, 2.0).tolist() == [[0, 20], [20, 40], [40, 50]]
    # 45 frames: a 5-frame remainder is under half a window and joins the last
    assert frame_windows(45, 10.0, 2.0).tolist() == [[0, 20], [20, 45]]
    # a video shorter than a window is one window
    assert frame_windows(7, 10.0, 2.0).tolist() == [[0, 7]]
    # 1.5 s at 8 fps = 12 frames; fractional starts round down
    assert frame_windows(30, 8.0, 1.25).tolist() == [[0, 10], [10, 20], [20, 30]]


def test_view_aggregation_matches_a_float64_reference():
    rng = np.random.default_rng(0)
    views = rng.normal(scale=3.0, size=(2, 5, 7))  # (windows, views, classes)
    probs = np.exp(views) / np.exp(views).sum(-1, keepdims=True)
    mean_probs = probs.mean(axis=1)
    got = aggregate_views(torch.from_numpy(views), "softmax").numpy()
    # the stored score is log(mean p): its softmax is PySlowFast's averaged probability
    np.testing.assert_allclose(np.exp(got), mean_probs, rtol=1e-12)
    np.testing.assert_allclose(aggregate_views(torch.from_numpy(views), "logits").numpy(), views.mean(axis=1), rtol=1e-12)
    with pytest.raises(ValueError, match="unknown view aggregation"):
        aggregate_views(torch.from_numpy(views), "max")


def test_normalise_matches_the_pool_input_and_per_channel_statistics():
    rng = np.random.default_rng(1)
    views = rng.integers(0, 256, size=(3, 4, 6, 6, 3), dtype=np.uint8)
    # the synthetic pool's convention, through condsel.video.sampling's own function
    assert torch.equal(normalise(torch.from_numpy(views), (0.45,) * 3, (0.225,) * 3), to_model_input(views))
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    got = normalise(torch.from_numpy(views), mean, std).numpy()
    ref = (views.astype(np.float64) / 255.0 - np.array(mean)) / np.array(std)
    np.testing.assert_allclose(got, ref.transpose(0, 4, 1, 2, 3), atol=1e-5)


META = {"identity": "a" * 64, "pool": {"source": "pool.toml", "backbone": "m0", "members": [{"name": "m0"}, {"name": "m1"}],
                                     "class_names": None}, "settings": {"per_clip_seconds": None}, "gflops": {"m0": 1.0, "m1": 4.0}}


def _arrays(rng, windows=1):
    return {
        "windows": np.array([[0.0, 2.0]] * windows),
        "logits/m0": rng.normal(size=(windows, 3)).astype(np.float32),
        "logits/m1": rng.normal(size=(windows, 3)).astype(np.float32),
        "features": rng.normal(size=(windows, 5)).astype(np.float32),
    }


def test_store_entries_are_keyed_by_name_and_replace_failures(tmp_path):
    store = Store.create(tmp_path / "s", META)
    rng = np.random.default_rng(0)
    store.write_failure(Failure("a/x.mp4", "boom", "decode", "m.csv"))
    assert [f.video for f in store.failures()] == ["a/x.mp4"]
    first = _arrays(rng)
    store.write_entry("a/x.mp4", 2, first)
    store.write_entry("a/x.mp4", 2, _arrays(rng))  # a second write replaces, never duplicates
    store.write_entry("b.mp4", 0, _arrays(rng))
    assert store.failures() == []
    assert store.completed_keys() == {video_key("a/x.mp4"), video_key("b.mp4")}
    assert len(list((tmp_path / "s" / "videos").rglob("*.npz"))) == 2
    assert store.video_names() == ["a/x.mp4", "b.mp4"]


def test_store_refuses_other_pools_and_strangers(tmp_path):
    Store.create(tmp_path / "s", META)
    with pytest.raises(ValueError, match="different pool"):
        Store.create(tmp_path / "s", {**META, "identity": "b" * 64})
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="not empty and is not an extraction store"):
        Store.create(tmp_path / "other", META)
    with pytest.raises(ValueError, match="no store.json"):
        Store.open(tmp_path / "other")
    (tmp_path / "other" / "store.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match="not a condsel.extract store"):
        Store.open(tmp_path / "other")


def test_reopening_removes_writes_a_kill_interrupted(tmp_path):
    store = Store.create(tmp_path / "s", META)
    store.write_entry("b.mp4", 0, _arrays(np.random.default_rng(0)))
    shard = next((tmp_path / "s" / "videos").iterdir())
    partial = shard / ".3f9a.npz.k2j4x.tmp"  # as condsel._io names a write in progress
    partial.write_bytes(b"PK\x03\x04 half a zip")
    Store.create(tmp_path / "s", META)
    assert not partial.exists() and len(list(shard.iterdir())) == 1


def _store_with_a_partial_write(tmp_path) -> tuple[Store, Path]:
    store = Store.create(tmp_path / "s", META)
    shard = tmp_path / "s" / "videos" / "3f"
    shard.mkdir()
    partial = shard / ".3f9a.npz.k2j4x.tmp"
    partial.write_bytes(b"PK\x03\x04 half a zip")
    return store, partial


def test_a_run_joining_a_store_in_use_leaves_its_writes_in_progress_alone(tmp_path):
    store, partial = _store_with_a_partial_write(tmp_path)
    with store.in_use():  # a run writing now
        Store.create(tmp_path / "s", META)
        assert partial.exists()
    Store.create(tmp_path / "s", META)  # nobody writing: a leftover
    assert not partial.exists()


def test_a_worker_forked_by_a_run_does_not_keep_the_store_in_use(tmp_path):
    """A killed run's decoding worker may outlive it for a moment; the run resuming the store still tidies up."""
    import multiprocessing

    store, partial = _store_with_a_partial_write(tmp_path)
    fork = multiprocessing.get_context("fork")
    started, release = fork.Event(), fork.Event()

    def decoding_worker():
        started.set()  # past the fork hooks
        release.wait(30)

    with store.in_use():
        worker = fork.Process(target=decoding_worker)
        worker.start()
        assert started.wait(30)
    try:
        Store.create(tmp_path / "s", META)  # the run is over; its worker is still alive
        assert not partial.exists()
    finally:
        release.set()
        worker.join(30)

def test_load_store_per_clip_rows_and_groups(tmp_path):
    from condsel.extract.store import load_store

    meta = {**META, "pool": {**META["pool"], "class_names": ["a", "b", "c"]}, "settings": {"per_clip_seconds": 2.0}}
    store = Store.create(tmp_path / "s", meta)
    rng = np.random.default_rng(0)
    arrays = {"v2.mp4": _arrays(rng, 3), "v1.mp4": _arrays(rng, 2)}
    store.write_entry("v2.mp4", 1, arrays["v2.mp4"])
    store.write_entry("v1.mp4", 2, arrays["v1.mp4"])
    table = load_store(tmp_path / "s")
    assert table.names.tolist() == ["v1.mp4#0", "v1.mp4#1", "v2.mp4#0", "v2.mp4#1", "v2.mp4#2"]
    assert table.groups.tolist() == ["v1.mp4"] * 2 + ["v2.mp4"] * 3
    assert table.labels.tolist() == [2, 2, 1, 1, 1]
    np.testing.assert_array_equal(table.logits["m1"][2:], arrays["v2.mp4"]["logits/m1"])
    np.testing.assert_array_equal(table.features["m0"][:2], arrays["v1.mp4"]["features"])
    assert table.gflops == {"m0": 1.0, "m1": 4.0} and table.class_names == ["a", "b", "c"]


def test_worker_failures_are_recognised_however_they_surface():
    """A worker dying mid-handover resets the connection instead of raising PyTorch's RuntimeError."""
    assert is_worker_failure(RuntimeError("DataLoader worker (pid 123) is killed by signal: Segmentation fault."))
    assert is_worker_failure(RuntimeError("DataLoader timed out after 120 seconds"))
    assert is_worker_failure(ConnectionResetError(104, "Connection reset by peer"))
    assert not is_worker_failure(RuntimeError("shape mismatch in conv3d"))
    assert not is_worker_failure(ValueError("video.mp4: not a video"))
