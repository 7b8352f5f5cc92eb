"""The synthetic pool: architectures and their counted cost, view averaging, training, run directories."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from condsel.models.costs import count_gflops, load_costs_toml
from condsel.pool.inference import pool_table, run_member
from condsel import models as zoo
from condsel.models.synthetic import Conv3DNet, FrameAverageNet
from condsel.pool.config import PoolConfig, PoolMember, build_pool, load_pool_config
from condsel.pool.run_dir import load_run, save_run
from condsel.pool.train import TrainConfig, train_member
from condsel.selection.method.policies import SelectorPolicy
from condsel.selection.data.table import PredictionTable
from condsel.synthetic import CLASS_NAMES, render_clip
from condsel.workflows.demo import SYNTHETIC_POOL
from condsel.synthetic.render import FPS, NUM_FRAMES
from condsel._io import torch_threads
from condsel.video import sampling
from condsel.video.decode import DecodedVideo
from condsel.video.sampling import ClipSpec, to_model_input


def _clip_video(name: str, seed: int) -> DecodedVideo:
    frames = render_clip(name, np.random.default_rng([seed]))
    return DecodedVideo(f"{name}_{seed}", frames, np.arange(NUM_FRAMES), NUM_FRAMES, float(FPS))


def test_conv3d_cost_matches_a_hand_count():
    net = Conv3DNet(num_classes=5, widths=[4, 8], strides=[[1, 2, 2], [2, 2, 2]])
    # stem 3->4 (1x3x3) to 4x8x8: 4*4*8*8 outputs x 27; stage 4->4 (3x3x3, /2 in space) to 4x4x4: 4*64 x 108;
    # stage 4->8 (/2 in time and space) to 2x2x2: 8*8 x 108; linear 8->5: 40
    macs = 4 * 4 * 8 * 8 * 27 + 4 * 64 * 108 + 8 * 8 * 108 + 40
    assert count_gflops(net, torch.zeros(1, 3, 4, 16, 16)) == pytest.approx(macs / 1e9)


def test_frame_net_costs_frames_times_one_frame_and_ignores_frame_order():
    torch.manual_seed(0)
    net = FrameAverageNet(num_classes=5, widths=[4, 8]).eval()
    # conv 3->4 (3x3, /2) on 16x16: 64 x 4 x 27; conv 4->8: 16 x 8 x 36; linear 8->5 per frame
    per_frame = 64 * 4 * 27 + 16 * 8 * 36 + 40
    x = torch.randn(2, 3, 6, 16, 16)
    assert count_gflops(net, x[:1]) == pytest.approx(6 * per_frame / 1e9)
    with torch.no_grad():
        torch.testing.assert_close(net(x), net(x.flip(2)), atol=1e-5, rtol=1e-5)
        conv = Conv3DNet(num_classes=5, widths=[4, 8], strides=[[1, 2, 2], [1, 1, 1]]).eval()
        assert not torch.allclose(conv(x), conv(x.flip(2)), atol=1e-4)


def test_default_pool_costs_rise_and_count_every_view():
    costs = []
    for member in SYNTHETIC_POOL.members:
        model = member.build(random_weights=True)
        view = torch.zeros(1, 3, member.clip.num_frames, member.clip.size, member.clip.size)
        assert member.gflops_per_video == pytest.approx(count_gflops(model, view) * member.clip.views)
        costs.append(member.gflops_per_video)
    assert costs == sorted(costs) and costs[-1] > 10 * costs[1] > 10 * costs[0]
    assert SYNTHETIC_POOL.members[-1].clip.views == 9


def test_synthetic_nets_are_zoo_models_with_overridable_options():
    assert {"frame2d", "conv3d_s", "conv3d_l"} <= set(zoo.list_models())
    net = zoo.create_model("conv3d_s", num_classes=5, options={"widths": [4, 8], "strides": [[1, 2, 2], [2, 2, 2]]})
    assert isinstance(net, Conv3DNet) and net.head[1].out_features == 5 and net.head[1].in_features == 8
    with pytest.raises(ValueError, match="bad build options"):
        zoo.create_model("frame2d", options={"depth": 3})


def test_member_outputs_average_the_views_and_features_give_the_same_logits():
    torch.manual_seed(0)
    options = {"widths": [4, 8], "strides": [[1, 2, 2], [1, 2, 2]]}
    member = PoolMember("c", "conv3d_s", ClipSpec(8, 1, 32, clips=2, crops=3), len(CLASS_NAMES), options=options)
    model = member.build(random_weights=True)
    videos = [_clip_video("grow", 1), _clip_video("red_square", 2)]
    out = run_member(member, model, videos, features=True)
    with torch.no_grad():
        manual = np.stack([model(to_model_input(sampling.test_views(v, member.clip))).mean(0).numpy() for v in videos])
    np.testing.assert_allclose(out.logits, manual, atol=1e-5)
    np.testing.assert_allclose(run_member(member, model, videos).logits, out.logits, atol=1e-5)
    assert out.features.shape == (2, 8)


def test_training_fits_a_small_problem_and_is_seeded():
    # every frame, so that a clip and its reversal show the frame net the same frames
    member = PoolMember("f", "frame2d", ClipSpec(16, 1, 32), len(CLASS_NAMES), options={"widths": [8, 16]})
    names = ["red_square", "blue_disc", "move_right", "move_left"]
    videos = [_clip_video(n, s) for s in range(8) for n in names]  # move_left seed s = move_right seed s reversed
    labels = np.array([CLASS_NAMES.index(n) for s in range(8) for n in names])
    config = TrainConfig(epochs=25, batch_size=8, lr=1e-2)
    with torch_threads(1):
        model = train_member(member, videos, labels, config, seed=0)
        again = train_member(member, videos, labels, config, seed=0)
    pred = run_member(member, model, videos).logits.argmax(1)
    appearance = np.isin(labels, [CLASS_NAMES.index("red_square"), CLASS_NAMES.index("blue_disc")])
    assert (pred[appearance] == labels[appearance]).mean() == 1.0
    # however it trained, the order-blind frame net answers the same for a clip and its reversal: half right at best
    motion = ~appearance
    assert (pred[motion][0::2] == pred[motion][1::2]).all()
    assert (pred[motion] == labels[motion]).mean() <= 0.5
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        torch.testing.assert_close(a, b)


@pytest.fixture()
def tiny_run(tmp_path):
    torch.manual_seed(0)
    classes = len(CLASS_NAMES)
    pool = PoolConfig("f", (
        PoolMember("f", "frame2d", ClipSpec(4, 4, 32), classes, options={"widths": [8, 16]}),
        PoolMember("c", "conv3d_s", ClipSpec(8, 1, 48, crops=3), classes,
                   options={"widths": [8, 16], "strides": [[1, 2, 2], [2, 2, 2]]}),
    ))
    members = list(pool.members)
    models = build_pool(pool, random_weights=True)
    gflops = pool.gflops
    rng = np.random.default_rng(0)
    table = PredictionTable(
        names=np.array([f"v{i}" for i in range(20)]), labels=rng.integers(0, classes, 20),
        logits={m: rng.normal(size=(20, classes)).astype(np.float32) for m in ("f", "c")}, gflops=gflops,
        class_names=list(CLASS_NAMES),
    )
    policy = SelectorPolicy(backbone="f", hidden=(8,), epochs=1).fit(table)
    calibration = [
        {"threshold": 0.0, "gflops": 0.001, "top1": 40.0},
        {"threshold": 0.4, "gflops": 0.004, "top1": 50.0},
        {"threshold": 0.7, "gflops": 0.009, "top1": 60.0},
    ]
    root = save_run(tmp_path / "run", pool, policy, list(CLASS_NAMES), 0.4, calibration, "logits", models=models)
    return root, members, models, gflops


def test_run_directory_round_trip(tiny_run):
    root, members, models, gflops = tiny_run
    run = load_run(root)
    assert run.order == ["f", "c"] and run.backbone == "f" and run.threshold == 0.4 and run.aggregate == "logits"
    assert run.gflops == pytest.approx(gflops) and load_costs_toml(root / "costs.toml") == pytest.approx(gflops)
    assert run.policy.gflops_ == pytest.approx(gflops) and not run.random_weights
    videos = [_clip_video("shrink", 3)]
    for m in members:
        np.testing.assert_array_equal(run_member(m, run.models[m.name], videos).logits, run_member(m, models[m.name], videos).logits)
        np.testing.assert_array_equal(run_member(m, run.load_model(m.name), videos).logits, run_member(m, models[m.name], videos).logits)


def test_run_pool_config_reads_back_to_the_same_pool(tiny_run):
    root, members, _, _ = tiny_run
    pool = load_pool_config(root / "pool.toml")
    for saved, original in zip(pool.members, members):
        assert (saved.arch, saved.clip, saved.num_classes, dict(saved.options)) == (
            original.arch, original.clip, original.num_classes, dict(original.options))
        assert saved.checkpoint == (root / "models" / f"{saved.name}.pt").resolve()
        assert saved.sha256 == hashlib.sha256(saved.checkpoint.read_bytes()).hexdigest()


def test_broken_run_directories_name_the_file(tiny_run, tmp_path):
    root = tiny_run[0]
    (root / "models" / "c.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"c\.pt: sha256 .* differs from the pinned"):
        load_run(root)
    (root / "run.json").write_text("{")
    with pytest.raises(ValueError, match="run.json"):
        load_run(root)
    with pytest.raises(ValueError, match="not a run directory"):
        load_run(tmp_path / "nothing")


def test_pool_table_has_every_member_and_the_backbone_features(tiny_run):
    _, members, models, gflops = tiny_run
    videos = [_clip_video(n, 5) for n in ("grow", "blue_disc", "move_left")]
    labels = np.array([CLASS_NAMES.index(n) for n in ("grow", "blue_disc", "move_left")])
    table = pool_table(members, models, videos, ["a", "b", "c"], labels, list(CLASS_NAMES), batch_size=2)
    assert table.models == ["f", "c"] and list(table.features) == ["f"]
    np.testing.assert_allclose(table.logits["c"], run_member(members[1], models["c"], videos).logits, atol=1e-6)
    assert table.features["f"].shape == (3, 16)
