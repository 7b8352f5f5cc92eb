"""``condsel extract`` in one process: bad inputs recorded, outputs checked against the pool's own inference, resume, per-clip."""

from __future__ import annotations

import errno
import io
import json
import shutil

import numpy as np
import pytest
import torch
from test_extract_support import (
    REAL_VIDEOS,
    SHORT_SIDE,
    make_bad_files,
    make_run_dir,
    make_videos,
    write_manifest,
)

from condsel.cli import main
from condsel.extract import load_store
from condsel.extract.store import Store
from condsel.pool.inference import run_member
from condsel.pool.run_dir import load_run
from condsel.sources import load_table
from condsel.synthetic import CLASS_NAMES, render_clip
from condsel.synthetic.render import FPS
from condsel.video.decode import DecodedVideo, decode_video
from condsel.video.encode import write_video

GOOD = 14


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def material(tmp_path_factory):
    root = tmp_path_factory.mktemp("extract_run")
    good = make_videos(root / "data", GOOD)
    good += [(str(p.resolve()), "red_square") for p in REAL_VIDEOS]  # real files, absolute paths
    bad = make_bad_files(root / "data", root / "data" / good[0][0])
    manifest = write_manifest(
        root / "data" / "manifest.csv", good + [(p, "grow") for p in bad], extra_lines=[b"videos/x.mp4,grow,surplus", b"\xff\xfe,grow"]
    )
    return {"root": root, "run": make_run_dir(root / "run"), "manifest": manifest, "good": good, "bad": bad}


def _extract(material, out, *extra) -> int:
    return main(["extract", "--pool", str(material["run"]), "--manifest", str(material["manifest"]), "--out", str(out),
                 "--no-progress", *extra])


@pytest.fixture(scope="module")
def logits_store(material):
    out = material["root"] / "store_logits"
    assert _extract(material, out, "--aggregate", "logits", "--save-views", "--workers", "2") == 1
    return out


def test_bad_inputs_are_recorded_and_the_run_goes_on(material, logits_store, capsys):
    assert main(["inspect", str(logits_store), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["models"] == ["frame2d", "conv3d"]
    assert doc["videos"] == sorted(name for name, _ in material["good"])
    failures = {f["video"]: f["error"] for f in doc["failures"]}
    assert sorted(failures) == sorted([*material["bad"], "manifest.csv:23", "manifest.csv:24"])
    for name, reason in material["bad"].items():
        assert reason in failures[name] and name in failures[name]  # the message names the file and the cause
    assert "3 fields, the header has 2" in failures["manifest.csv:23"]
    assert "not UTF-8" in failures["manifest.csv:24"]


def test_outputs_equal_the_pool_inference_of_condsel_demo(material, logits_store):
    """Decode + sample + forward + aggregate, checked against ``condsel.pool.inference`` on a full decode."""
    run = load_run(material["run"])
    table = load_store(logits_store)
    assert table.gflops == pytest.approx(run.gflops) and table.class_names == list(CLASS_NAMES)
    root = material["manifest"].parent
    for i, name in enumerate(table.names):
        video = decode_video(root / name, short_side=SHORT_SIDE)  # every frame, not only the sampled ones
        for member in run.members.values():
            ref = run_member(member, run.models[member.name], [video], features=member.name == run.backbone)
            np.testing.assert_allclose(table.logits[member.name][i], ref.logits[0], atol=1e-5, err_msg=f"{name} {member.name}")
            if member.name == run.backbone:
                np.testing.assert_allclose(table.features[member.name][i], ref.features[0], atol=1e-5)
    expected_labels = {name: CLASS_NAMES.index(label) for name, label in material["good"]}
    assert table.labels.tolist() == [expected_labels[n] for n in table.names]
    # `condsel table --store` and the Python API name the store the same way
    same = load_table(logits_store)
    np.testing.assert_array_equal(same.names, table.names)
    assert same.gflops == table.gflops and all(np.array_equal(same.logits[m], table.logits[m]) for m in table.logits)


def test_softmax_aggregation_is_the_mean_view_probability(material, logits_store):
    out = material["root"] / "store_softmax"
    assert _extract(material, out, "--workers", "0") == 1
    probs = torch.softmax(torch.from_numpy(load_store(out).logits["conv3d"]).double(), dim=1).numpy()
    views = [e for e in Store.open(logits_store).entries()]
    views.sort(key=lambda e: str(e["name"]))
    per_view = np.stack([e["views/conv3d"][0] for e in views])  # (N, 6 views, C)
    assert per_view.shape[1] == 6
    ref = np.exp(per_view - per_view.max(-1, keepdims=True))
    ref = (ref / ref.sum(-1, keepdims=True)).mean(axis=1)
    np.testing.assert_allclose(probs, ref, atol=1e-6)


def test_rerun_skips_stored_videos_and_retries_failures(material, logits_store, capsys):
    out = material["root"] / "store_rerun"
    shutil.copytree(logits_store, out)
    before = {p: p.stat().st_mtime_ns for p in (out / "videos").rglob("*.npz")}
    # repair one bad file: the re-run must store it and drop its failure record
    root = material["manifest"].parent
    write_video(root / "bad" / "empty.mp4", render_clip("grow", np.random.default_rng(7)), fps=FPS)
    try:
        capsys.readouterr()
        assert _extract(material, out, "--aggregate", "logits", "--save-views", "--workers", "1") == 1
        summary = capsys.readouterr().out
    finally:
        (root / "bad" / "empty.mp4").write_bytes(b"")
    assert f"stored {len(material['good']) + 1} (1 this run, {len(material['good'])} before)" in summary
    assert {p: p.stat().st_mtime_ns for p in before} == before  # nothing stored was rewritten
    store = Store.open(out)
    assert "bad/empty.mp4" in store.video_names()
    assert "bad/empty.mp4" not in [f.video for f in store.failures()]
    assert len(store.failures()) == len(material["bad"]) - 1 + 2


def test_a_store_write_torn_midway_leaves_the_video_to_redo(material, tmp_path, monkeypatch, capsys):
    """``np.savez`` writes part of an archive and raises (disk full): the video must not count as stored."""
    root = material["manifest"].parent
    manifest = write_manifest(tmp_path / "two.csv", [(str(root / n), label) for n, label in material["good"][:2]])
    out = tmp_path / "store"
    argv = ["extract", "--pool", str(material["run"]), "--manifest", str(manifest), "--out", str(out),
            "--aggregate", "logits", "--workers", "0", "--no-progress"]
    savez, writes = np.savez, []

    def torn_second_write(file, *args, **kwargs):
        writes.append(file)
        if len(writes) == 1:
            return savez(file, *args, **kwargs)
        buffer = io.BytesIO()
        savez(buffer, *args, **kwargs)
        file.write(buffer.getvalue()[: buffer.tell() // 2])
        file.flush()
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", torn_second_write)
    assert main(argv) == 2
    assert "No space left on device" in capsys.readouterr().err
    monkeypatch.undo()
    assert len(writes) == 2
    store = Store.open(out)
    assert len(store.completed_keys()) == 1 and len(store.video_names()) == 1
    assert not list((out / "videos").rglob("*.tmp"))  # the torn archive is gone, not left for a reader
    assert main(argv) == 0
    assert "stored 2 (1 this run, 1 before)" in capsys.readouterr().out
    assert sorted(Store.open(out).video_names()) == sorted(str(root / n) for n, _ in material["good"][:2])


def test_another_pool_cannot_write_into_the_store(material, logits_store, tmp_path, capsys):
    other = make_run_dir(tmp_path / "run", seed=1)  # same architectures, other weights
    before = sorted(p.name for p in (logits_store / "videos").rglob("*"))
    argv = ["extract", "--pool", str(other), "--manifest", str(material["manifest"]), "--out", str(logits_store),
            "--aggregate", "logits", "--save-views", "--no-progress"]
    assert main(argv) == 2
    assert "made by a different pool" in capsys.readouterr().err
    assert sorted(p.name for p in (logits_store / "videos").rglob("*")) == before


def test_table_reads_the_store(material, logits_store, tmp_path):
    out = tmp_path / "table"
    assert main(["table", "--store", str(logits_store), "--backbone", "frame2d", "--folds", "2", "--bootstrap", "5",
                 "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["models"]["conv3d"]["gflops"] == pytest.approx(Store.open(logits_store).meta["gflops"]["conv3d"])
    assert len(load_store(logits_store).names) == len(material["good"])


def test_per_clip_windows_score_each_window_as_its_own_clip(material, tmp_path):
    # a 6 s untrimmed video: three 2 s synthetic clips back to back
    clips = [render_clip(c, np.random.default_rng([5, i])) for i, c in enumerate(["grow", "move_left", "blue_disc"])]
    write_video(tmp_path / "long.mp4", np.concatenate(clips), fps=FPS)
    manifest = write_manifest(tmp_path / "long.csv", [("long.mp4", "grow")])
    out = tmp_path / "store"
    assert main(["extract", "--pool", str(material["run"]), "--manifest", str(manifest), "--out", str(out),
                 "--per-clip", "2", "--aggregate", "logits", "--workers", "0", "--no-progress"]) == 0
    table = load_store(out)
    assert table.names.tolist() == ["long.mp4#0", "long.mp4#1", "long.mp4#2"]
    assert table.groups.tolist() == ["long.mp4"] * 3
    (entry,) = Store.open(out).entries()
    np.testing.assert_allclose(entry["windows"], [[0, 2], [2, 4], [4, 6]])
    run = load_run(material["run"])
    full = decode_video(tmp_path / "long.mp4", short_side=SHORT_SIDE)
    for k in range(3):  # window k is frames 16k..16k+15, scored as a 16-frame video of its own
        part = DecodedVideo(full.path, full.frames[16 * k : 16 * (k + 1)], np.arange(16), 16, full.fps)
        ref = run_member(run.members["conv3d"], run.models["conv3d"], [part])
        np.testing.assert_allclose(table.logits["conv3d"][k], ref.logits[0], atol=1e-5)


def test_pool_config_of_zoo_models_with_imagenet_statistics(material, tmp_path):
    """A pool config: zoo networks, per-channel normalisation of their weights, class names from --classes."""
    from condsel import models
    from condsel.pool.config import load_pool_config
    from condsel.video.sampling import test_views

    torch.manual_seed(0)
    for arch in ("x3d_xs", "efficientnet_b0"):
        torch.save(models.create_model(arch, num_classes=12).state_dict(), tmp_path / f"{arch}.pt")
    config = tmp_path / "pool.toml"
    config.write_text(
        'backbone = "x3d"\n'
        '[models.x3d]\narch = "x3d_xs"\ncheckpoint = "x3d_xs.pt"\nnum_classes = 12\nframes = 4\nstride = 2\ncrop = 32\nfps = 8\n'
        '[models.effnet]\narch = "efficientnet_b0"\ncheckpoint = "efficientnet_b0.pt"\nnum_classes = 12\nframes = 2\n'
        "stride = 4\ncrop = 32\nclips = 2\nfps = 8\n"
    )
    (tmp_path / "classes.txt").write_text("".join(f"{c}\n" for c in CLASS_NAMES))
    root = material["manifest"].parent
    manifest = write_manifest(tmp_path / "one.csv", [(str(root / n), label) for n, label in material["good"][:1]])
    out = tmp_path / "store"
    assert main(["extract", "--pool", str(config), "--classes", str(tmp_path / "classes.txt"), "--manifest", str(manifest),
                 "--out", str(out), "--aggregate", "logits", "--workers", "0", "--no-progress"]) == 0
    table = load_store(out)
    assert table.class_names == list(CLASS_NAMES) and table.labels.tolist() == [CLASS_NAMES.index(material["good"][0][1])]
    assert table.gflops["effnet"] == pytest.approx(2 * models.gflops("efficientnet_b0", 2, 32, 12))
    net = models.create_model("efficientnet_b0", 12, tmp_path / "efficientnet_b0.pt")
    backbone = models.create_model("x3d_xs", 12, tmp_path / "x3d_xs.pt")
    pool = load_pool_config(config)
    for i, name in enumerate(table.names):
        video = decode_video(name, short_side=32)
        for member, model in ((pool.member("effnet"), net), (pool.member("x3d"), backbone)):
            spec = models.get_spec(member.arch)
            views = test_views(video, member.clip).astype(np.float64) / 255.0
            x = (views - np.array(spec.mean)) / np.array(spec.std)  # ImageNet statistics for EfficientNet
            x = torch.from_numpy(x.transpose(0, 4, 1, 2, 3)).float()
            with torch.no_grad():
                np.testing.assert_allclose(table.logits[member.name][i], model(x).mean(0).numpy(), atol=1e-4)
                if member.name == "x3d":
                    np.testing.assert_allclose(table.features["x3d"][i], model.forward_features(x).mean(0).numpy(), atol=1e-4)
