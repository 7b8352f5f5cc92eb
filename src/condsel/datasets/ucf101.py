"""UCF101: the published per-video scores, their sample groups and the models' derived costs.

Published files (read from ``../shared/data`` or wherever a user keeps them):

- ``ucf101_scores/``: five DMC-Net / CoViAR models (facebookresearch/dmc-net,
  MIT): ``mv``, ``residual``, ``flow``, ``gen_flow``, ``iframe``;
- ``ucf101_more/seqvlad/``: SeqVLAD on BN-Inception, RGB and flow
  (youjiangxu/seqvlad-pytorch, BSD-2), scores in list order;
- ``ucf101_more/idt/``: IDT + Fisher vectors (gulvarol/ltc, MIT).

Shipped with the package: ``ucf101_split1.npz``, a float16 copy of the five
DMC-Net models' scores on the 3,783 test videos of split 1 (see
``data/ATTRIBUTION.md``). float16 keeps ~3 significant digits of each score:
the arg-max moves only for a few near-tied videos and each model's top-1
stays within one video of the original (checked in the tests).

Costs, in GFLOPs per video (multiply-adds, :data:`~condsel.models.costs.FLOP_CONVENTION`),
are counted with the project's FLOP counter on each model's architecture at
224x224, 25 segments x 1 centre crop, as the authors tested them:

- ``mv`` / ``flow``: ResNet-18 on 2-channel motion vectors / TV-L1 flow;
  ``residual``: ResNet-18 on 3-channel residuals; ``iframe``: ResNet-152;
- ``gen_flow``: DMC-Net's generator (:class:`~condsel.models.dmcnet.DenseTinyFlowGenerator`)
  followed by the flow ResNet-18;
- ``seqvlad_rgb`` / ``seqvlad_flow``: :class:`~condsel.models.seqvlad.SeqVLAD`,
  BN-Inception on 25 frames (3 channels) or 25 stacks of 5 flow pairs (10
  channels) plus the SeqVLAD aggregation and classifier.

Left out, as the field does: compressed-domain decoding (motion vectors,
residuals, I-frames), TV-L1 optical flow, normalisation and element-wise ops.
``idt`` (dense trajectories + Fisher vectors) is CPU feature extraction with
no network to count: a pool with it needs a user-given cost.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from condsel.models import get_spec
from condsel.models.costs import count_gflops
from condsel.models.dmcnet import DenseTinyFlowGenerator
from condsel.models.seqvlad import SeqVLAD
from condsel.selection.data.importers import ModelScores, join_scores, read_scores
from condsel.selection.data.importers.named import video_name_parts
from condsel.selection.data.table import PredictionTable

SEGMENTS = 25
CROP = 224
NUM_CLASSES = 101
UCF101_BACKBONE = "mv"  # the cheapest real input: motion vectors straight from the compressed stream
UCF101_DATA = ("UCF101 split 1: published per-video scores of five real models (DMC-Net/CoViAR), "
               "costs derived from their architectures")

UCF101_MODELS = ("mv", "residual", "gen_flow", "flow", "iframe")  # DMC-Net / CoViAR
UCF101_POOL7 = UCF101_MODELS + ("seqvlad_rgb", "seqvlad_flow")  # + SeqVLAD on BN-Inception (ucf101_more/)
UCF101_KEYS = UCF101_POOL7 + ("idt",)  # every published UCF101 model; idt has no derivable cost


def ucf101_score_files(directory: str | Path, split: int) -> dict[str, Path]:
    """The published score file of each model for one split, by model key."""
    directory = Path(directory)
    names = {
        "mv": f"ucf101_coviar__ucf101_mv__split{split}__mv_score_model_best.npz",
        "residual": f"ucf101_coviar__ucf101_residual__split{split}__residual_score_model_best.npz",
        "iframe": f"ucf101_coviar__ucf101_iframe__split{split}__iframe_score_model_best.npz",
        "flow": f"ucf101_coviar__ucf101_flow__split{split}__flow_score_model_best.npz",
        "gen_flow": f"ucf101_gen_flow__split{split}__mv_score_model_best.npz",
    }
    files = {model: directory / name for model, name in names.items()}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise ValueError(f"missing UCF101 score files: {missing}")
    return files


def ucf101_more_sources(directory: str | Path, split: int) -> dict[str, str]:
    """Score sources of the SeqVLAD and IDT models in ``ucf101_more/`` for one split, by model key.

    SeqVLAD files hold no names: their source is ``SCORES:LIST`` (scores in
    list order). IDT has no network cost: a pool with it needs a user-given cost.
    """
    directory = Path(directory)
    sources = {
        "seqvlad_rgb": (directory / "seqvlad" / f"ucf101_rgb_split{split}.npz", directory / "seqvlad" / f"rgb_test_split{split}.txt"),
        "seqvlad_flow": (directory / "seqvlad" / f"ucf101_flow_split{split}.npz", directory / "seqvlad" / f"flow_test_split{split}.txt"),
        "idt": (directory / "idt" / f"ucf_idt_split{split}.mat",),
    }
    missing = [str(p) for files in sources.values() for p in files if not p.is_file()]
    if missing:
        raise ValueError(f"missing UCF101 score files: {missing}")
    return {model: ":".join(str(p) for p in files) for model, files in sources.items()}


def load_ucf101_pool(data_dir: str | Path, split: int, models: tuple[str, ...] = UCF101_POOL7) -> PredictionTable:
    """Join the published UCF101 scores of ``models`` for one split (no costs attached).

    Parameters
    ----------
    data_dir
        The folder holding ``ucf101_scores/`` and ``ucf101_more/`` (``../shared/data``).
    split
        Official split, 1-3.
    models
        Keys among :data:`UCF101_MODELS`, ``seqvlad_rgb``, ``seqvlad_flow``, ``idt``;
        default the 7-network pool.

    Examples
    --------
    >>> table = load_ucf101_pool("../shared/data", split=1)  # doctest: +SKIP
    >>> table = table.with_costs(ucf101_costs(table.logits)[0])  # doctest: +SKIP
    """
    data_dir = Path(data_dir)
    sources = {**ucf101_score_files(data_dir / "ucf101_scores", split), **ucf101_more_sources(data_dir / "ucf101_more", split)}
    unknown = sorted(set(models) - set(sources))
    if unknown:
        raise ValueError(f"unknown UCF101 model keys {unknown}; known: {sorted(sources)}")
    return ucf101_join({m: read_scores(sources[m]) for m in models})


BUNDLED_SCORES = "UCF101 split 1 test videos, published DMC-Net/CoViAR scores (bundled float16 copy)"


def load_ucf101_split1() -> PredictionTable:
    """The bundled UCF101 split-1 table (costs not attached; see :func:`ucf101_costs`)."""
    with resources.as_file(resources.files("condsel") / "data" / "ucf101_split1.npz") as path:
        return PredictionTable.load(path)


def ucf101_groups(names: np.ndarray) -> np.ndarray | None:
    """UCF101 clips of one group are cut from one long video; keep them in one fold.

    Returns None unless every name follows UCF101's ``v_<Class>_gXX_cYY`` pattern.
    """
    matches = [video_name_parts(n) for n in names]
    if any(m is None for m in matches):
        return None
    return np.asarray([f"{m['cls']}_g{m['group']}" for m in matches])


def ucf101_join(per_model: dict[str, ModelScores]) -> PredictionTable:
    """:func:`join_scores` with UCF101's groups when the first file's names follow UCF101's pattern."""
    first = next(iter(per_model.values()), None)
    return join_scores(per_model, groups=None if first is None else ucf101_groups(first.names))


def ucf101_table() -> PredictionTable:
    """The bundled split-1 table with its derived costs: the default input of the analyses."""
    return load_ucf101_split1().with_costs(ucf101_costs()[0])


def _frame_cost(network: torch.nn.Module, channels: int) -> float:
    return count_gflops(network, torch.empty(1, channels, CROP, CROP, device="meta"))


def _resnet_frame(depth_name: str, channels: int) -> float:
    spec = get_spec(depth_name)
    with torch.device("meta"):
        net = spec.build(num_classes=NUM_CLASSES, in_channels=channels)
    # the zoo's 2D models take (B, C, T, H, W); one frame is T = 1
    return count_gflops(net, torch.empty(1, channels, 1, CROP, CROP, device="meta"))


def _seqvlad_video(channels: int) -> float:
    with torch.device("meta"):
        net = SeqVLAD(num_classes=NUM_CLASSES, in_channels=channels)
    return count_gflops(net, torch.empty(1, channels, SEGMENTS, CROP, CROP, device="meta"))


def ucf101_costs(models: Iterable[str] = UCF101_MODELS) -> tuple[dict[str, float], list[str]]:
    """GFLOPs per video of UCF101 models, and the lines of the derivation.

    Parameters
    ----------
    models
        Keys among :data:`UCF101_KEYS`; default the five DMC-Net / CoViAR models.
        ``idt`` gets no cost, only a line saying it must be given.

    Returns
    -------
    costs
        GFLOPs per video of each derivable model in ``models``.
    lines
        How each figure was counted and what is left out, for printing beside results.

    Examples
    --------
    >>> costs, lines = ucf101_costs(["mv", "seqvlad_rgb"])
    >>> round(costs["mv"], 2), round(costs["seqvlad_rgb"], 2)
    (44.36, 51.65)
    """
    models = list(dict.fromkeys(models))
    unknown = sorted(set(models) - set(UCF101_KEYS))
    if unknown:
        raise ValueError(f"no derived UCF101 cost for {unknown}; known keys: {list(UCF101_KEYS)}")
    costs, lines = _dmcnet_costs([m for m in models if m in UCF101_MODELS])
    for name, channels, what in (("seqvlad_rgb", 3, "RGB frames"), ("seqvlad_flow", 10, "stacks of 5 flow pairs")):
        if name in models:
            costs[name] = _seqvlad_video(channels)
            lines.append(f"{name}: BN-Inception on {SEGMENTS} {what} ({channels} channels) + SeqVLAD aggregation "
                         f"(64 centres, 512 dims) + classifier = {costs[name]:.2f} GFLOPs/video")
    flows = [m for m in ("flow", "seqvlad_flow") if m in models]
    lines.append("not counted: compressed-domain decoding, element-wise ops"
                 + (f", the TV-L1 optical flow read by {', '.join(flows)}" if flows else ""))
    if "idt" in models:
        lines.append("idt: dense trajectories + Fisher vectors on the CPU, no network cost to derive: give it with --costs")
    return costs, lines


def _dmcnet_costs(models: list[str]) -> tuple[dict[str, float], list[str]]:
    if not models:
        return {}, []
    with torch.device("meta"):
        generator = DenseTinyFlowGenerator()
    per_frame = {
        "resnet18, 2-channel input": _resnet_frame("resnet18", 2),
        "resnet18, 3-channel input": _resnet_frame("resnet18", 3),
        "resnet152, 3-channel input": _resnet_frame("resnet152", 3),
        "DMC-Net DenseNetTiny generator, 5 -> 2 channels": _frame_cost(generator, 5),
    }
    r18_2, r18_3, r152, gen = per_frame.values()
    per_segment = {"mv": r18_2, "residual": r18_3, "flow": r18_2, "gen_flow": gen + r18_2, "iframe": r152}
    costs = {name: SEGMENTS * per_segment[name] for name in models}
    lines = [f"per 224x224 frame: {name} = {g:.4f} GFLOPs" for name, g in per_frame.items()]
    lines += [f"{name}: {per_segment[name]:.4f} GFLOPs/segment x {SEGMENTS} segments = {costs[name]:.2f} GFLOPs/video"
              for name in costs]
    return costs, lines
