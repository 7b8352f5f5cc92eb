"""Train two W-TALC streams and a clip selector; trace detection mAP against GFLOPs per clip.

Used by ``condsel localize`` (real per-clip features) and ``condsel demo``
(the synthetic benchmark). Steps:

1. one W-TALC head per stream on the training videos (video-level labels only);
2. the heads' CAS on the training videos give the clip affinity G (disparity.py);
3. the selector (``condsel.selection.method.network.Selector``) learns G from the RGB stream's clip
   features: the RGB backbone always runs, so its features are free at inference;
4. on the test videos, threshold t routes a clip to the motion stream when the
   selector's P(rgb) < t (``condsel.selection.method.curves.choose_models``: the cheapest model whose
   confidence reaches t). Where motion runs, the clip's CAS fuses both streams'
   (``fusion``: by default their per-class minimum, so both streams must agree and
   motion vetoes what appearance alone fires on; or their mean); elsewhere it is the
   RGB CAS. "both" fuses every clip. Sweeping t traces mAP against GFLOPs per clip =
   RGB backbone + RGB head + selector + share of motion clips x (motion backbone + head);
5. random selection sends the same number of clips to motion, drawn uniformly
   over all test clips, for several seeds.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from condsel._progress import progress_bar

from condsel.models.costs import FLOP_CONVENTION, count_gflops
from condsel.selection.method.curves import choose_models, curve_at
from condsel.localization import plots
from condsel.datasets.thumos import GroundTruth
from condsel.localization.detection_map import (
    Detections,
    detection_map,
    parse_tiou,
    write_results,
)
from condsel.localization.disparity import affinity, disparity
from condsel.localization.features import TwoStreamFeatures, load_two_streams
from condsel.localization.proposals import ProposalConfig, localize
from condsel.localization.synthetic import make_benchmark
from condsel.localization.wtalc import (
    WTALCConfig,
    WTALCHead,
    class_activations,
    train_wtalc,
)
from condsel.models import gflops
from condsel.selection.method.network import Selector
from condsel._io import torch_threads, write_json

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SelectionSettings:
    beta: float = 0.3  # share of each training video's clips labelled "motion" (by disparity)
    soft: bool = True  # G = Q (|D - tau| + 1); False: the pure pseudo-labels G = Q
    points: int = 21  # operating points: motion shares 0, 1/(points-1), ..., 1
    random_seeds: int = 5
    standardize: bool = False  # z-score each stream's features with training statistics
    fusion: str = "min"  # how clips where motion runs combine both CAS: "min" or "mean"
    threshold: float = 0.5  # operating point whose detections and timeline are written


@dataclass(frozen=True)
class BackboneCosts:
    rgb: float  # GFLOPs per clip of the appearance backbone
    motion: float  # GFLOPs per clip of the optical-flow backbone
    rgb_model: str = ""
    motion_model: str = ""


def zoo_costs(rgb_model: str, motion_model: str) -> BackboneCosts:
    """Per-clip GFLOPs of two zoo models at their default clip, counted from their graphs."""
    return BackboneCosts(gflops(rgb_model), gflops(motion_model), rgb_model, motion_model)


FUSIONS = {"min": np.minimum, "mean": lambda a, b: 0.5 * (a + b)}


def fuse(cas_rgb: np.ndarray, cas_motion: np.ndarray, use_motion: np.ndarray, fusion: str = "min") -> np.ndarray:
    """Both streams' CAS fused on the clips where motion runs, the RGB CAS elsewhere."""
    return np.where(use_motion[:, None], FUSIONS[fusion](cas_rgb, cas_motion), cas_rgb)


def clip_foreground(clips: int, segments: np.ndarray, clip_seconds: float) -> np.ndarray:
    """(T,) bool: clip t = [t, t+1) x clip_seconds overlaps a segment."""
    start = np.arange(clips) * clip_seconds
    if len(segments) == 0:
        return np.zeros(clips, dtype=bool)
    return ((segments[None, :, 0] < start[:, None] + clip_seconds) & (segments[None, :, 1] > start[:, None])).any(axis=1)


def _standardizer(train: Sequence[np.ndarray], enabled: bool):
    if not enabled:
        return lambda xs: list(xs)
    stacked = np.concatenate(train)
    mean, scale = stacked.mean(axis=0), stacked.std(axis=0) + 1e-6
    return lambda xs: [((x - mean) / scale).astype(np.float32) for x in xs]


@dataclass
class StreamOutputs:
    """CAS of both streams on the training and test videos, and the trained pieces."""

    heads: dict[str, WTALCHead]
    train_cas: dict[str, list[np.ndarray]]
    test_cas: dict[str, list[np.ndarray]]
    train_seconds: dict[str, float] = field(default_factory=dict)


def train_streams(
    train: TwoStreamFeatures, test: TwoStreamFeatures, labels: np.ndarray, wtalc: WTALCConfig,
    standardize: bool, seed: int, progress: bool,
) -> StreamOutputs:
    out = StreamOutputs({}, {}, {})
    for stream in ("rgb", "motion"):
        prepare = _standardizer(getattr(train, stream), standardize)
        x_train, x_test = prepare(getattr(train, stream)), prepare(getattr(test, stream))
        start = time.perf_counter()
        head = train_wtalc(x_train, labels, wtalc, seed=seed, progress=progress, desc=f"W-TALC {stream}")
        out.train_seconds[stream] = time.perf_counter() - start
        out.heads[stream] = head
        out.train_cas[stream] = class_activations(head, x_train)
        out.test_cas[stream] = class_activations(head, x_test)
    return out


def selection_targets(cas_rgb: list[np.ndarray], cas_motion: list[np.ndarray], labels: np.ndarray,
                      beta: float, soft: bool) -> np.ndarray:
    """Stacked (sum of T, 2) affinity G of the training clips, from each video's labelled classes."""
    return np.concatenate([affinity(disparity(a, m, np.flatnonzero(y)), beta, soft)
                           for a, m, y in zip(cas_rgb, cas_motion, labels)])


def share_thresholds(p_rgb: np.ndarray, points: int) -> np.ndarray:
    """Thresholds t (ascending) under which P(rgb) < t sends about 0, 1/(n-1), ..., all clips to motion."""
    inner = np.quantile(p_rgb, np.linspace(0, 1, points)[1:-1], method="higher")
    return np.concatenate([[0.0], inner, [np.nextafter(p_rgb.max(), np.inf)]])


def above_fraction(sel_gflops, sel_map, rnd_gflops, rnd_map, grid_points: int = 1001) -> float:
    """Share of the GFLOPs range both curves span where the selector's mAP is strictly above random's."""
    lo = max(sel_gflops[0], rnd_gflops[0])
    hi = min(sel_gflops[-1], rnd_gflops[-1])
    if hi <= lo:
        return 0.0
    grid = np.linspace(lo, hi, grid_points)
    return float(np.mean(curve_at(sel_gflops, sel_map, grid) > curve_at(rnd_gflops, rnd_map, grid)))


@dataclass(frozen=True)
class ClipCosts:
    """GFLOPs per clip: each stream's backbone + W-TALC head, and the selector."""

    rgb: float
    motion: float
    selector: float

    def selected(self, motion_share: float) -> float:
        return self.rgb + self.selector + motion_share * self.motion

    def random(self, motion_share: float) -> float:
        return self.rgb + motion_share * self.motion


@dataclass(frozen=True)
class HeldOutScorer:
    """Detections and per-tIoU mAP (percent) of a CAS per test video."""

    gt: GroundTruth  # the test videos only
    names: list[str]
    clip_seconds: float
    tiou: np.ndarray
    proposals: ProposalConfig
    rgb_cas: list[np.ndarray]
    motion_cas: list[np.ndarray]
    fusion: str = "min"

    def score(self, cas: Sequence[np.ndarray]) -> tuple[Detections, np.ndarray]:
        dets = localize(cas, self.names, self.gt.classes, self.clip_seconds, self.proposals)
        return dets, detection_map(self.gt, dets, self.tiou).map

    def routed(self, use_motion: Sequence[np.ndarray]) -> tuple[Detections, np.ndarray]:
        """Motion runs on the clips flagged in ``use_motion`` (one (T,) mask per video)."""
        return self.score([fuse(a, m, k, self.fusion) for a, m, k in zip(self.rgb_cas, self.motion_cas, use_motion)])


def selection_curves(
    proba: list[np.ndarray], scorer: HeldOutScorer, costs: ClipCosts, settings: SelectionSettings, seed: int, progress: bool,
) -> tuple[list[dict], list[dict]]:
    """The selector's threshold sweep, and random selection of as many clips at each point."""
    lengths = [len(p) for p in proba]
    splits = np.cumsum(lengths)[:-1]
    p_rgb = np.concatenate([p[:, 0] for p in proba])
    rng = np.random.default_rng(seed)
    orders = [rng.permutation(len(p_rgb)) for _ in range(settings.random_seeds)]
    selector_curve, random_curve = [], []
    for t in progress_bar(share_thresholds(p_rgb, settings.points), desc="operating points", disable=not progress, leave=False):
        chosen = np.concatenate([choose_models(p, t) for p in proba]) == 1
        share = float(chosen.mean())
        sel_map = scorer.routed(np.split(chosen, splits))[1]
        selector_curve.append({"threshold": float(t), "motion_share": share, "gflops": costs.selected(share),
                               "map": float(sel_map.mean()), "map_per_tiou": sel_map.tolist()})
        runs = []
        for order in orders:
            mask = np.zeros(len(p_rgb), dtype=bool)
            mask[order[: int(chosen.sum())]] = True
            runs.append(scorer.routed(np.split(mask, splits))[1].mean())
        random_curve.append({"motion_share": share, "gflops": costs.random(share),
                             "map": float(np.mean(runs)), "map_std": float(np.std(runs))})
    return selector_curve, random_curve


@dataclass
class LocalizationRun:
    summary: dict
    detections: dict[str, Detections]
    disparity: np.ndarray  # test clips, computed with the GT video labels
    foreground: np.ndarray  # test clips overlapping a GT segment
    timeline: dict


def _timeline(gt: GroundTruth, scorer: HeldOutScorer, use_motion: list[np.ndarray]) -> dict:
    """The first test video with segments of a single class (else with any segment), for its first class."""
    has = [bool(gt.videos[v].labels) for v in scorer.names]
    single = [h and len(set(gt.videos[v].labels)) == 1 for h, v in zip(has, scorer.names)]
    pick = single.index(True) if any(single) else (has.index(True) if any(has) else 0)
    video = gt.videos[scorer.names[pick]]
    label = video.video_labels[0] if video.video_labels else gt.classes[0]
    c = gt.class_index[label]
    return {"video": scorer.names[pick], "segments": video.segments[np.asarray(video.labels, dtype=object) == label],
            "cas_rgb": scorer.rgb_cas[pick][:, c], "cas_motion": scorer.motion_cas[pick][:, c],
            "use_motion": use_motion[pick], "class_name": label}


def run_localization(
    train: TwoStreamFeatures,
    test: TwoStreamFeatures,
    gt: GroundTruth,
    clip_seconds: float,
    tiou: np.ndarray,
    costs: BackboneCosts,
    wtalc: WTALCConfig = WTALCConfig(),
    proposals: ProposalConfig = ProposalConfig(),
    settings: SelectionSettings = SelectionSettings(),
    seed: int = 0,
    progress: bool = False,
) -> LocalizationRun:
    """The whole §3.3 protocol on features already loaded; ``gt`` covers both splits."""
    if settings.fusion not in FUSIONS:
        raise ValueError(f"fusion {settings.fusion!r}: choose one of {sorted(FUSIONS)}")
    labels = gt.label_matrix(train.names)
    streams = train_streams(train, test, labels, wtalc, settings.standardize, seed, progress)
    g = selection_targets(streams.train_cas["rgb"], streams.train_cas["motion"], labels, settings.beta, settings.soft)
    selector = Selector(seed=seed).fit(np.concatenate(train.rgb), g)
    proba = [selector.predict_proba(x) for x in test.rgb]

    test_gt = GroundTruth(gt.classes, {n: gt.videos[n] for n in test.names}, gt.source)
    scorer = HeldOutScorer(test_gt, test.names, clip_seconds, tiou, proposals,
                           streams.test_cas["rgb"], streams.test_cas["motion"], settings.fusion)
    head_cost = {s: count_gflops(h, torch.zeros(1, 1, h.embed.in_features)) for s, h in streams.heads.items()}
    clip_costs = ClipCosts(costs.rgb + head_cost["rgb"], costs.motion + head_cost["motion"], selector.gflops())

    detections, stream_maps = {}, {}
    detections["rgb"], stream_maps["rgb"] = scorer.score(scorer.rgb_cas)
    detections["motion"], stream_maps["motion"] = scorer.score(scorer.motion_cas)
    detections["both"], stream_maps["both"] = scorer.routed([np.ones(len(x), dtype=bool) for x in test.rgb])
    stream_cost = {"rgb": clip_costs.rgb, "motion": clip_costs.motion, "both": clip_costs.rgb + clip_costs.motion}
    for name, m in stream_maps.items():
        log.info("%s: average mAP %.2f%% at %.2f GFLOPs per clip", name, m.mean(), stream_cost[name])

    selector_curve, random_curve = selection_curves(proba, scorer, clip_costs, settings, seed, progress)
    operating = [choose_models(p, settings.threshold) == 1 for p in proba]
    detections["selector"] = scorer.routed(operating)[0]
    fraction = above_fraction(
        np.array([p["gflops"] for p in selector_curve]), np.array([p["map"] for p in selector_curve]),
        np.array([p["gflops"] for p in random_curve]), np.array([p["map"] for p in random_curve]),
    )
    test_labels = gt.label_matrix(test.names)
    d_test = [disparity(a, m, np.flatnonzero(y)) if y.any() else np.zeros(len(a))
              for a, m, y in zip(scorer.rgb_cas, scorer.motion_cas, test_labels)]
    foreground = [clip_foreground(len(x), gt.videos[v].segments, clip_seconds) for x, v in zip(test.rgb, test.names)]
    summary = {
        "tiou": [round(float(t), 10) for t in tiou],
        "flop_convention": FLOP_CONVENTION,
        "costs": {
            "rgb_backbone": costs.rgb, "rgb_model": costs.rgb_model,
            "motion_backbone": costs.motion, "motion_model": costs.motion_model,
            "rgb_head": head_cost["rgb"], "motion_head": head_cost["motion"], "selector": clip_costs.selector,
            "optical_flow": "not counted in GFLOPs",
        },
        "streams": {k: {"gflops": stream_cost[k], "map": float(v.mean()), "map_per_tiou": v.tolist()}
                    for k, v in stream_maps.items()},
        "curves": {"selector": selector_curve, "random": random_curve},
        "selector_above_random_fraction": fraction,
        "operating_point": {"threshold": settings.threshold, "motion_share": float(np.concatenate(operating).mean())},
        "train_videos": len(train.names),
        "test_videos": len(test.names),
        "train_seconds": streams.train_seconds,
        "settings": {**asdict(settings), "seed": seed, "clip_seconds": clip_seconds,
                     "wtalc": asdict(wtalc), "proposals": asdict(proposals)},
    }
    return LocalizationRun(summary, detections, np.concatenate(d_test), np.concatenate(foreground),
                           _timeline(gt, scorer, operating))


def write_run(run: LocalizationRun, out_dir: Path, title: str, clip_seconds: float) -> None:
    """summary.json, the three figures and the detections (ActivityNet results layout)."""
    out_dir = Path(out_dir)
    write_json(out_dir / "summary.json", run.summary)
    for name, dets in run.detections.items():
        write_results(dets, out_dir / "detections" / f"{name}.json")
    plots.disparity_histogram(run.disparity, run.foreground, out_dir / "disparity_hist.png", f"{title}: test clips")
    plots.map_vs_gflops(run.summary, out_dir / "curve.png", title)
    tl = run.timeline
    plots.timeline(tl["video"], clip_seconds, tl["segments"], tl["cas_rgb"], tl["cas_motion"], tl["use_motion"],
                   tl["class_name"], out_dir / "timeline.png", title)


SYNTHETIC_WTALC = WTALCConfig(lr=1e-3, iterations=600)


def run_synthetic_localization(out_dir: Path, seed: int = 0, progress: bool = True) -> dict:
    """The demo's localization part on the synthetic benchmark (see synthetic.py); returns summary.json's content.

    W-TALC runs with lr 1e-3 and 600 iterations instead of the published 1e-4 and
    100k: the synthetic features are small and the demo has minutes, not hours.
    Costs are the paper's pool from the zoo: X3D-M for RGB, I3D on flow for motion.
    """
    start = time.perf_counter()
    bench = make_benchmark(seed)
    train = TwoStreamFeatures(bench.train.names, bench.train.rgb, bench.train.motion)
    test = TwoStreamFeatures(bench.test.names, bench.test.rgb, bench.test.motion)
    with torch_threads(1):
        run = run_localization(
            train, test, bench.gt, bench.config.clip_seconds, parse_tiou("0.1:0.7:0.1"), zoo_costs("x3d_m", "i3d_flow"),
            wtalc=SYNTHETIC_WTALC, settings=SelectionSettings(standardize=True), seed=seed, progress=progress,
        )
    clips = sum(len(x) for x in train.rgb) + sum(len(x) for x in test.rgb)
    run.summary["synthetic"] = (
        "SYNTHETIC benchmark rendered from pixels (condsel.localization.synthetic): action segments inside "
        "longer blocks of the action's scene; not real video"
    )
    run.summary["costs"]["optical_flow"] = (
        f"not counted in GFLOPs; OpenCV Farneback on {bench.config.size}x{bench.config.size} frames took "
        f"{1000 * (bench.train.flow_seconds + bench.test.flow_seconds) / clips:.2f} ms per clip (wall time)"
    )
    run.summary["seconds"] = time.perf_counter() - start
    write_run(run, Path(out_dir), "synthetic benchmark (not real video)", bench.config.clip_seconds)
    return run.summary


@dataclass(frozen=True)
class Protocol:
    train_subsets: tuple[str, ...]  # the first one the ground truth has is used
    test_subsets: tuple[str, ...]
    tiou: str


# THUMOS'14: train on the validation videos (W-TALC says "validation", BaSNet's json
# "train"), test on the test videos, tIoU 0.1:0.7. MultiThumos: training/testing, 0.1:0.5.
PROTOCOLS = {
    "thumos14": Protocol(("validation", "train"), ("test",), "0.1:0.7:0.1"),
    "multithumos": Protocol(("training",), ("testing",), "0.1:0.5:0.1"),
}


def _pick_subset(gt: GroundTruth, names: tuple[str, ...]) -> str:
    present = gt.subsets()
    for name in names:
        if name in present:
            return name
    raise ValueError(f"{gt.source}: none of the subsets {list(names)} exists; subsets are {present}")


def run_feature_localization(
    features: Path,
    gt: GroundTruth,
    protocol: str,
    out_dir: Path,
    costs: BackboneCosts,
    rgb_stream: str = "rgb",
    motion_stream: str = "flow",
    clip_seconds: float = 16 / 25,
    wtalc: WTALCConfig = WTALCConfig(),
    proposals: ProposalConfig = ProposalConfig(),
    settings: SelectionSettings = SelectionSettings(),
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """``condsel localize``: the protocol on per-clip feature files (features.py layout).

    Videos whose files are missing or malformed are skipped and listed under
    ``failures`` in the summary; the caller decides the exit code.
    """
    spec = PROTOCOLS[protocol]
    loaded = {}
    for role, names in (("train", spec.train_subsets), ("test", spec.test_subsets)):
        subset = _pick_subset(gt, names)
        videos = sorted(v for v, a in gt.videos.items() if a.subset == subset)
        if role == "train":
            videos = [v for v in videos if gt.videos[v].video_labels]  # weak labels are all training has
        loaded[role] = load_two_streams(features, progress_bar(videos, desc=f"load {subset}", disable=not progress, leave=False),
                                        rgb_stream, motion_stream)
        if not loaded[role].names:
            raise ValueError(f"{features}: no {subset} video has both {rgb_stream} and {motion_stream} features")
    run = run_localization(loaded["train"], loaded["test"], gt, clip_seconds, parse_tiou(spec.tiou), costs,
                           wtalc=wtalc, proposals=proposals, settings=settings, seed=seed, progress=progress)
    failures = {**loaded["train"].failures, **loaded["test"].failures}
    if failures:
        log.warning("%d videos skipped for missing or malformed features", len(failures))
    run.summary["protocol"] = protocol
    run.summary["ground_truth"] = gt.source
    run.summary["features"] = str(features)
    run.summary["failures"] = failures
    write_run(run, Path(out_dir), f"{protocol} features", clip_seconds)
    return run.summary
