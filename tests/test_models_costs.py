"""Zoo costs against published figures and hand-computed convolution counts."""

from __future__ import annotations

import pytest
import torch

from condsel import models
from condsel.models.costs import count_gflops
from condsel.models.i3d import Unit3D

# Published multiply-adds per view at the default input: X3D paper / PySlowFast
# model zoo (1 clip x 1 centre crop at the training crop), torchvision docs;
# BN-Inception: 16 GFLOPs for 8 224^2 frames of TSN / TRN (TSM paper, Lin et al. 2019).
PUBLISHED = {
    "x3d_xs": 0.60,
    "x3d_s": 1.96,
    "x3d_m": 4.73,
    "x3d_l": 18.37,
    "resnet18": 1.81,
    "resnet152": 11.51,
    "efficientnet_b0": 0.39,
    "bninception_rgb": 2.0,
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_gflops_match_published_within_3_percent(name):
    assert models.gflops(name) == pytest.approx(PUBLISHED[name], rel=0.03)
    assert models.get_spec(name).published_gflops == PUBLISHED[name]


def test_i3d_64_frames_matches_the_108_gflops_quoted_for_i3d():
    # The SlowFast and X3D papers list Inception-v1 I3D at 108 GFLOPs
    # (multiply-adds) for its 64-frame 224^2 input.
    assert models.gflops("i3d_rgb", frames=64) == pytest.approx(108, rel=0.03)


def test_i3d_cost_scales_with_frames_and_input_channels():
    rgb16, rgb64 = models.gflops("i3d_rgb"), models.gflops("i3d_rgb", frames=64)
    assert rgb64 == pytest.approx(4 * rgb16, rel=0.01)
    # only the 7x7x7 stem sees the input channels: 64 x 343 x 8 x 112^2 MACs per channel
    stem_per_channel = 64 * 7**3 * 8 * 112 * 112 / 1e9
    assert rgb16 - models.gflops("i3d_flow") == pytest.approx(stem_per_channel, rel=1e-6)


def test_i3d_stem_count_is_the_hand_computed_convolution():
    stem = Unit3D(3, 64, (7, 7, 7), (2, 2, 2))
    # "SAME" padding, stride 2: 16x224^2 -> 8x112^2 outputs, each 3 x 7^3 MACs per filter
    expected = 64 * 3 * 7**3 * 8 * 112 * 112 / 1e9
    assert count_gflops(stem, torch.zeros(1, 3, 16, 224, 224)) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("name", ["resnet18", "efficientnet_b0"])
def test_frame_model_view_costs_frames_times_per_frame(name):
    assert models.gflops(name, frames=8) == pytest.approx(8 * models.gflops(name, frames=1), rel=1e-9)


@pytest.mark.parametrize("name", ["x3d_xs", "efficientnet_b0"])
def test_meta_device_count_equals_a_real_cpu_forward(name):
    model = models.create_model(name)
    real = count_gflops(model, torch.zeros(models.input_shape(name)))
    assert models.gflops(name) == pytest.approx(real, rel=1e-12)


# Parameter counts published by torchvision (weights meta "num_params") and by
# PyTorchVideo's model zoo (X3D: 3.79M for XS/S/M, 6.15M for L).
@pytest.mark.parametrize(
    "name, params",
    [("resnet18", 11_689_512), ("resnet152", 60_192_808), ("efficientnet_b0", 5_288_548)],
)
def test_torchvision_parameter_counts(name, params):
    with torch.device("meta"):
        model = models.get_spec(name).build(num_classes=1000, in_channels=3)
    assert sum(p.numel() for p in model.parameters()) == params


@pytest.mark.parametrize("name, millions", [("x3d_xs", 3.79), ("x3d_m", 3.79), ("x3d_l", 6.15)])
def test_x3d_parameter_counts(name, millions):
    with torch.device("meta"):
        model = models.get_spec(name).build(num_classes=400, in_channels=3)
    assert sum(p.numel() for p in model.parameters()) / 1e6 == pytest.approx(millions, abs=0.005)
