"""``condsel zoo``: the JSON listing and the readable table."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from condsel import cli
from condsel.commands import zoo

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "pool_x3d_kinetics.toml"
ISSUE_MODELS = {"x3d_xs", "x3d_s", "x3d_m", "x3d_l", "resnet18", "resnet152", "efficientnet_b0", "i3d_rgb", "i3d_flow",
                "bninception_rgb", "bninception_flow"}
SYNTHETIC_MODELS = {"frame2d", "conv3d_s", "conv3d_l"}


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    zoo.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_zoo_is_a_cli_command():
    assert cli.COMMANDS["zoo"] == "zoo"


def test_zoo_json(capsys):
    assert _run(["zoo", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == ISSUE_MODELS | SYNTHETIC_MODELS
    for row in rows.values():
        assert isinstance(row["gflops"], float) and isinstance(row["frames"], int) and isinstance(row["crop"], int)
        if row["published_gflops"] is not None:
            assert row["gflops"] == pytest.approx(row["published_gflops"], rel=0.03)
    assert (rows["x3d_l"]["frames"], rows["x3d_l"]["crop"]) == (16, 312)
    assert rows["i3d_flow"]["channels"] == 2 and rows["i3d_flow"]["modality"] == "flow"
    r152 = rows["resnet152"]
    assert r152["gflops"] == pytest.approx(r152["frames"] * r152["gflops_per_frame"])
    assert rows["x3d_m"]["gflops_per_frame"] is None


def test_zoo_table_states_the_convention(capsys):
    assert _run(["zoo"]) == 0
    out = capsys.readouterr().out
    assert "multiply-add" in out
    assert "x3d_l" in out and "16 x 312^2" in out


def test_zoo_pool(capsys, tmp_path):
    assert _run(["zoo", "--pool", str(EXAMPLE), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["x3d_xs", "x3d_s", "x3d_m", "x3d_l"]
    assert [r["backbone"] for r in rows] == [True, False, False, False]
    assert all(r["gflops_per_video"] == pytest.approx(30 * r["gflops_per_view"], rel=1e-4) for r in rows)
    bad = tmp_path / "bad.toml"
    bad.write_text('backbone = "x"\n[models.y]\narch = "x3d_xs"\n')
    with pytest.raises(ValueError, match=r"bad\.toml: backbone = 'x' must name one of the models"):
        _run(["zoo", "--pool", str(bad)])  # the command raises; only cli.main turns it into exit 2
    assert cli.main(["zoo", "--pool", str(bad)]) == 2
    assert capsys.readouterr().err.startswith(f"condsel zoo: error: {bad}: backbone")


def test_zoo_pool_names_a_member_without_weights(capsys, tmp_path):
    pool = tmp_path / "pool.toml"
    pool.write_text('backbone = "xs"\n[models.xs]\narch = "x3d_xs"\ncheckpoint = "xs.pyth"\n[models.s]\narch = "x3d_s"\n')
    assert cli.main(["zoo", "--pool", str(pool)]) == 2
    assert "member 's' has no checkpoint" in capsys.readouterr().err
    assert cli.main(["zoo", "--pool", str(pool), "--random-weights", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["random_weights"] for r in rows] == [False, True]
