"""Your own pool, end to end: pool config -> extract -> fit -> predict, with no train/serve skew.

The pool is X3D-XS (backbone) and X3D-S with random weights saved as
PyTorchVideo checkpoints (bare ``blocks.*`` state dicts), at small crops so
that CPU runs stay short. Random weights make every accuracy meaningless; what
is checked is that the numbers ``predict`` computes online are the ones
``extract`` stored, and that the policy decides on them as it did in ``fit``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from condsel import models
from condsel.cli import main
from condsel.extract.store import Store, load_store
from condsel.pool.predict import decode_for, video_runner
from condsel.pool.run_dir import load_run
from condsel.synthetic import CLASS_NAMES, generate

from conftest import FIXTURES

REAL_VIDEO = FIXTURES / "videos" / "arm_wrestling_cut.mp4"
CLASSES = len(CLASS_NAMES)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def write_pool(root: Path, members: dict[str, str], checkpoints: dict[str, str]) -> Path:
    """A 2-member X3D pool config at 64 px crops; ``checkpoints`` name -> file (members without one get no line)."""
    views = {"x3d_xs": "frames = 4\nstride = 12\ncrop = 64\n", "x3d_s": "frames = 6\nstride = 6\ncrop = 64\nclips = 2\n"}
    text = 'backbone = "xs"\n'
    for name, arch in members.items():
        text += f'\n[models.{name}]\narch = "{arch}"\nnum_classes = {CLASSES}\n{views[arch]}'
        if name in checkpoints:
            text += f'checkpoint = "{checkpoints[name]}"\n'
    path = root / "pool.toml"
    path.write_text(text, encoding="utf-8")
    return path


def save_pytorchvideo_checkpoint(arch: str, path: Path, num_classes: int = CLASSES, seed: int = 0) -> Path:
    """Random weights in PyTorchVideo's key layout (what torch.hub's x3d_xs/x3d_s state dicts look like)."""
    torch.manual_seed(seed)
    state = models.create_model(arch, num_classes=num_classes).state_dict()
    assert any(k.startswith("blocks.5.proj.") for k in state)
    torch.save(state, path)
    return path


@pytest.fixture(scope="module")
def journey(tmp_path_factory):
    root = tmp_path_factory.mktemp("journey")
    save_pytorchvideo_checkpoint("x3d_xs", root / "X3D_XS.pyth", seed=0)
    save_pytorchvideo_checkpoint("x3d_s", root / "X3D_S.pyth", seed=1)
    pool = write_pool(root, {"xs": "x3d_xs", "s": "x3d_s"}, {"xs": "X3D_XS.pyth", "s": "X3D_S.pyth"})
    (root / "classes.txt").write_text("".join(f"{c}\n" for c in CLASS_NAMES), encoding="utf-8")
    data = generate(root / "videos", 6, seed=0)
    rows = [(p.relative_to(root).as_posix(), CLASS_NAMES[int(y)]) for p, y in zip(data.paths, data.labels)]
    rows.append((str(REAL_VIDEO), CLASS_NAMES[0]))  # a real Kinetics clip (arm wrestling; the label is arbitrary here)
    (root / "manifest.csv").write_text("path,label\n" + "".join(f"{p},{c}\n" for p, c in rows), encoding="utf-8")
    store, run = root / "store", root / "run"
    assert main(["extract", "--pool", str(pool), "--classes", str(root / "classes.txt"), "--manifest",
                 str(root / "manifest.csv"), "--out", str(store), "--workers", "0", "--no-progress"]) == 0
    gflops = {m: Store.open(store).meta["gflops"][m] for m in ("xs", "s")}
    budget = gflops["xs"] + 0.5 * gflops["s"]
    assert main(["fit", "--pool", str(pool), "--store", str(store), "--budget", str(budget), "--folds", "3",
                 "--out", str(run)]) == 0
    videos = [root / p if not Path(p).is_absolute() else Path(p) for p, _ in rows]
    return {"root": root, "pool": pool, "store": store, "run": run, "videos": videos, "names": [p for p, _ in rows],
            "budget": budget}


def _json(capsys, argv: list[str]):
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_run_directory_pins_the_pool_and_records_the_cross_validated_point(journey):
    doc = json.loads((journey["run"] / "run.json").read_text())
    assert doc["format"] == "condsel-run/2" and doc["policy"]["name"] == "selector" and doc["aggregate"] == "softmax"
    assert doc["random_weights"] is False and doc["classes"] == list(CLASS_NAMES)
    point = doc["operating_point"]
    assert point["gflops"] <= journey["budget"] and "cross-validation" in point["measured_on"]
    assert point["threshold"] == doc["threshold"]
    assert doc["notes"]["store"]["videos"] == len(journey["videos"]) and len(doc["notes"]["store"]["digest"]) == 64
    pool_text = (journey["run"] / "pool.toml").read_text()
    assert str((journey["root"] / "X3D_XS.pyth").resolve()) in pool_text and pool_text.count("sha256 = ") == 2
    provenance = json.loads((journey["run"] / "provenance.json").read_text())
    assert provenance["commands"][-1].startswith("condsel fit --pool")


def test_predict_equals_the_store_and_the_fitted_policy(journey, capsys):
    run = load_run(journey["run"])
    table = load_store(journey["store"])
    routing = run.policy.route(table, run.threshold)
    results = _json(capsys, ["predict", "--run", str(journey["run"]), *map(str, journey["videos"]), "--json"])
    zoo = {r["name"]: r["gflops_per_video"] for r in _json(capsys, ["zoo", "--pool", str(journey["pool"]), "--json"])}
    for name, path, result in zip(journey["names"], journey["videos"], results):
        i = table.names.tolist().index(name)
        # no skew: the backbone's online scores are the stored ones
        online = video_runner(run, decode_for(run, path))(["xs"])["xs"]
        np.testing.assert_allclose(online, table.logits["xs"][i], atol=1e-5, err_msg=name)
        # the same decision and label as the fitted policy on the stored scores
        ran = [m for m, r in zip(run.policy.members_, routing.ran[i]) if r]
        assert result["members"] == ran and result["model"] == ran[-1], name
        assert result["label"] == CLASS_NAMES[int(routing.scores[i].argmax())], name
        assert result["gflops"] == pytest.approx(sum(zoo[m] for m in ran) + run.policy.overhead_gflops_, abs=1e-3)
    assert {tuple(r["members"]) for r in results} <= {("xs",), ("xs", "s")}


def test_a_member_without_a_checkpoint_is_named_by_extract_and_fit(journey, tmp_path, capsys):
    pool = write_pool(tmp_path, {"xs": "x3d_xs", "s": "x3d_s"}, {"xs": str(journey["root"] / "X3D_XS.pyth")})
    argv = ["extract", "--pool", str(pool), "--classes", str(journey["root"] / "classes.txt"),
            "--manifest", str(journey["root"] / "manifest.csv"), "--out", str(tmp_path / "store"), "--workers", "0"]
    assert main(argv) == 2
    assert "member 's' has no checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "store").exists()
    assert main(["fit", "--pool", str(pool), "--store", str(journey["store"]), "--out", str(tmp_path / "run")]) == 2
    assert "member 's' has no checkpoint" in capsys.readouterr().err


def test_random_weights_are_allowed_only_when_asked_and_then_said_everywhere(journey, tmp_path, capsys):
    pool = write_pool(tmp_path, {"xs": "x3d_xs", "s": "x3d_s"}, {"xs": str(journey["root"] / "X3D_XS.pyth")})
    manifest = tmp_path / "manifest.csv"
    lines = (journey["root"] / "manifest.csv").read_text().splitlines()
    manifest.write_text("\n".join(lines[:1] + [str(journey["root"] / line) for line in lines[1:4]]) + "\n")
    assert main(["extract", "--pool", str(pool), "--classes", str(journey["root"] / "classes.txt"), "--manifest",
                 str(manifest), "--out", str(tmp_path / "store"), "--workers", "0", "--no-progress",
                 "--random-weights"]) == 0
    assert "random weights" in capsys.readouterr().out
    assert Store.open(tmp_path / "store").meta["pool"]["random_weights"] is True
    (tmp_path / "costs.toml").write_text("[gflops]\nxs = 1.0\ns = 5.0\n")
    assert main(["fit", "--pool", str(pool), "--store", str(tmp_path / "store"), "--folds", "3", "--random-weights",
                 "--costs", str(tmp_path / "costs.toml"), "--out", str(tmp_path / "run")]) == 0
    assert json.loads((tmp_path / "run" / "run.json").read_text())["random_weights"] is True
    (result,) = _json(capsys, ["predict", "--run", str(tmp_path / "run"), str(journey["videos"][0]), "--json"])
    assert result["random_weights"] is True
    # --costs replaces the counted costs in the policy, and so in what predict reports
    overhead = load_run(tmp_path / "run").policy.overhead_gflops_
    assert result["gflops"] == pytest.approx({("xs",): 1.0, ("xs", "s"): 6.0}[tuple(result["members"])] + overhead)

    # [ms] costs (condsel profile) replace every cost: the run works in ms and says so; GFLOPs stay the counted ones
    (tmp_path / "ms.toml").write_text("[ms]\nxs = 2.0\ns = 7.0\n")
    assert main(["fit", "--pool", str(pool), "--store", str(tmp_path / "store"), "--folds", "3", "--random-weights",
                 "--costs", str(tmp_path / "ms.toml"), "--out", str(tmp_path / "run_ms")]) == 0
    assert "ms/video" in capsys.readouterr().out
    doc = json.loads((tmp_path / "run_ms" / "run.json").read_text())
    assert doc["cost_unit"] == "ms" and "ms" in doc["operating_point"] and "gflops" not in doc["operating_point"]
    assert all("ms" in p and "gflops" not in p for p in doc["calibration"])
    spent = [p["ms"] for p in doc["calibration"]]  # from the backbone alone (2 ms) to both members (9 ms)
    assert min(spent) == pytest.approx(2.0, abs=1e-3) and max(spent) == pytest.approx(9.0, abs=1e-3)
    (timed,) = _json(capsys, ["predict", "--run", str(tmp_path / "run_ms"), "--budget", "2.01", str(journey["videos"][0]), "--json"])
    counted = load_run(tmp_path / "run_ms", [])
    assert timed["members"] == ["xs"] and timed["ms"] == pytest.approx(2.0)  # 2 ms affords the backbone alone
    assert timed["gflops"] == pytest.approx(counted.gflops["xs"] + counted.policy.overhead_gflops_)
    (tmp_path / "part.toml").write_text("[ms]\nxs = 2.0\n")
    assert main(["fit", "--pool", str(pool), "--store", str(tmp_path / "store"), "--random-weights",
                 "--costs", str(tmp_path / "part.toml"), "--out", str(tmp_path / "run_part")]) == 2
    assert "part.toml: [ms] has no cost for model(s) ['s']" in capsys.readouterr().err


def test_a_checkpoint_of_another_class_count_names_the_file_and_key(journey, tmp_path, capsys):
    wrong = save_pytorchvideo_checkpoint("x3d_s", tmp_path / "X3D_S_400.pyth", num_classes=400)
    pool = write_pool(tmp_path, {"xs": "x3d_xs", "s": "x3d_s"},
                      {"xs": str(journey["root"] / "X3D_XS.pyth"), "s": str(wrong)})
    assert main(["extract", "--pool", str(pool), "--manifest", str(journey["root"] / "manifest.csv"),
                 "--classes", str(journey["root"] / "classes.txt"), "--out", str(tmp_path / "store")]) == 2
    err = capsys.readouterr().err
    assert "X3D_S_400.pyth" in err and "first mismatching key 'blocks.5.proj.weight'" in err


def test_fit_refuses_a_store_of_other_weights(journey, tmp_path, capsys):
    other = save_pytorchvideo_checkpoint("x3d_s", tmp_path / "X3D_S.pyth", seed=7)
    pool = write_pool(tmp_path, {"xs": "x3d_xs", "s": "x3d_s"}, {"xs": str(journey["root"] / "X3D_XS.pyth"), "s": str(other)})
    assert main(["fit", "--pool", str(pool), "--store", str(journey["store"]), "--out", str(tmp_path / "run")]) == 2
    assert "member 's' was extracted with sha256" in capsys.readouterr().err


WALKTHROUGH = Path(__file__).resolve().parents[1] / "docs" / "your_pool.md"


def walkthrough_commands() -> list[list[str]]:
    """Every command of the ```bash blocks of docs/your_pool.md, split as a shell would."""
    text = WALKTHROUGH.read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    return [shlex.split(line) for block in blocks for line in block.replace("\\\n", " ").splitlines() if line.strip()]


@pytest.mark.slow
def test_the_walkthrough_runs_as_written(tmp_path, capsys, monkeypatch):
    """docs/your_pool.md, command by command, with random-weight checkpoints and a small pool of the same names."""
    (tmp_path / "checkpoints").mkdir()
    save_pytorchvideo_checkpoint("x3d_xs", tmp_path / "checkpoints" / "X3D_XS.pyth", seed=0)
    save_pytorchvideo_checkpoint("x3d_s", tmp_path / "checkpoints" / "X3D_S.pyth", seed=1)
    pool = write_pool(tmp_path, {"x3d_xs": "x3d_xs", "x3d_s": "x3d_s"},
                      {"x3d_xs": "checkpoints/X3D_XS.pyth", "x3d_s": "checkpoints/X3D_S.pyth"})
    pool.write_text(pool.read_text().replace('backbone = "xs"', 'backbone = "x3d_xs"'))
    (tmp_path / "classes.txt").write_text("".join(f"{c}\n" for c in CLASS_NAMES), encoding="utf-8")
    data = generate(tmp_path / "videos", 6, seed=3)
    rows = "".join(f"{p.relative_to(tmp_path).as_posix()},{CLASS_NAMES[int(y)]}\n" for p, y in zip(data.paths, data.labels))
    (tmp_path / "train.csv").write_text("path,label\n" + rows, encoding="utf-8")
    new = generate(tmp_path / "new", 2, seed=4)
    for i, p in enumerate(new.paths, start=1):
        p.rename(tmp_path / "videos" / f"new_{i}.mp4")

    commands = walkthrough_commands()
    assert [c[0] for c in commands].count("torchrun") == 1 and len(commands) >= 8
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    for argv in commands:
        if argv[0] == "torchrun":  # several processes: a real torchrun, as a user starts it
            done = subprocess.run([sys.executable, "-m", "torch.distributed.run", *argv[1:]], cwd=tmp_path, env=env,
                                  capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stderr[-2000:]
            continue
        assert argv[0] == "condsel", argv
        capsys.readouterr()
        monkeypatch.chdir(tmp_path)
        assert main(argv[1:]) == 0, argv
        if argv[1] == "predict":
            results = json.loads(capsys.readouterr().out)
            assert [r["video"] for r in results] == ["videos/new_1.mp4", "videos/new_2.mp4"]
            assert all(r["members"][0] == "x3d_xs" for r in results)
    assert (tmp_path / "run" / "report.html").is_file() and (tmp_path / "table" / "summary.json").is_file()
    assert "calibration.png" in (tmp_path / "run" / "report.html").read_text()
    (snippet,) = re.findall(r"```python\n(.*?)```", WALKTHROUGH.read_text(encoding="utf-8"), flags=re.S)
    capsys.readouterr()
    monkeypatch.chdir(tmp_path)
    exec(compile(snippet, str(WALKTHROUGH), "exec"), {})
    printed = capsys.readouterr().out
    assert "'video': 'videos/new_1.mp4'" in printed and "'members': ['x3d_xs'" in printed
