"""Plots of the analyses in :mod:`condsel.analysis`, one function per analysis, each from its data dict."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import colormaps

from condsel.analysis.operating import matching_point
from condsel.report.plots import METRIC_LABELS
from condsel.report.style import PALETTE, new_figure, save
from condsel.report.tables import num

GFLOPS_LABEL = "GFLOPs / video (multiply-adds, backbone + selector included)"
# Okabe-Ito colours in an order where neighbours differ in lightness as well as hue
SERIES = [PALETTE[k] for k in ("selector", "single", "oracle", "extra", "random", "sky", "black", "yellow")]
MARKERS = "osD^v<>P"
LINESTYLES = ("-", "--", "-.", ":")
MIN_BIN = 20  # reliability bins with fewer videos are too noisy to draw
LABEL_BOX = {"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85}


def _panels(width: float, height: float, n: int, **gridspec):
    """A row of ``n`` axes with the house style."""
    fig, ax = new_figure(width, height)
    ax.remove()
    return fig, fig.subplots(1, n, gridspec_kw=gridspec or None)


def _series(i: int) -> str:
    return SERIES[i % len(SERIES)]


def _single_models(ax, models: dict, metric: str) -> None:
    for name, m in models.items():
        ax.plot(m["gflops"], m[metric], "s", color=PALETTE["hull"], ms=7, mec="black", mew=0.6, zorder=3)
        ax.annotate(name, (m["gflops"], m[metric]), textcoords="offset points", xytext=(5, 4), fontsize=8.5)
    ax.plot([], [], "s", color=PALETTE["hull"], mec="black", mew=0.6, label="single models (run alone)")


def _mark_match(ax, curve: list[dict], headline: dict, metric: str, color: str, row: int = 0) -> None:
    """Mark where a selector curve first reaches the best single model, with its threshold (labels stacked by ``row``)."""
    p = matching_point(curve, headline.get(f"best_{metric}"), metric)
    if p is None:
        return
    ax.plot(p["gflops"], p[metric], "o", color=color, ms=7, mec="black", mew=0.8, zorder=4)
    ax.annotate(f"t={p['threshold']:.2f}", (p["gflops"], p[metric]), textcoords="offset points", xytext=(8, -14 - 11 * row),
                fontsize=8, color=color, fontweight="bold", bbox=LABEL_BOX)


def _curve_ylim(ax, models: dict, metric: str) -> None:
    low = min(m[metric] for m in models.values())
    ax.set_ylim(bottom=max(0.0, low - 4))


def plot_alpha_sweep(data: dict, path: str | Path) -> None:
    """Left: the selector's curve per alpha; right: the affinity-label shares per alpha (Fig. 3a)."""
    metric = data["metric"]
    fig, (ax, bars) = _panels(13.0, 5.2, 2, width_ratios=[1.35, 1])
    # alpha is ordered: one sequential (viridis, colour-blind safe) colour and a line style per value,
    # so the curves are not confused with the per-model colours of the bars
    shades = colormaps["viridis"](np.linspace(0.0, 0.85, len(data["curves"])))
    for i, run in enumerate(data["curves"]):
        c = [p["gflops"] for p in run["selector"]]
        a = [p[metric] for p in run["selector"]]
        ax.plot(c, a, color=shades[i], lw=1.8, ls=LINESTYLES[i % len(LINESTYLES)], label=f"alpha = {run['alpha']:g}")
        _mark_match(ax, run["selector"], run["headline"], metric, shades[i], row=i)
    _single_models(ax, data["models"], metric)
    _curve_ylim(ax, data["models"], metric)
    ax.set_xlabel(GFLOPS_LABEL)
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    ax.set_title(f"Selector on {data['backbone']}, one curve per alpha\n"
                 "(dot: cheapest point matching the best model, with its threshold)", fontsize=10)
    ax.legend(loc="lower right", fontsize=8.5)

    rows = data["labels"]
    y = np.arange(len(rows))
    left = np.zeros(len(rows))
    for k, model in enumerate(data["pool"]):
        share = np.array([100 * r["share"][model] for r in rows])
        bars.barh(y, share, left=left, color=_series(k), edgecolor="white",
                  label=f"{model} ({data['gflops'][model]:.0f} GFLOPs)")
        for yi, (l0, s) in enumerate(zip(left, share)):
            if s >= 7:
                bars.text(l0 + s / 2, yi, f"{s:.0f}", ha="center", va="center", fontsize=8, color="white")
        left += share
    bars.set_yticks(y, [f"alpha={r['alpha']:g}\n{r['mean_routed_gflops']:.0f} GFLOPs" for r in rows], fontsize=8.5)
    bars.invert_yaxis()
    bars.set_xlim(0, 100)
    bars.set_xlabel("share of videos whose affinity label is the model (%)")
    bars.set_title("Affinity labels (Eq. 2) per alpha; GFLOPs/video of routing\nevery video to its label (backbone included)",
                   fontsize=10)
    bars.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3, fontsize=8)
    bars.grid(False)
    save(fig, path)


def plot_views(data: dict, path: str | Path) -> None:
    """Top-1 against GFLOPs/video as views are added, per model; one line per clip count, crops along it (Fig. 3b)."""
    fig, ax = new_figure()
    for i, (name, m) in enumerate(data["models"].items()):
        color = _series(i)
        layout = f"up to {m['clips']} clips x {m['crops']} crops" if m["clips"] * m["crops"] > 1 else "1 view"
        ax.plot([], [], MARKERS[i % len(MARKERS)], color=color, label=f"{name}: {m['gflops_per_view']:.3g} GFLOPs/view, {layout}")
        for clips in range(1, m["clips"] + 1):
            pts = sorted((p for p in m["points"] if p["clips"] == clips), key=lambda p: p["crops"])
            ax.errorbar([p["gflops"] for p in pts], [p["top1"] for p in pts], yerr=[p["top1_std"] for p in pts],
                        fmt=MARKERS[i % len(MARKERS)], ls=LINESTYLES[(clips - 1) % len(LINESTYLES)], color=color, ms=6,
                        lw=1.5, capsize=2)
            if len(m["points"]) > 1:
                for p in pts:
                    ax.annotate(f"{p['clips']}x{p['crops']}", (p["gflops"], p["top1"]), textcoords="offset points",
                                xytext=(-6, 7) if clips == 1 else (6, -15), ha="right" if clips == 1 else "left",
                                fontsize=8, color=color, bbox=LABEL_BOX)
    if any(m["clips"] > 1 for m in data["models"].values()):
        for clips in range(1, max(m["clips"] for m in data["models"].values()) + 1):
            ax.plot([], [], color=PALETTE["black"], ls=LINESTYLES[(clips - 1) % len(LINESTYLES)],
                    label=f"{clips} clip{'s' if clips > 1 else ''}, 1..{max(m['crops'] for m in data['models'].values())} crops")
    ax.set_xscale("log")
    ax.set_xlabel("GFLOPs / video (multiply-adds; views x GFLOPs per view), log scale")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title(f"Test views per video (label: clips x crops), {data['videos']} videos,\n"
                 f"mean ± sd over {data['draws']} random draws of which clips and crops", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    save(fig, path)


def plot_per_class(data: dict, path: str | Path) -> None:
    """Per-class top-1 against mean GFLOPs/video at one threshold; cheapest and costliest classes named (Fig. 3c)."""
    fig, ax = new_figure(9.5, 6.0)
    rows = data["classes"]
    c = np.array([r["gflops"] for r in rows])
    a = np.array([r["top1"] for r in rows])
    b = np.array([r["backbone_top1"] for r in rows])
    dots = ax.scatter(c, a, c=b, cmap="viridis", s=28, edgecolors="black", linewidths=0.4, zorder=3)
    fig.colorbar(dots, ax=ax, label=f"top-1 of the backbone ({data['backbone']}) alone on the class (%)", fraction=0.05, pad=0.01)
    by_name = {r["class"]: r for r in rows}
    # named classes get a ring and a label in a column (cheapest bottom-left, costliest bottom-right),
    # joined by a thin line: labels on the points would pile up where many classes share 100 %
    span = a.max() - a.min()
    ax.set_ylim(a.min() - 0.45 * span - 1, a.max() + 0.04 * span + 1)  # an empty band at the bottom for the labels
    for names, color, x, align in ((data["cheapest"], PALETTE["oracle"], 0.02, "left"),
                                   (data["costliest"], PALETTE["single"], 0.98, "right")):
        # label rows in the order of the points' accuracy, so the joining lines do not cross
        for i, r in enumerate(sorted((by_name[n] for n in names), key=lambda r: r["top1"])):
            name = r["class"]
            ax.plot(r["gflops"], r["top1"], "o", ms=9, mfc="none", mec=color, mew=2, zorder=4)
            ax.annotate(f"{name}: {r['gflops']:.0f} GFLOPs, {r['top1']:.0f}%", (r["gflops"], r["top1"]),
                        xytext=(x, 0.03 + 0.055 * i), textcoords="axes fraction", ha=align, fontsize=8, color=color,
                        fontweight="bold", bbox=LABEL_BOX,
                        arrowprops={"arrowstyle": "-", "color": color, "lw": 0.7, "alpha": 0.7})
    overall = data["overall"]
    ax.axvline(overall["gflops"], color=PALETTE["black"], lw=1, ls="--")
    ax.text(overall["gflops"], ax.get_ylim()[0], f" mean {overall['gflops']:.0f} GFLOPs, top-1 {overall['top1']:.1f}%",
            fontsize=8, va="bottom")
    ax.set_xlabel(GFLOPS_LABEL)
    ax.set_ylabel("top-1 accuracy of the class (%)")
    ax.set_title(f"Per-class compute at threshold t={data['threshold']:.2f}: the {len(data['cheapest'])} cheapest classes "
                 f"(green, left) and the {len(data['costliest'])} costliest (vermilion, right)", fontsize=10)
    save(fig, path)


def plot_backbones(data: dict, path: str | Path) -> None:
    """The selector's curve on each backbone, same pool (Fig. 4a)."""
    metric = data["metric"]
    fig, ax = new_figure()
    for i, (name, b) in enumerate(data["backbones"].items()):
        c = [p["gflops"] for p in b["selector"]]
        a = [p[metric] for p in b["selector"]]
        ax.plot(c, a, color=_series(i), lw=1.8, ls=LINESTYLES[i % len(LINESTYLES)],
                label=f"selector on {name} ({b['gflops']:.0f} GFLOPs, always runs)")
        _mark_match(ax, b["selector"], b["headline"], metric, _series(i), row=i)
    _single_models(ax, data["models"], metric)
    _curve_ylim(ax, data["models"], metric)
    ax.set_xlabel(GFLOPS_LABEL)
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    ax.set_title(f"Same pool, selector on different backbones (alpha={data['alpha']:g})\n"
                 "dot: cheapest point matching the best model, with its threshold", fontsize=10)
    ax.legend(loc="lower right", fontsize=8.5)
    save(fig, path)


def plot_latency(data: dict, path: str | Path) -> None:
    """Measured ms/video against top-1 for each execution mode (Fig. 4b)."""
    fig, ax = new_figure()
    for i, p in enumerate(data["points"]):
        ms = 1000 * p["seconds_per_video"]
        policy = "selector" if p["mode"].startswith("selector") else "largest"
        color = PALETTE["selector"] if policy == "selector" else PALETTE["single"]
        ax.plot(ms, p["top1"], MARKERS[i % len(MARKERS)], color=color, ms=9, mec="black", mew=0.6,
                label=f"{p['label']}: {ms:.1f} ms, {p['gflops']:.3g} GFLOPs")
    modes = {p["mode"]: p for p in data["points"]}
    if "largest" in modes and "selector" in modes:
        big, sel = modes["largest"], modes["selector"]
        ideal = 1000 * big["seconds_per_video"] * sel["gflops"] / big["gflops"]
        ax.axvline(ideal, color=PALETTE["hull"], ls=":", lw=1.5,
                   label=f"largest's latency x GFLOPs ratio ({ideal:.1f} ms): every GFLOP saved is time saved")
    ax.set_xlabel("wall-clock latency (ms / video, decoding included)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_xlim(left=0)
    span = [p["top1"] for p in data["points"]]
    ax.set_ylim(min(span) - 5, max(span) + 5)
    ax.set_title(f"Latency vs accuracy, selector at t={data['threshold']:.2f} "
                 f"({data['videos_timed']} videos, {data['torch_threads']} torch thread(s))", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    save(fig, path)


def plot_diagnostics(data: dict, path: str | Path) -> None:
    """Reliability diagram, label-vs-chosen confusion and label shares of the selector."""
    fig, (rel, conf, share) = _panels(15.0, 4.8, 3)
    rel.plot([0, 1], [0, 1], color=PALETTE["hull"], ls=":", lw=1.2, label="perfect calibration")
    series = [("reliability_vs_label", "top model = affinity label", PALETTE["selector"]),
              ("reliability_vs_correct", "top model classifies correctly", PALETTE["single"])]
    for key, label, color in series:
        r = data[key]
        if r is None:
            continue
        kept = [(c, v) for c, v, n in zip(r["confidence"], r["rate"], r["count"]) if n >= MIN_BIN]
        rel.plot(*zip(*kept), "o-", color=color, ms=4, label=f"{label} (ECE {r['ece']:.3f})")
    counts = np.array(data["reliability_vs_label"]["count"])
    edges = np.array(data["reliability_vs_label"]["edges"])
    twin = rel.twinx()
    twin.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color=PALETTE["sky"], alpha=0.25, lw=0)
    twin.set_ylabel("videos per bin", fontsize=9)
    twin.grid(False)
    rel.set_zorder(twin.get_zorder() + 1)
    rel.patch.set_visible(False)
    rel.set_xlim(0, 1)
    rel.set_ylim(0, 1)
    rel.set_xlabel("selector confidence, max_k P(M_k | x)")
    rel.set_ylabel("empirical rate")
    rel.set_title(f"Reliability of the selector's top model (bins with >= {MIN_BIN} videos)", fontsize=10)
    rel.legend(loc="lower right", fontsize=7.5)

    pool = data["pool"]
    matrix = np.array(data["confusion"], dtype=np.float64)
    rows = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    conf.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(pool)):
        for j in range(len(pool)):
            conf.text(j, i, f"{int(matrix[i, j])}", ha="center", va="center", fontsize=8,
                      color="white" if rows[i, j] > 0.6 else "black")
    conf.set_xticks(range(len(pool)), pool, rotation=30, fontsize=8.5)
    conf.set_yticks(range(len(pool)), pool, fontsize=8.5)
    conf.set_xlabel(f"model chosen at t={data['threshold']:.2f}")
    conf.set_ylabel("affinity-label model (Eq. 2)")
    conf.set_title("Confusion (counts; shade = share of the row)", fontsize=10)
    conf.grid(False)

    x = np.arange(len(pool))
    width = 0.4
    share.bar(x - width / 2, [100 * data["label_share"][m] for m in pool], width, color=PALETTE["oracle"],
              label=f"affinity labels (alpha={data['alpha']:g})")
    share.bar(x + width / 2, [100 * data["chosen_share"][m] for m in pool], width, color=PALETTE["selector"],
              label=f"chosen at t={data['threshold']:.2f}")
    share.set_xticks(x, pool, rotation=30, fontsize=8.5)
    share.set_ylabel("share of videos (%)")
    share.set_title("Label distribution vs what runs", fontsize=10)
    share.legend(fontsize=8)
    save(fig, path)


def plot_localization(data: dict, path: str | Path) -> None:
    """(a) disparity of training clips; (b) mAP vs GFLOPs/clip per beta; (c) soft vs pseudo-labels (Fig. 5)."""
    fig, (hist, beta, variant) = _panels(16.0, 4.8, 3)
    h = data["disparity"]
    edges = np.array(h["edges"])
    for key, color, filled in (("background", PALETTE["hull"], True), ("foreground", PALETTE["single"], False)):
        counts = np.array(h[key], dtype=np.float64)
        density = counts / max(counts.sum(), 1) / np.diff(edges)
        hist.stairs(density, edges, fill=filled, alpha=0.6 if filled else 1.0, lw=2.2, color=color,
                    label=f"{key} clips ({int(counts.sum())}), mean D {num(h[f'{key}_mean'])}")
    hist.set_xlabel("normalized disparity D(x) (training clips)")
    hist.set_ylabel("density")
    hist.set_title("(a) RGB vs motion CAS disparity", fontsize=10)
    hist.legend(fontsize=8)

    def curve(ax, points, **kw):
        ax.plot([p["gflops"] for p in points], [p["map"] for p in points], **kw)

    soft = [r for r in data["runs"] if r["variant"] == "soft"]
    for i, r in enumerate(soft):
        curve(beta, r["selector"], color=_series(i), marker="o", ms=3, lw=1.6, label=f"selector, beta={r['beta']:g}")
    if soft:
        rnd = soft[0]["random"]
        curve(beta, rnd, color=PALETTE["random"], ls="--", lw=1.4, label="random clips, same shares")
    for ax in (beta, variant):
        for name, marker in (("rgb", "^"), ("motion", "v")):
            s = data["streams"][name]
            ax.plot(s["gflops"], s["map"], marker, color=PALETTE["black"], ms=8)
            ax.annotate(f"{name} alone", (s["gflops"], s["map"]), textcoords="offset points", xytext=(5, -10), fontsize=8)
        ax.set_xlabel("GFLOPs / clip (multiply-adds; optical flow not counted)")
        ax.set_ylabel("average mAP (%)")
    beta.set_title("(b) beta: share of each video's clips labelled motion", fontsize=10)
    beta.legend(fontsize=7.5, loc="lower right")
    betas = data["settings"]["betas"]
    middle = betas[len(betas) // 2]
    at_middle = [r for r in data["runs"] if r["beta"] == middle]
    for i, r in enumerate(at_middle):
        curve(variant, r["selector"], color=_series(i), marker="o", ms=3, lw=1.6, ls=LINESTYLES[i % len(LINESTYLES)],
              label=f"{r['variant']} (above random on {100 * r['selector_above_random_fraction']:.0f}% of GFLOPs)")
        for p in r["selector"][1:-1:2]:
            variant.annotate(f"t={p['threshold']:.2f}", (p["gflops"], p["map"]), textcoords="offset points",
                             xytext=(6, -12 - 11 * i), fontsize=7.5, color=_series(i), bbox=LABEL_BOX)
    if at_middle:
        curve(variant, at_middle[0]["random"], color=PALETTE["random"], ls="--", lw=1.4, label="random clips, same shares")
    variant.set_title(f"(c) soft affinity vs pure pseudo-labels, beta={middle:g}", fontsize=10)
    variant.legend(fontsize=7.5, loc="lower right")
    save(fig, path)


PLOTS = {
    "alpha_sweep": plot_alpha_sweep,
    "views": plot_views,
    "per_class": plot_per_class,
    "backbones": plot_backbones,
    "latency": plot_latency,
    "diagnostics": plot_diagnostics,
    "localization": plot_localization,
}
