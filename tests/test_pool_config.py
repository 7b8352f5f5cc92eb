"""Pool configs: the shipped example, validation errors, building a pool with weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from condsel import models
from condsel.pool.config import build_pool, load_pool_config

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "pool_x3d_kinetics.toml"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pool.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_pool_config():
    pool = load_pool_config(EXAMPLE)
    assert pool.backbone == "x3d_xs"
    assert pool.names == ["x3d_xs", "x3d_s", "x3d_m", "x3d_l"]
    m = pool.member("x3d_m")
    assert (m.arch, m.num_classes) == ("x3d_m", 400)
    assert m.views == 30
    assert m.checkpoint == (EXAMPLE.parent / "checkpoints" / "X3D_M.pyth").resolve()
    assert m.gflops_per_video == pytest.approx(30 * 4.73, rel=0.03)
    spec = m.clip
    assert (spec.num_frames, spec.stride, spec.size) == (16, 5, 224)
    assert (spec.clips, spec.crops, spec.target_fps) == (10, 3, 30.0)


def test_overrides_and_aliases(tmp_path):
    pool = load_pool_config(
        _write(
            tmp_path,
            'backbone = "cheap"\n'
            '[models.cheap]\narch = "x3d_xs"\n'
            '[models.flow]\narch = "i3d_flow"\nframes = 32\ncrop = 112\nclips = 4\nnum_classes = 20\n',
        )
    )
    cheap, flow = pool.members
    assert (cheap.arch, cheap.views, cheap.checkpoint, cheap.clip.num_frames) == ("x3d_xs", 1, None, 4)
    assert (flow.clip.num_frames, flow.clip.size, flow.views, flow.num_classes, flow.clip.target_fps) == (32, 112, 4, 20, 25.0)
    assert flow.gflops_per_view == models.gflops("i3d_flow", 32, 112, 20)


@pytest.mark.parametrize(
    "text, message",
    [
        (
            'backbone = "a"\n[models.a]\narch = "x3d_xs"\nchekpoint = "w.pyth"\n',
            r"\[models\.a\] unknown key\(s\) \['chekpoint'\]",
        ),
        ('backbone = "b"\n[models.a]\narch = "x3d_xs"\n', r"backbone = 'b' must name one of the models \(a\)"),
        ('[models.a]\narch = "x3d_xs"\n', r"backbone = None must name"),
        ('backbone = "a"\n[models.a]\narch = "x3d_xxl"\n', r"\[models\.a\] arch 'x3d_xxl' is not a zoo model"),
        ('backbone = "x3d_m"\n[models.x3d_m]\ncrops = 2\n', r"crops = 2 must be 1 \(centre\) or 3"),
        ('backbone = "x3d_m"\n[models.x3d_m]\nclips = 0\n', r"clips = 0 must be a positive integer"),
        ('backbone = "x3d_m"\n[models.x3d_m]\nframes = 4.5\n', r"frames = 4\.5 must be a positive integer"),
        ('backbone = "x3d_m"\n[models.x3d_m]\nfps = -1\n', r"fps = -1 must be a positive number"),
        ('backbone = "x3d_m"\nviews = 3\n[models.x3d_m]\n', r"unknown top-level key\(s\) \['views'\]"),
        ('backbone = "x3d_m"\n', r"no \[models\.<name>\] tables"),
        ('backbone = x3d_m\n', r"cannot read pool config"),
    ],
)
def test_invalid_configs_name_file_and_member(tmp_path, text, message):
    with pytest.raises(ValueError, match=message) as info:
        load_pool_config(_write(tmp_path, text))
    assert str(tmp_path / "pool.toml") in str(info.value)


def test_build_pool_loads_each_members_weights(tmp_path):
    torch.manual_seed(0)
    saved = models.create_model("x3d_xs", num_classes=10).state_dict()
    torch.save({"model_state": saved}, tmp_path / "xs.pyth")
    path = _write(
        tmp_path,
        'backbone = "xs"\n[models.xs]\narch = "x3d_xs"\ncheckpoint = "xs.pyth"\nnum_classes = 10\n'
        '[models.r18]\narch = "resnet18"\nnum_classes = 10\n',
    )
    pool = load_pool_config(path)
    with pytest.raises(ValueError, match=r"cannot build the pool: member 'r18' has no checkpoint"):
        build_pool(pool)
    built = build_pool(pool, random_weights=True)
    assert list(built) == ["xs", "r18"]
    for key, value in saved.items():
        assert torch.equal(built["xs"].state_dict()[key], value), key
    assert built["r18"].fc.out_features == 10 and not built["r18"].training


def test_build_pool_lists_every_missing_file_first(tmp_path):
    path = _write(
        tmp_path,
        'backbone = "a"\n[models.a]\narch = "x3d_xs"\ncheckpoint = "a.pyth"\n'
        '[models.b]\narch = "x3d_s"\ncheckpoint = "b.pyth"\n',
    )
    with pytest.raises(ValueError, match=r"'a': checkpoint .*a\.pyth not found; member 'b': checkpoint .*b\.pyth not found"):
        build_pool(load_pool_config(path))
