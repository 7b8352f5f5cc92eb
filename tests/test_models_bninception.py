"""BN-Inception in TSN's released layout, and the SeqVLAD aggregation against a direct computation."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from condsel import models
from condsel.models.checkpoints import CheckpointError
from condsel.models.seqvlad import SeqVLADAggregation

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# A sample of parameters of TSN's BN-Inception as released (Caffe layer ids, as in tsn-pytorch's
# bn_inception and Cadene's pretrainedmodels.bninception), with their shapes for 3-channel input.
OFFICIAL = {
    "conv1_7x7_s2.weight": (64, 3, 7, 7),
    "conv1_7x7_s2.bias": (64,),
    "conv1_7x7_s2_bn.running_mean": (64,),
    "conv2_3x3.weight": (192, 64, 3, 3),
    "inception_3a_1x1.weight": (64, 192, 1, 1),
    "inception_3a_pool_proj.weight": (32, 192, 1, 1),
    "inception_3c_3x3.weight": (160, 128, 3, 3),
    "inception_3c_double_3x3_2_bn.weight": (96,),
    "inception_4a_1x1.weight": (224, 576, 1, 1),
    "inception_4d_double_3x3_reduce.weight": (160, 608, 1, 1),
    "inception_4e_double_3x3_1.weight": (256, 192, 3, 3),
    "inception_5a_1x1.weight": (352, 1056, 1, 1),
    "inception_5b_pool_proj.weight": (128, 1024, 1, 1),
    "inception_5b_double_3x3_2_bn.running_var": (224,),
}


def test_state_dict_has_the_official_names_and_shapes():
    state = models.create_model("bninception_rgb").state_dict()
    for key, shape in OFFICIAL.items():
        assert tuple(state[key].shape) == shape, key
    assert not any(k.startswith("inception_3c_1x1") or k.startswith("inception_4e_pool_proj") for k in state)
    assert tuple(state["fc.weight"].shape) == (1000, 1024)


def test_flow_stream_takes_5_stacked_flow_pairs():
    assert tuple(models.create_model("bninception_flow").state_dict()["conv1_7x7_s2.weight"].shape) == (64, 10, 7, 7)


@pytest.mark.parametrize("prefix, head", [("module.base_model.", "new_fc"), ("", "last_linear")])
def test_tsn_and_cadene_checkpoints_load(tmp_path, prefix, head):
    """A random-weights state_dict written in TSN's (``base_model.*``, ``new_fc``) or Cadene's layout loads."""
    torch.manual_seed(0)
    source = models.create_model("bninception_flow", num_classes=7)
    for p in source.parameters():
        p.data.normal_(0, 0.05)
    state = {}
    for key, value in source.state_dict().items():
        key = f"{head}.{key[3:]}" if key.startswith("fc.") else prefix + key
        state[key] = value
    torch.save({"state_dict": state, "epoch": 3}, tmp_path / "tsn_flow.pth.tar")
    loaded = models.create_model("bninception_flow", num_classes=7, checkpoint=tmp_path / "tsn_flow.pth.tar")
    clip = torch.randn(1, 10, 2, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(loaded(clip), source.eval()(clip))


def _random_bn_inception_state() -> dict[str, torch.Tensor]:
    """Random weights and BatchNorm statistics, without num_batches_tracked (the Caffe-converted file has none)."""
    gen = torch.Generator().manual_seed(1)
    return {
        key: torch.rand(value.shape, generator=gen) * 0.1 + 0.5 if value.is_floating_point() else value
        for key, value in models.create_model("bninception_rgb").state_dict().items()
        if not key.endswith("num_batches_tracked")
    }


def test_tsn_imagenet_file_with_1_by_c_batchnorm_tensors_loads(tmp_path):
    """tsn-pytorch's bn_inception-9f5701afb96c8044.pth stores BN weight, bias and statistics as (1, C)."""
    state = _random_bn_inception_state()
    row = {k: v.reshape(1, -1) if re.search(r"_bn\.(weight|bias|running_mean|running_var)$", k) else v
           for k, v in state.items()}
    assert row["conv1_7x7_s2_bn.weight"].shape == (1, 64) and row["inception_5b_pool_proj_bn.running_var"].shape == (1, 128)
    assert sum(v.dim() == 2 and v.shape[0] == 1 for v in row.values()) == 4 * sum(k.endswith("_bn.weight") for k in state)
    torch.save(row, tmp_path / "bn_inception_row.pth")
    torch.save(state, tmp_path / "bn_inception_flat.pth")
    row_model = models.create_model("bninception_rgb", checkpoint=tmp_path / "bn_inception_row.pth")
    flat_model = models.create_model("bninception_rgb", checkpoint=tmp_path / "bn_inception_flat.pth")
    clip = torch.randn(2, 3, 1, 96, 96)
    with torch.no_grad():
        row_logits, flat_logits = row_model(clip), flat_model(clip)
    assert row_logits.abs().max() > 0
    assert torch.equal(row_logits, flat_logits)


def test_only_batchnorm_tensors_are_squeezed(tmp_path):
    state = _random_bn_inception_state()
    state["fc.bias"] = state["fc.bias"].reshape(1, -1)
    torch.save(state, tmp_path / "bad_fc.pth")
    with pytest.raises(CheckpointError, match=r"fc\.bias: checkpoint \(1, 1000\) vs model \(1000,\)"):
        models.create_model("bninception_rgb", checkpoint=tmp_path / "bad_fc.pth")


def test_aggregation_with_one_frame_is_soft_vlad_on_the_input_assignment():
    """T = 1 and a zero state: the GRU gives tanh(W x + b) (z = sigmoid(W x + b) mixes with 0 state)."""
    torch.manual_seed(0)
    agg = SeqVLADAggregation(in_channels=6, reduced=4, centers=3).eval()
    torch.nn.init.normal_(agg.centers)
    maps = torch.randn(1, 1, 6, 2, 2)
    with torch.no_grad():
        out = agg(maps).numpy()
        x = agg.reduce(maps[0]).numpy()[0].reshape(4, -1).T  # (positions, D)
        drive = agg.assign_input(agg.reduce(maps[0])).numpy()[0].reshape(3, -1).T  # (positions, K)
    z = 1 / (1 + np.exp(-drive))
    h = (1 - z) * np.tanh(drive)
    a = np.exp(h) / np.exp(h).sum(1, keepdims=True)
    c = agg.centers.detach().numpy()
    vlad = np.stack([sum(a[p, k] * (x[p] - c[k]) for p in range(len(x))) for k in range(3)])
    vlad /= np.linalg.norm(vlad, axis=1, keepdims=True)
    vlad = vlad.reshape(-1) / np.linalg.norm(vlad)
    np.testing.assert_allclose(out[0], vlad, rtol=1e-5, atol=1e-6)
