"""Every zoo model runs at its default input on the CPU; heads behave as documented."""

from __future__ import annotations

import pytest
import torch

from condsel import models

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize("name", models.list_models())
def test_forward_at_default_input(name):
    spec = models.get_spec(name)
    model = models.create_model(name)
    with torch.no_grad():
        logits = model(torch.randn(models.input_shape(name)))
    assert logits.shape == (1, spec.num_classes)
    assert torch.isfinite(logits).all()


def test_registry_lists_the_issue_models():
    assert set(models.list_models()) == {
        "x3d_xs", "x3d_s", "x3d_m", "x3d_l", "i3d_rgb", "i3d_flow", "resnet18", "resnet152", "efficientnet_b0",
        "bninception_rgb", "bninception_flow",
        "frame2d", "conv3d_s", "conv3d_l",  # the synthetic benchmark's nets
    }
    with pytest.raises(ValueError, match="unknown model 'x3d_xl'.*x3d_xs"):
        models.get_spec("x3d_xl")


@pytest.mark.parametrize(
    "name, shape",
    [("x3d_xs", (1, 3, 4, 160, 160)), ("i3d_flow", (1, 2, 16, 112, 112)), ("resnet18", (1, 3, 2, 64, 64))],
)
def test_classifier_reads_forward_features(name, shape):
    model = models.create_model(name, num_classes=7)
    x = torch.randn(shape)
    with torch.no_grad():
        features, logits = model.forward_features(x), model(x)
    classifier = {"x3d_xs": lambda f: model.blocks[-1].proj(f),
                  "i3d_flow": lambda f: model.logits(f[:, :, None, None, None]).flatten(1),
                  "resnet18": lambda f: model.fc(f)}[name]
    torch.testing.assert_close(classifier(features), logits, rtol=1e-5, atol=1e-5)


def test_frame_model_averages_per_frame_logits():
    model = models.create_model("efficientnet_b0", num_classes=5)
    clip = torch.randn(2, 3, 3, 64, 64)
    with torch.no_grad():
        per_frame = torch.stack([model(clip[:, :, t : t + 1]) for t in range(3)], dim=1)
        torch.testing.assert_close(model(clip), per_frame.mean(dim=1), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"\(B, C, T, H, W\)"):
        model(torch.randn(1, 3, 64, 64))


def test_x3d_head_slides_its_window_on_larger_crops():
    # At the default 4x160^2 the head sees one 4x5x5 window; a 192^2 crop gives
    # a 6x6 map, i.e. 2x2 window positions averaged after the projection.
    model = models.create_model("x3d_xs", num_classes=3)
    trunk_out = torch.relu(torch.randn(1, 192, 4, 6, 6))
    head = model.blocks[-1]
    with torch.no_grad():
        windows = [head.pool(trunk_out[..., i : i + 5, j : j + 5]) for i in (0, 1) for j in (0, 1)]
        expected = torch.stack([head.proj(w.flatten(1)) for w in windows]).mean(dim=0)
        torch.testing.assert_close(head(trunk_out), expected, rtol=1e-5, atol=1e-5)
