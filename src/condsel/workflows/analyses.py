"""Running the analyses: each computed (:mod:`condsel.analysis`), written as ``<name>.json`` and drawn as ``<name>.png``.

The demo's set, which ``condsel demo`` runs into ``DIR/analyses/`` (about a minute on 2 cores):

UCF101 (real scores): alpha sweep, selector backbones, per-class compute and
selector diagnostics, sharing cross-validation runs. Synthetic pool (when the
demo's ``synthetic/`` directory is there): test views per video, recomputed
from its run directory and test videos, and latency from its summary.
Synthetic localization: the beta / pseudo-label sweep, on a light grid. An
analysis that fails is logged and recorded, and the others still run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from condsel.analysis.alpha import alpha_sweep
from condsel.analysis.backbones import backbone_comparison
from condsel.analysis.diagnostics import selector_diagnostics
from condsel.analysis.oof import OutOfFoldRuns
from condsel.analysis.operating import default_operating_point
from condsel.analysis.per_class import per_class_compute
from condsel._io import write_json
from condsel.datasets.ucf101 import UCF101_BACKBONE, UCF101_DATA, ucf101_table
from condsel.report.analysis_plots import PLOTS
from condsel.selection.evaluation.evaluate import SelectionConfig
from condsel.selection.method.policies import SelectorPolicy

log = logging.getLogger(__name__)

DEMO_BACKBONES = ("mv", "residual", "flow")
DEMO_BETAS = (0.1, 0.3, 0.5)
DEMO_FOLDS = 3  # the demo's time budget; `condsel analyze` defaults to 5 like `condsel table`


def write_analysis(out_dir: str | Path, name: str, data: dict) -> tuple[Path, Path]:
    """Write the JSON atomically, then the plot; returns both paths."""
    out_dir = Path(out_dir)
    json_path, png_path = out_dir / f"{name}.json", out_dir / f"{name}.png"
    write_json(json_path, data)
    PLOTS[name](data, png_path)
    return json_path, png_path


def ucf101_analyses(seed: int = 0, folds: int = DEMO_FOLDS) -> dict[str, Callable[[], dict]]:
    """The UCF101 analyses, by name, as thunks sharing one memo of cross-validation runs."""
    runs = OutOfFoldRuns(ucf101_table())
    config = SelectionConfig(seed=seed, folds=folds, bootstrap=0)
    selector = SelectorPolicy(backbone=UCF101_BACKBONE, seed=seed)

    def operating():
        oof, summary = runs(selector, config)
        return oof, default_operating_point(summary)["threshold"]

    def per_class():
        oof, threshold = operating()
        return per_class_compute(runs.table, oof, threshold)

    def diagnostics():
        oof, threshold = operating()
        return selector_diagnostics(runs.table, oof, threshold)

    thunks = {
        "alpha_sweep": lambda: alpha_sweep(runs, selector, sorted({0.0, selector.alpha, 4.0}), config),
        "backbones": lambda: backbone_comparison(runs, selector, DEMO_BACKBONES, config),
        "per_class": per_class,
        "diagnostics": diagnostics,
    }
    return {name: (lambda f=f: {**f(), "data": UCF101_DATA}) for name, f in thunks.items()}


def synthetic_analyses(synthetic_dir: Path, progress: bool = False) -> dict[str, Callable[[], dict]]:
    """Views and latency on the demo's synthetic pool (``synthetic_dir`` = ``DIR/synthetic``)."""
    from condsel.analysis.latency import latency_points
    from condsel.analysis.views import per_view_scores_from_run, views_analysis
    from condsel.extract.manifest import read_manifest
    from condsel.pool.run_dir import load_run
    from condsel.selection.evaluation.document import load_summary

    note = "SYNTHETIC pool trained in the demo, on its synthetic test videos"

    def views():
        run = load_run(synthetic_dir / "run")
        manifest = read_manifest(synthetic_dir / "data" / "test.csv", len(run.class_names), run.class_names)
        scores, failures = per_view_scores_from_run(run, manifest.entries, progress=progress)
        return {**views_analysis(scores), "data": note, "failures": failures}

    def latency():
        return {**latency_points(load_summary(synthetic_dir / "summary.json")), "data": note + "; timed on this machine"}

    return {"views": views, "latency": latency}


def localization_analysis(seed: int = 0, progress: bool = False) -> dict[str, Callable[[], dict]]:
    from condsel.analysis.localization import beta_sweep_synthetic
    from condsel.localization.pipeline import SelectionSettings

    light = SelectionSettings(standardize=True, points=6, random_seeds=2)
    middle = DEMO_BETAS[len(DEMO_BETAS) // 2]
    return {"localization": lambda: beta_sweep_synthetic(DEMO_BETAS, seed, light, progress, pseudo_label_betas=[middle])}


def run_analyses(out_dir: str | Path, analyses: dict[str, Callable[[], dict]]) -> dict:
    """Run and write each analysis; a failure is logged and recorded, and the rest still run."""
    out_dir = Path(out_dir)
    report = {"written": [], "failures": {}, "seconds": {}}
    for name, compute in analyses.items():
        start = time.perf_counter()
        try:
            write_analysis(out_dir, name, compute())
            report["written"].append(name)
        except Exception as e:  # noqa: BLE001 - one broken analysis must not cost the others
            log.exception("analysis %s failed", name)
            report["failures"][name] = f"{type(e).__name__}: {e}"
        report["seconds"][name] = round(time.perf_counter() - start, 2)
    return report


def run_demo_analyses(
    out_dir: str | Path, synthetic_dir: str | Path | None = None, seed: int = 0, localization: bool = True,
    progress: bool = False,
) -> dict:
    """Write the demo's analyses into ``out_dir``; returns ``{"written", "failures", "seconds"}``."""
    analyses = ucf101_analyses(seed)
    if synthetic_dir is not None and (Path(synthetic_dir) / "summary.json").is_file():
        analyses.update(synthetic_analyses(Path(synthetic_dir), progress))
    else:
        log.info("no synthetic run at %s: skipping the views and latency analyses", synthetic_dir)
    if localization:
        analyses.update(localization_analysis(seed, progress))
    return run_analyses(out_dir, analyses)
