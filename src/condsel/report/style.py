"""One look for every plot: Okabe-Ito colour-blind-safe palette, readable sizes."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

# Okabe & Ito (2008), "Color Universal Design": distinguishable under common colour-vision deficiencies.
PALETTE = {
    "selector": "#0072B2",
    "random": "#E69F00",
    "hull": "#999999",
    "oracle": "#009E73",
    "single": "#D55E00",
    "extra": "#CC79A7",
    "sky": "#56B4E9",
    "yellow": "#F0E442",
    "black": "#000000",
}
DPI = 150


def new_figure(width: float = 7.5, height: float = 5.0):
    plt.rcParams.update({"font.size": 11, "axes.grid": True, "grid.alpha": 0.3})
    return plt.subplots(figsize=(width, height), constrained_layout=True)


def save(fig, path) -> None:
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
