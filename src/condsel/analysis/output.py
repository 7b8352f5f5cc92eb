"""Writing an analysis: ``<name>.json`` with its data and ``<name>.png`` with its plot."""

from __future__ import annotations

from pathlib import Path

from condsel.report.analysis_plots import PLOTS
from condsel._io import write_json


def write_analysis(out_dir: str | Path, name: str, data: dict) -> tuple[Path, Path]:
    """Write the JSON atomically, then the plot; returns both paths."""
    out_dir = Path(out_dir)
    json_path, png_path = out_dir / f"{name}.json", out_dir / f"{name}.png"
    write_json(json_path, data)
    PLOTS[name](data, png_path)
    return json_path, png_path
