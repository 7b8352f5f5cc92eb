"""Fig. 5: the clip selector's sensitivity to beta and to soft vs pure pseudo-labels, and the disparity.

The two W-TALC streams are trained once; for every beta (the share of each
training video's clips labelled "motion") and both label variants (the soft
affinity G = Q (|D - tau| + 1) and the pure pseudo-labels G = Q) only the
selector is retrained and its threshold swept, with random clip selection at
the same motion shares as the reference. Everything else (costs, fusion,
scoring) is the ``condsel.localization.pipeline`` protocol. Fig. 5a's
histogram is the normalized disparity of the *training* clips, the quantity
the labels are cut from, split by whether a clip overlaps a ground-truth
segment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, replace

import numpy as np
import torch

from condsel.models.costs import count_gflops
from condsel.datasets.thumos import GroundTruth
from condsel.localization.detection_map import parse_tiou
from condsel.localization.disparity import disparity
from condsel.localization.features import TwoStreamFeatures
from condsel.localization.pipeline import (
    SYNTHETIC_WTALC,
    BackboneCosts,
    ClipCosts,
    HeldOutScorer,
    SelectionSettings,
    above_fraction,
    clip_foreground,
    selection_curves,
    selection_targets,
    train_streams,
    zoo_costs,
)
from condsel.localization.proposals import ProposalConfig
from condsel.localization.synthetic import make_benchmark
from condsel.localization.wtalc import WTALCConfig
from condsel.pool.latency import torch_threads
from condsel.selection.method.network import Selector

DEFAULT_BETAS = (0.1, 0.3, 0.5)
VARIANTS = {"soft": True, "pseudo-labels": False}


def disparity_histogram(d: np.ndarray, foreground: np.ndarray, bins: int = 20) -> dict:
    """Counts of clip disparity in uniform bins on [0, 1], for foreground and background clips."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    return {
        "edges": edges.tolist(),
        "foreground": np.histogram(d[foreground], edges)[0].tolist(),
        "background": np.histogram(d[~foreground], edges)[0].tolist(),
        "foreground_mean": float(d[foreground].mean()) if foreground.any() else None,
        "background_mean": float(d[~foreground].mean()) if (~foreground).any() else None,
    }


def beta_sweep_synthetic(
    betas: Sequence[float] = DEFAULT_BETAS,
    seed: int = 0,
    settings: SelectionSettings = SelectionSettings(standardize=True),
    progress: bool = False,
    pseudo_label_betas: Sequence[float] | None = None,
) -> dict:
    """The sweep on the synthetic untrimmed benchmark, with the demo's W-TALC settings and costs."""
    bench = make_benchmark(seed)
    train = TwoStreamFeatures(bench.train.names, bench.train.rgb, bench.train.motion)
    test = TwoStreamFeatures(bench.test.names, bench.test.rgb, bench.test.motion)
    out = beta_sweep(train, test, bench.gt, bench.config.clip_seconds, betas, seed, settings, progress,
                     wtalc=SYNTHETIC_WTALC, pseudo_label_betas=pseudo_label_betas)
    out["data"] = "SYNTHETIC untrimmed benchmark (condsel.localization.synthetic), not real video"
    return out


def beta_sweep(
    train: TwoStreamFeatures,
    test: TwoStreamFeatures,
    gt: GroundTruth,
    clip_seconds: float,
    betas: Sequence[float],
    seed: int,
    settings: SelectionSettings,
    progress: bool = False,
    tiou: str = "0.1:0.7:0.1",
    costs: BackboneCosts | None = None,
    wtalc: WTALCConfig = WTALCConfig(),
    pseudo_label_betas: Sequence[float] | None = None,
) -> dict:
    """Selector and random curves (mAP % vs GFLOPs/clip) per beta and label variant; streams trained once.

    ``costs`` default to the demo's pool (X3D-M on RGB, I3D on flow, per clip).

    The soft affinity runs at every beta, the pure pseudo-labels at
    ``pseudo_label_betas`` (default: every beta).
    """
    if not betas:
        raise ValueError("give at least one beta")
    pseudo_label_betas = betas if pseudo_label_betas is None else pseudo_label_betas
    costs = costs or zoo_costs("x3d_m", "i3d_flow")
    labels = gt.label_matrix(train.names)
    grid = [(b, "soft") for b in betas] + [(b, "pseudo-labels") for b in pseudo_label_betas]
    with torch_threads(1):
        streams = train_streams(train, test, labels, wtalc, settings.standardize, seed, progress)
        heads = {s: count_gflops(h, torch.zeros(1, 1, h.embed.in_features)) for s, h in streams.heads.items()}
        test_gt = GroundTruth(gt.classes, {n: gt.videos[n] for n in test.names}, gt.source)
        scorer = HeldOutScorer(test_gt, test.names, clip_seconds, parse_tiou(tiou), ProposalConfig(),
                               streams.test_cas["rgb"], streams.test_cas["motion"], settings.fusion)
        runs = []
        for beta, variant in grid:
            g = selection_targets(streams.train_cas["rgb"], streams.train_cas["motion"], labels, beta, VARIANTS[variant])
            selector = Selector(seed=seed).fit(np.concatenate(train.rgb), g)
            proba = [selector.predict_proba(x) for x in test.rgb]
            clip_costs = ClipCosts(costs.rgb + heads["rgb"], costs.motion + heads["motion"], selector.gflops())
            point_settings = replace(settings, beta=beta, soft=VARIANTS[variant])
            sel, rnd = selection_curves(proba, scorer, clip_costs, point_settings, seed, progress)
            curves = [np.array([p[k] for p in curve]) for curve in (sel, rnd) for k in ("gflops", "map")]
            runs.append({
                "beta": float(beta), "variant": variant, "selector": sel, "random": rnd,
                "motion_label_share": float((g.argmax(axis=1) == 1).mean()),
                "selector_above_random_fraction": above_fraction(*curves),
            })
        streams_map = {
            name: {"gflops": backbone + heads[name], "map": float(scorer.score(cas)[1].mean())}
            for name, backbone, cas in (("rgb", costs.rgb, scorer.rgb_cas), ("motion", costs.motion, scorer.motion_cas))
        }
    d = np.concatenate([disparity(a, m, np.flatnonzero(y)) for a, m, y in
                        zip(streams.train_cas["rgb"], streams.train_cas["motion"], labels)])
    fg = np.concatenate([clip_foreground(len(x), gt.videos[v].segments, clip_seconds)
                         for x, v in zip(train.rgb, train.names)])
    return {
        "runs": runs,
        "streams": streams_map,
        "disparity": disparity_histogram(d, fg),
        "settings": {
            "betas": [float(b) for b in betas], "pseudo_label_betas": [float(b) for b in pseudo_label_betas],
            "seed": seed, "fusion": settings.fusion, "tiou": tiou, "points": settings.points,
            "random_seeds": settings.random_seeds, "wtalc": asdict(wtalc),
            "costs": {"rgb_model": costs.rgb_model, "motion_model": costs.motion_model},
        },
    }
