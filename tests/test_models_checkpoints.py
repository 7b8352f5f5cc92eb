"""Official checkpoint layouts load bit-exactly; bad files fail with clear errors."""

from __future__ import annotations

import pickle
import re

import pytest
import torch

from condsel import models
from condsel.models.checkpoints import CheckpointError, read_state_dict
from condsel.models.x3d import X3D

# Parameter names and shapes as the official code defines them (PyTorchVideo's
# create_x3d, piergiaj/pytorch-i3d, torchvision), written out independently.
OFFICIAL_KEYS = {
    "x3d_m": {
        "blocks.0.conv.conv_t.weight": (24, 3, 1, 3, 3),
        "blocks.0.conv.conv_xy.weight": (24, 1, 5, 1, 1),
        "blocks.0.norm.running_var": (24,),
        "blocks.1.res_blocks.0.branch1_conv.weight": (24, 24, 1, 1, 1),
        "blocks.1.res_blocks.0.branch2.conv_a.weight": (54, 24, 1, 1, 1),
        "blocks.1.res_blocks.0.branch2.conv_b.weight": (54, 1, 3, 3, 3),
        "blocks.1.res_blocks.0.branch2.norm_b.0.weight": (54,),
        "blocks.1.res_blocks.0.branch2.norm_b.1.block.0.weight": (8, 54, 1, 1, 1),
        "blocks.1.res_blocks.0.branch2.norm_b.1.block.2.bias": (54,),
        "blocks.2.res_blocks.0.branch1_norm.weight": (48,),
        "blocks.3.res_blocks.10.branch2.conv_c.weight": (96, 216, 1, 1, 1),
        "blocks.4.res_blocks.6.branch2.norm_b.1.block.0.weight": (32, 432, 1, 1, 1),
        "blocks.5.pool.pre_conv.weight": (432, 192, 1, 1, 1),
        "blocks.5.pool.pre_norm.running_mean": (432,),
        "blocks.5.pool.post_conv.weight": (2048, 432, 1, 1, 1),
        "blocks.5.proj.weight": (400, 2048),
        "blocks.5.proj.bias": (400,),
    },
    "i3d_rgb": {
        "Conv3d_1a_7x7.conv3d.weight": (64, 3, 7, 7, 7),
        "Conv3d_1a_7x7.bn.running_var": (64,),
        "Conv3d_2c_3x3.conv3d.weight": (192, 64, 3, 3, 3),
        "Mixed_3b.b0.conv3d.weight": (64, 192, 1, 1, 1),
        "Mixed_3b.b1b.conv3d.weight": (128, 96, 3, 3, 3),
        "Mixed_4f.b2b.conv3d.weight": (128, 32, 3, 3, 3),
        "Mixed_5c.b3b.conv3d.weight": (128, 832, 1, 1, 1),
        "logits.conv3d.weight": (400, 1024, 1, 1, 1),
        "logits.conv3d.bias": (400,),
    },
    "i3d_flow": {"Conv3d_1a_7x7.conv3d.weight": (64, 2, 7, 7, 7)},
    "resnet18": {
        "conv1.weight": (64, 3, 7, 7),
        "layer1.1.bn2.running_mean": (64,),
        "layer2.0.downsample.0.weight": (128, 64, 1, 1),
        "layer4.1.conv2.weight": (512, 512, 3, 3),
        "fc.weight": (1000, 512),
    },
    "resnet152": {
        "layer1.0.downsample.0.weight": (256, 64, 1, 1),
        "layer3.35.conv3.weight": (1024, 256, 1, 1),
        "fc.weight": (1000, 2048),
    },
    "efficientnet_b0": {
        "features.0.0.weight": (32, 3, 3, 3),
        "features.1.0.block.0.0.weight": (32, 1, 3, 3),
        "features.1.0.block.1.fc1.weight": (8, 32, 1, 1),
        "features.2.0.block.0.0.weight": (96, 16, 1, 1),
        "features.6.3.block.2.fc2.bias": (1152,),
        "features.8.0.weight": (1280, 320, 1, 1),
        "classifier.1.weight": (1000, 1280),
    },
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("name", sorted(OFFICIAL_KEYS))
def test_state_dict_uses_the_official_names(name):
    with torch.device("meta"):
        state = models.get_spec(name).build(
            num_classes=models.get_spec(name).num_classes, in_channels=models.get_spec(name).in_channels
        ).state_dict()
    for key, shape in OFFICIAL_KEYS[name].items():
        assert key in state, key
        assert tuple(state[key].shape) == shape, key


def test_pytorchvideo_x3d_has_no_norm_on_the_first_stage_shortcut():
    # pytorchvideo issue #95: stage 1's strided shortcut has a conv but no BN
    state = models.create_model("x3d_xs").state_dict()
    assert "blocks.1.res_blocks.0.branch1_conv.weight" in state
    assert not any(k.startswith("blocks.1.res_blocks.0.branch1_norm") for k in state)


def _randomised(model: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """A state dict with every float entry (BN statistics too) drawn at random."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in model.state_dict().items():
        if value.is_floating_point():
            value = torch.rand(value.shape, generator=gen) + 0.5
        state[key] = value.clone()
    return state


def _assert_loaded(model: torch.nn.Module, expected: dict[str, torch.Tensor]) -> None:
    loaded = model.state_dict()
    for key, value in expected.items():
        assert torch.equal(loaded[key], value), key


@pytest.mark.parametrize(
    "name, wrap",
    [
        ("x3d_xs", lambda s: {"model_state": s, "epoch": 30}),  # PyTorchVideo hub .pyth
        ("i3d_rgb", lambda s: s),  # pytorch-i3d rgb_imagenet.pt: a bare state dict
        ("i3d_flow", lambda s: s),
        ("resnet18", lambda s: {"state_dict": {f"module.{k}": v for k, v in s.items()}}),
        ("efficientnet_b0", lambda s: {"model": s}),
    ],
)
def test_official_layout_round_trips_bit_exactly(tmp_path, name, wrap):
    state = _randomised(models.create_model(name), seed=1)
    path = tmp_path / f"{name}.pth"
    torch.save(wrap(state), path)
    model = models.create_model(name, checkpoint=path)
    _assert_loaded(model, state)
    reference = models.create_model(name)
    reference.load_state_dict(state)
    x = torch.randn(models.input_shape(name, frames=8 if name.startswith("i3d") else None, crop=64))
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))


def test_checkpoint_without_num_batches_tracked_loads(tmp_path):
    # pytorch-i3d's released files predate BatchNorm's num_batches_tracked buffer
    state = _randomised(models.create_model("i3d_flow"), seed=2)
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "flow_imagenet.pt")
    _assert_loaded(models.create_model("i3d_flow", checkpoint=tmp_path / "flow_imagenet.pt"), state)


# PySlowFast's X3D names (slowfast/models: X3DStem, ResBlock, X3DTransform, SE,
# X3DHead), written from PyTorchVideo's names by hand for the test.
TO_PYSLOWFAST = [
    (r"^blocks\.0\.conv\.conv_t\.", "s1.pathway0_stem.conv_xy."),
    (r"^blocks\.0\.conv\.conv_xy\.", "s1.pathway0_stem.conv."),
    (r"^blocks\.0\.norm\.", "s1.pathway0_stem.bn."),
    (r"\.branch1_conv\.", ".branch1."),
    (r"\.branch1_norm\.", ".branch1_bn."),
    (r"\.branch2\.conv_([abc])\.", r".branch2.\1."),
    (r"\.branch2\.norm_([ac])\.", r".branch2.\1_bn."),
    (r"\.branch2\.norm_b\.0\.", ".branch2.b_bn."),
    (r"\.branch2\.norm_b\.1\.block\.0\.", ".branch2.se.fc1."),
    (r"\.branch2\.norm_b\.1\.block\.2\.", ".branch2.se.fc2."),
    (r"^blocks\.5\.pool\.pre_conv\.", "head.conv_5."),
    (r"^blocks\.5\.pool\.pre_norm\.", "head.conv_5_bn."),
    (r"^blocks\.5\.pool\.post_conv\.", "head.lin_5."),
    (r"^blocks\.5\.proj\.", "head.projection."),
]


def _pyslowfast_name(key: str) -> str:
    for pattern, replacement in TO_PYSLOWFAST:
        key = re.sub(pattern, replacement, key)
    return re.sub(r"^blocks\.([1-4])\.res_blocks\.(\d+)\.", lambda m: f"s{int(m[1]) + 1}.pathway0_res{m[2]}.", key)


def test_pyslowfast_x3d_checkpoint_is_mapped(tmp_path):
    source = X3D(depth_factor=2.2, frames=4, crop=160, stage1_shortcut_norm=True)
    state = _randomised(source, seed=3)
    pyslowfast = {_pyslowfast_name(k): v for k, v in state.items()}
    assert "s1.pathway0_stem.conv_xy.weight" in pyslowfast  # the spatial 1x3x3 conv in PySlowFast
    assert pyslowfast["s1.pathway0_stem.conv_xy.weight"].shape == (24, 3, 1, 3, 3)
    assert "s2.pathway0_res0.branch1_bn.running_var" in pyslowfast
    assert "s5.pathway0_res6.branch2.c_bn.weight" in pyslowfast
    torch.save({"model_state": pyslowfast, "epoch": 300, "cfg": "MODEL:\n  ARCH: x3d\n"}, tmp_path / "x3d_xs.pyth")
    model = models.create_model("x3d_xs", checkpoint=tmp_path / "x3d_xs.pyth")
    _assert_loaded(model, state)
    source.load_state_dict(state)
    x = torch.randn(1, 3, 4, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), source.eval()(x))


def test_corrupted_checkpoint_names_the_file(tmp_path):
    good = tmp_path / "good.pth"
    torch.save(models.create_model("resnet18").state_dict(), good)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(bytes(range(256)) * 10)
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    for path in (truncated, garbage, empty):
        with pytest.raises(CheckpointError, match=re.escape(str(path))):
            models.create_model("resnet18", checkpoint=path)
    with pytest.raises(CheckpointError, match="not found"):
        models.create_model("resnet18", checkpoint=tmp_path / "absent.pth")


class _Opaque:
    pass


def test_pickled_objects_are_refused_not_executed(tmp_path):
    path = tmp_path / "opaque.pth"
    with path.open("wb") as f:
        pickle.dump({"model": _Opaque()}, f, protocol=2)
    with pytest.raises(CheckpointError, match=r"opaque\.pth.*weights_only"):
        read_state_dict(path)


def test_checkpoint_without_tensors_is_not_a_state_dict(tmp_path):
    path = tmp_path / "meta.pth"
    torch.save({"epoch": 3, "cfg": "x"}, path)
    with pytest.raises(CheckpointError, match=r"meta\.pth: no state dict found.*cfg"):
        read_state_dict(path)


def test_foreign_checkpoint_lists_missing_and_unexpected_keys(tmp_path):
    path = tmp_path / "resnet18.pth"
    torch.save(models.create_model("resnet18").state_dict(), path)
    with pytest.raises(CheckpointError) as info:
        models.create_model("x3d_xs", checkpoint=path)
    message = str(info.value)
    assert str(path) in message
    assert "missing: blocks.0.conv.conv_t.weight" in message
    assert "unexpected: conv1.weight" in message


def test_wrong_num_classes_reports_the_shapes(tmp_path):
    path = tmp_path / "hvu_effnet.pth"
    torch.save(models.create_model("efficientnet_b0", num_classes=3142).state_dict(), path)
    shapes = r"classifier\.1\.weight: checkpoint \(3142, 1280\) vs model \(1000, 1280\)"
    with pytest.raises(CheckpointError, match=shapes):
        models.create_model("efficientnet_b0", checkpoint=path)
    assert models.create_model("efficientnet_b0", num_classes=3142, checkpoint=path).classifier[1].out_features == 3142
