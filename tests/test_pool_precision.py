"""``--device`` and ``--precision``: one Placement for every inference path, checked on this machine's CPU.

bf16 autocast is run on the CPU through the same code as on a GPU (only the
device differs) and compared with fp32:

- on the official implementations' reference inputs (``../shared/data/zoo_reference``);
- on the fixture videos, through ``member_scores`` (views, normalisation, aggregation);
- through a fitted policy: its routing decisions on held-out synthetic videos.

Tolerance (documented in docs/serve.md): bfloat16 keeps 8 significant bits
(relative rounding 2^-9) and the error grows through ~50 layers, so a logit may
move by up to ``REL_TOL`` of the largest logit's magnitude (seen: 0.8-2.7%), and
the top-1 class must not change. Bad combinations are usage errors naming the flag.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import FIXTURES, SHARED_DATA, shared_data, synthetic_pool_videos

from condsel import models
from condsel.cli import main
from condsel.errors import CondselError
from condsel.extract import load_store
from condsel.extract.runner import ExtractSettings
from condsel.pool.config import build_pool, write_pool_config
from condsel.pool.device import Placement, parse_device
from condsel.pool.inference import member_scores, pool_table
from condsel.pool.predict import predict_video
from condsel.pool.run_dir import load_run, save_run
from condsel.pool.train import TrainConfig, train_member
from condsel.pool.views import member_views
from condsel.selection.method.policies import SelectorPolicy
from condsel.synthetic import CLASS_NAMES, generate
from condsel.video.decode import decode_video
from condsel.workflows.demo import SYNTHETIC_POOL

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REL_TOL = 0.05  # |bf16 - fp32| <= REL_TOL * max |fp32 logit|
ROUTING_AGREEMENT = 0.99
FIXTURE_VIDEOS = [FIXTURES / "videos" / "arm_wrestling_cut.mp4", FIXTURES / "videos" / "unlabelled_test_cut.avi"]
BF16 = Placement(precision="bf16")


def _assert_close_in_bf16(fp32: np.ndarray, bf16: np.ndarray, what: str) -> None:
    scale = np.abs(fp32).max(axis=-1, keepdims=True)
    worst = float((np.abs(bf16 - fp32) / scale).max())
    assert worst <= REL_TOL, f"{what}: bf16 moved a logit by {worst:.3%} of the largest logit (tolerance {REL_TOL:.0%})"
    assert (bf16.argmax(-1) == fp32.argmax(-1)).all(), f"{what}: bf16 changed the top-1 class"
    assert not np.array_equal(bf16, fp32), f"{what}: bf16 gave fp32's exact numbers: autocast did not run"


def test_flags_have_one_spelling_and_bad_combinations_name_the_flag():
    assert parse_device("cpu") == torch.device("cpu") and parse_device(" cuda:1 ", here=False) == torch.device("cuda", 1)
    for bad in ("gpu", "cpu:0", "cuda:x", "CUDA"):
        with pytest.raises(CondselError, match=r"^--device .*expected cpu, cuda or cuda:N"):
            parse_device(bad)
    with pytest.raises(CondselError, match=r"^--precision fp16: float16 autocast needs a CUDA device"):
        Placement.parse("cpu", "fp16")
    if not torch.cuda.is_available():
        with pytest.raises(CondselError, match=r"^--device cuda: CUDA is not available"):
            Placement.parse("cuda")
    assert not Placement().reduced and BF16.reduced and (BF16.name, BF16.precision) == ("cpu", "bf16")


@pytest.mark.parametrize("command", [
    ["predict", "--run", "RUN", "V.mp4"],
    ["serve", "--run", "RUN"],
    ["profile", "--pool", "P.toml", "--out", "o.toml", "--random-weights"],
    ["extract", "--pool", "P.toml", "--manifest", "m.csv", "--out", "S"],
])
@pytest.mark.parametrize("flags, says", [
    (["--precision", "fp16"], "--precision fp16: float16 autocast needs a CUDA device"),
    (["--device", "gpu0"], "--device 'gpu0': expected cpu, cuda or cuda:N"),
])
def test_every_command_refuses_a_bad_combination_with_one_line_exit_2(command, flags, says, capsys):
    code = main([*command, *flags])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and says in err, err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the no-CUDA error cannot happen")
@pytest.mark.parametrize("command", [["predict", "--run", "RUN", "V.mp4"], ["serve", "--run", "RUN"],
                                     ["profile", "--pool", "P.toml", "--out", "o.toml"]])
def test_cuda_without_cuda_exits_2_naming_the_flag(command, capsys):
    assert main([*command, "--device", "cuda"]) == 2
    assert "--device cuda: CUDA is not available" in capsys.readouterr().err


def _reference_entries() -> list:
    manifest = SHARED_DATA / "zoo_reference" / "manifest.json"
    if not manifest.is_file():
        return [pytest.param(None, id="zoo_reference-absent")]
    return [pytest.param(e, id=e["model"]) for e in json.loads(manifest.read_text())]


@pytest.mark.parametrize("entry", _reference_entries())
def test_bf16_autocast_on_the_reference_inputs_stays_within_tolerance(entry):
    folder = shared_data("zoo_reference/manifest.json").parent
    io = np.load(folder / entry["io"])
    model = models.create_model(entry["model"], checkpoint=folder / entry["checkpoint"]).eval()
    x = torch.from_numpy(io["input"])
    with torch.inference_mode():
        fp32 = model(x).numpy()
        with BF16.autocast():
            bf16 = model(x).float().numpy()
    np.testing.assert_allclose(fp32, io["logits"], rtol=1e-5, atol=1e-4)  # fp32 is the official arithmetic
    _assert_close_in_bf16(fp32, bf16, entry["model"])


def test_bf16_member_scores_on_the_fixture_videos_stay_within_tolerance():
    """Every synthetic member through member_scores (views, normalisation, view aggregation) on the real fixtures."""
    torch.manual_seed(0)
    nets = build_pool(SYNTHETIC_POOL, random_weights=True)
    for path in FIXTURE_VIDEOS:
        video = decode_video(path, short_side=SYNTHETIC_POOL.decode_short_side)
        for member in SYNTHETIC_POOL.members:
            views = member_views(video, member.clip)
            fp32 = member_scores(member, nets[member.name], views, "softmax", features=True)
            bf16 = member_scores(member, nets[member.name], views, "softmax", features=True, placement=BF16)
            assert bf16.logits.dtype == np.float32 and bf16.features.dtype == np.float32  # scores come back in fp32
            _assert_close_in_bf16(fp32.views, bf16.views, f"{member.name} on {path.name}")
            np.testing.assert_allclose(np.exp(bf16.logits), np.exp(fp32.logits), atol=0.01)  # mean softmax


def test_the_store_records_reduced_precision_and_keeps_fp32_identities():
    assert "precision" not in ExtractSettings().recorded()  # stores made before --precision (all fp32) still resume
    assert ExtractSettings(precision="bf16").recorded()["precision"] == "bf16"
    with pytest.raises(ValueError, match="precision"):
        ExtractSettings(precision="int8")


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A run whose backbone is trained (so its choices mean something) on 60 synthetic videos; 60 more held out."""
    root = tmp_path_factory.mktemp("precision")
    nets, data, videos = synthetic_pool_videos(root, 120)
    backbone = SYNTHETIC_POOL.member(SYNTHETIC_POOL.backbone)
    nets[backbone.name] = train_member(backbone, videos[:60], data.labels[:60], TrainConfig(epochs=6))
    table = pool_table(list(SYNTHETIC_POOL.members), nets, videos[:60], [p.name for p in data.paths[:60]], data.labels[:60],
                       list(CLASS_NAMES))
    policy = SelectorPolicy(backbone=backbone.name, selector_input="probs", hidden=(16,), epochs=3).fit(table)
    run_dir = save_run(root / "run", SYNTHETIC_POOL, policy, list(CLASS_NAMES), 0.5, policy.sweep(table), "logits", models=nets)
    return run_dir, list(data.paths[60:])


@pytest.mark.slow
def test_bf16_routing_agrees_with_fp32_on_held_out_videos(trained_run):
    run_dir, held_out = trained_run
    fp32, bf16 = load_run(run_dir), load_run(run_dir, placement=BF16)
    decisions = [(predict_video(fp32, p, t), predict_video(bf16, p, t)) for p in held_out for t in (0.3, 0.5, 0.7)]
    agree = np.mean([a.members == b.members for a, b in decisions])
    assert agree >= ROUTING_AGREEMENT, f"bf16 routed {1 - agree:.1%} of decisions differently"
    assert max(abs(a.score - b.score) for a, b in decisions if a.members == b.members) < 0.01
    assert len({tuple(a.members) for a, _ in decisions}) >= 2, "the thresholds should route videos to different members"
    answer, plain = decisions[0][1].to_dict(), decisions[0][0].to_dict()
    assert answer["precision"] == "bf16" and "precision" not in plain  # fp32 answers are today's, unchanged


@pytest.mark.slow
def test_predict_says_its_precision(trained_run, capsys):
    run_dir, held_out = trained_run
    assert main(["predict", "--run", str(run_dir), "--precision", "bf16", "--json", str(held_out[0])]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert result["precision"] == "bf16"
    assert main(["predict", "--run", str(run_dir), "--precision", "bf16", "--device", "cpu", str(held_out[0])]) == 0
    assert "forward passes in bf16 (autocast) on cpu" in capsys.readouterr().out


@pytest.mark.slow
def test_extract_in_bf16_records_it_and_resumes_only_at_bf16(tmp_path, capsys):
    data = generate(tmp_path / "videos", 3, seed=2)
    pool = write_pool_config(SYNTHETIC_POOL, tmp_path / "pool.toml")
    (tmp_path / "classes.txt").write_text("".join(f"{c}\n" for c in CLASS_NAMES))
    stores = {}
    for precision in ("fp32", "bf16"):
        stores[precision] = tmp_path / f"store_{precision}"
        argv = ["extract", "--pool", str(pool), "--classes", str(tmp_path / "classes.txt"), "--manifest", str(data.root / "manifest.csv"),
                "--out", str(stores[precision]), "--random-weights", "--workers", "0", "--no-progress", "--device", "cpu"]
        torch.manual_seed(0)
        assert main([*argv, "--precision", precision]) == 0
    settings = {p: json.loads((s / "store.json").read_text())["settings"] for p, s in stores.items()}
    assert "precision" not in settings["fp32"] and settings["bf16"]["precision"] == "bf16"
    fp32, bf16 = load_store(stores["fp32"]), load_store(stores["bf16"])
    for name in SYNTHETIC_POOL.names:
        _assert_close_in_bf16(fp32.logits[name], bf16.logits[name], f"stored {name}")
    capsys.readouterr()
    assert main([*argv, "--precision", "fp32"]) == 2  # argv writes into the bf16 store, which fp32 may not resume
    assert "different pool or different settings" in capsys.readouterr().err
