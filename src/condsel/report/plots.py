"""The accuracy-vs-GFLOPs curve of a run, drawn from its summary document."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from condsel.report.style import PALETTE, new_figure, save
from condsel.selection.evaluation.document import SummaryDocument

METRIC_LABELS = {"top1": "top-1 accuracy (%)", "map": "mAP (%)"}


def _xy(points: list[dict], metric: str) -> tuple[np.ndarray, np.ndarray]:
    return np.array([p["gflops"] for p in points]), np.array([p[metric] for p in points])


def plot_curves(doc: SummaryDocument, path: str | Path, title: str = "", annotate: int = 5) -> None:
    """Selector sweep, random selection, single-model hull, oracle and single models on one plot."""
    metric = doc.metric
    curves = doc.curves
    fig, ax = new_figure()
    c, a = _xy(curves.oracle, metric)
    ax.plot(c, a, color=PALETTE["oracle"], lw=1.5, ls="--", label="oracle (per-sample cheapest correct model)")
    c, a = _xy(curves.hull, metric)
    ax.plot(c, a, color=PALETTE["hull"], lw=1.5, ls=":", label="hull of single models (random mixing)")
    rand = curves.random
    c, a = _xy(rand, metric)
    spread = np.array([p.get(f"{metric}_std", 0.0) for p in rand])
    ax.plot(c, a, color=PALETTE["random"], lw=1.5, label="random selection, same per-model shares")
    ax.fill_between(c, a - spread, a + spread, color=PALETTE["random"], alpha=0.2, lw=0)
    if doc.static_hull is not None:
        _policy_layers(ax, doc, metric)
    sel = curves.selector
    c, a = _xy(sel, metric)
    ax.plot(c, a, color=PALETTE["selector"], lw=2.2, label=f"selector on {doc.backbone} (threshold sweep)")
    if annotate and len(sel) > 2:
        for i in np.unique(np.linspace(1, len(sel) - 2, annotate).round().astype(int)):
            ax.plot(c[i], a[i], "o", color=PALETTE["selector"], ms=4)
            ax.annotate(f"t={sel[i]['threshold']:.2f}", (c[i], a[i]), textcoords="offset points", xytext=(6, -12), fontsize=8, color=PALETTE["selector"])
    for name, model in doc.models.items():
        ax.plot(model["gflops"], model[metric], "s", color=PALETTE["single"], ms=7)
        ax.annotate(name, (model["gflops"], model[metric]), textcoords="offset points", xytext=(5, 4), fontsize=9)
    ax.plot([], [], "s", color=PALETTE["single"], label="single models (run alone)")
    if doc.static_hull is not None:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 3.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("ms / video (profiled forward passes; costs keyed gflops hold ms)" if doc.cost_unit == "ms"
                  else "GFLOPs / video (multiply-adds, backbone + selector included)")
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    if title:
        ax.set_title(title)
    low = min(m[metric] for m in doc.models.values())
    ax.set_ylim(bottom=max(0.0, low - 5))
    legend_below(fig, ax)
    save(fig, path)


def legend_below(fig, ax) -> None:
    """The legend under the axes, outside them: inside, it covered curve points and threshold labels wherever it sat."""
    handles, labels = ax.get_legend_handles_labels()
    fig.set_figheight(fig.get_figheight() + 0.22 * ((len(labels) + 1) // 2))  # room for its rows; the axes keep their size
    fig.legend(handles, labels, loc="outside lower center", ncols=2, fontsize=8.5, frameon=False)


def _policy_layers(ax, doc: SummaryDocument, metric: str) -> None:
    """Static choices, their hull, the fusion-aware oracle and the recommended front."""
    c, a = _xy(doc.static, metric)
    ax.plot(c, a, ".", color=PALETTE["hull"], ms=4, alpha=0.6, label="static choices (single models, fused subsets <= 3)")
    c, a = _xy(doc.static_hull, metric)
    ax.plot(c, a, color=PALETTE["black"], lw=1.2, ls=":", label="hull of static choices")
    c, a = _xy(doc.fusion_oracle, metric)
    ax.plot(c, a, color=PALETTE["oracle"], lw=1.0, ls="-.", label="fusion-aware oracle")
    c, a = _xy(doc.recommended, metric)
    ax.plot(c, a, "o-", color=PALETTE["extra"], lw=2.4, ms=4, label="recommended (policy chosen on training folds, held out)")


def plot_operating_curve(
    curve: list[dict], singles: dict[str, dict], point: dict, path: str | Path, policy: str, title: str = "", unit: str = "gflops"
) -> None:
    """A fitted policy's out-of-fold curve, its operating point and the single members (``condsel fit``).

    Costs are read from the ``gflops`` keys whatever ``unit`` they are in; ``unit`` "ms" labels them as profiled ms.
    """
    metric = "map" if "map" in point else "top1"
    fig, ax = new_figure()
    c, a = _xy(sorted(curve, key=lambda p: p["threshold"]), metric)
    ax.plot(c, a, color=PALETTE["selector"], lw=2.2, label=f"{policy} policy, out of fold (threshold sweep)")
    ax.plot(point["gflops"], point[metric], "o", color=PALETTE["selector"], ms=9, mfc="none", mew=2,
            label=f"operating point (t={point['threshold']:.2f})")
    for name, single in singles.items():
        ax.plot(single["gflops"], single[metric], "s", color=PALETTE["single"], ms=7)
        ax.annotate(name, (single["gflops"], single[metric]), textcoords="offset points", xytext=(5, 4), fontsize=9)
    ax.plot([], [], "s", color=PALETTE["single"], label="single members (run alone)")
    ax.set_xlabel("ms / video (profiled forward passes of every member run)" if unit == "ms"
                  else "GFLOPs / video (multiply-adds, every member run + the policy)")
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    if title:
        ax.set_title(title)
    legend_below(fig, ax)
    save(fig, path)


def plot_share(doc: SummaryDocument, path) -> None:
    """The recommended front's ``share`` as stacked bars, one per budget: where each budget's held-out videos ended.

    Members stack in ascending cost, so a front that sends every video to one
    member shows one colour. ``path`` is a file or a binary buffer.
    """
    points = doc.recommended
    members = sorted(doc.models, key=lambda m: (doc.models[m]["gflops"], m))
    colours = list(PALETTE.values())
    fig, ax = new_figure(width=9.0, height=4.2)
    x = np.arange(len(points))
    bottom = np.zeros(len(points))
    for i, member in enumerate(members):
        height = 100 * np.array([p["share"].get(member, 0.0) for p in points])
        ax.bar(x, height, bottom=bottom, width=0.8, color=colours[i % len(colours)], label=member)
        bottom += height
    ax.set_xticks(x, [f"{p['budget']:.3g}" for p in points], rotation=60, fontsize=8)
    unit = "ms" if doc.cost_unit == "ms" else "GFLOPs"
    ax.set_xlabel(f"budget ({unit} / video); the recommended point of each")
    ax.set_ylabel("held-out videos (%)")
    ax.set_ylim(0, 100)
    ax.set_title("Where the recommended front's videos ended: the costliest member run on each")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8.5, title="member")
    save(fig, path)
