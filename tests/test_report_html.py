"""The HTML report on a run directory laid out like the demo's, built from the real UCF101 scores,
and the same page rendered in headless Chromium (every image decodes, no console or CSP errors)."""

import base64
import html
import json
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from condsel.analysis.alpha import alpha_sweep
from condsel.workflows.analyses import run_analyses
from condsel.analysis.latency import latency_points
from condsel.analysis.oof import OutOfFoldRuns
from condsel.analysis.operating import default_operating_point
from condsel.analysis.per_class import per_class_compute
from condsel.datasets.ucf101 import ucf101_table
from condsel.cli import main
from condsel.selection.evaluation.evaluate import SelectionConfig
from condsel.selection.method.policies import SelectorPolicy
from condsel.report.html import write_report
from condsel.report.plots import plot_curves
from condsel.report.provenance import read_provenance, write_provenance
from condsel.sources import source_provenance
from condsel.selection.evaluation.document import Provenance
from condsel._io import write_json

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CONFIG = SelectionConfig(folds=2, bootstrap=20, thresholds=201)


@pytest.fixture(scope="module")
def rundir(tmp_path_factory):
    """ucf101/ (summary + curve), synthetic/ (a latency block), analyses/ (alpha sweep, per-class, latency)."""
    root = tmp_path_factory.mktemp("run")
    table = ucf101_table()
    table = table.subset(np.arange(0, table.num_samples, 3))
    runs = OutOfFoldRuns(table)
    oof, summary = runs(SelectorPolicy(backbone="mv"), CONFIG)
    summary = replace(summary, provenance=Provenance.from_json(source_provenance("ucf101-split1", table)))
    write_json(root / "ucf101" / "summary.json", summary.to_json())
    plot_curves(summary, root / "ucf101" / "curve.png", title="UCF101, every third video")
    # a latency block as condsel demo writes it, on these real curves (timings made up for the test)
    synthetic = replace(summary, provenance=Provenance("synthetic", ["made up for the test"]), synthetic={"videos": 0},
                        latency={
        "largest": {"model": "iframe", "seconds_per_video": 0.08, "gflops": 287.8},
        "selector": {"seconds_per_video": 0.05, "gflops": 150.0, "threshold": 0.4},
        "selector_load_per_selection": {"seconds_per_video": 0.09, "gflops": 150.0},
        "videos": 10, "torch_threads": 1})
    write_json(root / "synthetic" / "summary.json", synthetic.to_json())
    threshold = default_operating_point(summary)["threshold"]
    report = run_analyses(root / "analyses", {
        "alpha_sweep": lambda: alpha_sweep(runs, SelectorPolicy(backbone="mv"), [0.0, 0.5], replace(CONFIG, bootstrap=0)),
        "per_class": lambda: {**per_class_compute(table, oof, threshold), "data": "UCF101 split 1 (every third video)"},
        "latency": lambda: latency_points(synthetic),
        "diagnostics": lambda: 1 / 0,  # a broken analysis: recorded, the others still written
    })
    assert report["written"] == ["alpha_sweep", "per_class", "latency"]
    assert "ZeroDivisionError" in report["failures"]["diagnostics"]
    (root / "broken").mkdir()
    (root / "broken" / "summary.json").write_text("{not json")
    write_provenance(root, ["table", "--bundled", "ucf101-split1", "--backbone", "mv", "--out", str(root / "ucf101")])
    write_provenance(root, ["demo", "--out", str(root)])
    write_provenance(root, ["demo", "--out", str(root)])
    return root, summary


@pytest.fixture(scope="module")
def page(rundir):
    root, _ = rundir
    return write_report(root), root


def test_every_png_is_embedded_byte_for_byte_and_nothing_is_fetched(page):
    path, root = page
    text = path.read_text(encoding="utf-8")
    found = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]+)"', text)
    assert len(found) == text.count("<img ")
    images = {alt: encoded for encoded, alt in found}
    pngs = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.png"))
    assert sorted(images) == pngs
    assert {"ucf101/curve.png", "analyses/alpha_sweep.png", "analyses/per_class.png", "analyses/latency.png"} <= set(images)
    for rel, encoded in images.items():
        assert base64.b64decode(encoded) == (root / rel).read_bytes()
    assert not re.search(r'(src|href)="(?!data:|#)', text)  # no link leaves the page
    assert "Content-Security-Policy" in text and "<script" not in text


def test_tables_show_the_summary_numbers_and_cis(page, rundir):
    path, _ = page
    _, summary = rundir
    text = html.unescape(path.read_text(encoding="utf-8"))
    for model in summary.models.values():
        assert f"{model['top1']:.2f}" in text
    ci = summary.headline.ci95["gflops_ratio_to_match_best"]
    assert f"[{ci['low']:.3f}, {ci['high']:.3f}]" in text
    point = default_operating_point(summary)
    assert f"{point['threshold']:.3f}" in text and f"{point['top1']:.2f}" in text
    for b in summary.budget:
        assert f"{b['accuracy']:.2f}" in text
    assert "What is real and what is synthetic" in text and "REAL published scores" in text and "SYNTHETIC" in text


def test_commands_versions_and_missing_parts(page):
    path, root = page
    doc = read_provenance(root)
    assert len(doc["commands"]) == 2 and doc["commands"][1] == f"condsel demo --out {root}"
    assert doc["versions"]["torch"] == torch.__version__
    text = html.unescape(path.read_text(encoding="utf-8"))
    for command in doc["commands"]:
        assert command in text
    assert "Not in this run: localization/" in text
    assert "summary.json could not be read" in text  # the broken part is a note, not a crash


def test_report_command_and_bad_input(tmp_path, rundir, capsys):
    root, _ = rundir
    out = tmp_path / "r.html"
    assert main(["report", str(root), "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "nope: not a directory" in capsys.readouterr().err
    empty = tmp_path / "EMPTY"
    (empty / "sub").mkdir(parents=True)
    (empty / "sub" / "notes.txt").write_text("no run here")
    assert main(["report", str(empty)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("condsel report: error: ") and len(err.strip().splitlines()) == 1
    assert "EMPTY: no run to report" in err and "summary.json" in err and "alpha_sweep.json" in err and "PNG" in err
    assert not (empty / "report.html").exists()
    (tmp_path / "provenance.json").write_text(json.dumps({"commands": "x"}))
    with pytest.raises(ValueError, match="provenance.json"):
        read_provenance(tmp_path)


# --- in a real browser -------------------------------------------------------------------------

PROBE = """<script>
window.__errors = [];
addEventListener('error', e => __errors.push('error: ' + (e.message || (e.target && e.target.alt))), true);
addEventListener('securitypolicyviolation', e => __errors.push('csp: ' + e.violatedDirective + ' ' + e.blockedURI));
const __error = console.error; console.error = (...a) => { __errors.push('console.error: ' + a.join(' ')); __error(...a); };
addEventListener('load', () => {
  const result = {images: [...document.images].map(i => ({alt: i.alt, width: i.naturalWidth})), errors: __errors};
  const pre = document.createElement('pre'); pre.id = '__probe'; pre.textContent = JSON.stringify(result);
  document.body.appendChild(pre);
});
</script>"""
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def render_in_chromium(page_html: str, workdir: Path) -> tuple[dict, list[str]]:
    """Load the page with a probe script placed before the page's own CSP (so the CSP still governs the
    page): it records image decode results, error events, CSP violations and console.error calls after
    ``load``. Chromium's stderr console lines are returned as well."""
    probe = workdir / "probe.html"
    probe.write_text(page_html.replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    done = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={workdir / 'profile'}", "--enable-logging=stderr", "--v=0",
                           "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="__probe">(.*?)</pre>', done.stdout, re.S)
    assert found, f"chromium gave no probe result (exit {done.returncode}): {done.stderr[-2000:]}"
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    return json.loads(html.unescape(found.group(1))), console


def screenshot(page_path: Path, name: str, workdir: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={workdir / 'shot-profile'}", "--window-size=1280,6000",
                    f"--screenshot={ARTIFACTS / name}", page_path.as_uri()], capture_output=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (CI installs Debian's chromium package)")
def test_report_renders_in_chromium_with_every_image_decoded_and_no_errors(page, tmp_path):
    path, root = page
    result, console = render_in_chromium(path.read_text(encoding="utf-8"), tmp_path)
    expected = len(list(root.rglob("*.png")))
    try:
        assert len(result["images"]) == expected
        assert all(img["width"] > 0 for img in result["images"]), result["images"]
        assert result["errors"] == [] and console == []
    except AssertionError:
        screenshot(path, "report_failure.png", tmp_path)
        raise


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (CI installs Debian's chromium package)")
def test_the_browser_check_catches_a_broken_image_and_a_network_fetch(tmp_path):
    page_html = ('<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" content="img-src data:"></head>'
                 '<body><img alt="broken" src="data:image/png;base64,AAAA"><img alt="remote" src="http://example.invalid/a.png">'
                 "</body></html>")
    result, console = render_in_chromium(page_html, tmp_path)
    assert [img["width"] for img in result["images"]] == [0, 0]
    assert any(e.startswith("csp: img-src") for e in result["errors"]) and "error: broken" in result["errors"]
    assert any("Content Security Policy" in line for line in console)


def test_the_recommended_front_leads_the_classification_tables():
    """Issue: a reader sees the recommended front first, beside the paper's selector and the static hull."""
    from conftest import ucf101_slice

    from condsel.report.tables import classification_tables
    from condsel.selection.evaluation.comparison import evaluate_policies
    from condsel.selection.evaluation.document import build_document

    table = ucf101_slice(3, 300).select_models(["mv", "flow", "iframe"])
    sections = evaluate_policies(table, "mv", ["selector", "cascade"], SelectionConfig(folds=3, bootstrap=0), workers=1)
    doc = build_document(sections, Provenance("unknown", ["slice"]))
    out = classification_tables(doc)
    assert out.startswith("<table><caption>Recommended front")
    lead = re.findall(r"<tr><td>(.*?)</td></tr>", out[: out.index("</table>")])
    assert 6 <= len(lead) <= 8 < len(doc.recommended)
    lead_text = html.unescape(" ".join(lead))
    for member in ("mv", "flow", "iframe"):
        assert f"cost of {member}" in lead_text or f", {member}" in lead_text  # mv and flow cost the same: one row
    assert "knee" in lead_text and "ceiling" in lead_text
    # every budget is in the folded table, with where its videos ended
    folded = out[out.index("<details><summary>All"): out.index("</details>")]
    rows = re.findall(r"<tr><td>(.*?)</td></tr>", folded)
    assert len(rows) == len(doc.recommended) > 0
    hull_c = [p["gflops"] for p in doc.static_hull]
    hull_a = [p["top1"] for p in doc.static_hull]
    for row, point in zip(rows, doc.recommended):
        cells = row.split("</td><td>")
        assert cells[1] == point["policy"] and cells[3].startswith(f"{point['top1']:.2f}")
        top = max(point["share"], key=point["share"].get)
        assert cells[-1].startswith(f"{top} {100 * point['share'][top]:.0f}%")
        if hull_c[0] <= point["gflops"]:  # the hull's value at the cost reached, interpolated independently
            assert float(cells[5]) == pytest.approx(np.interp(point["gflops"], hull_c, hull_a), abs=0.006)


def test_lead_budgets_are_member_costs_knee_and_ceiling_by_hand():
    from condsel.report.tables import lead_budgets

    points = [{"budget": b, "top1": v} for b, v in zip([1, 2, 4, 8, 16, 32, 64, 100], [50, 60, 70, 80, 85, 89.8, 90, 90])]
    lead = lead_budgets(points, {"a": 1.0, "b": 10.0, "c": 100.0}, "top1")
    # a costs 1 (budget 1), b 10 (the last budget within it is 8), c 100; the knee is the first point
    # within 0.5 of the ceiling (89.8 at 32), the ceiling the first at 90 (64); budget 2 fills the sixth row
    assert lead == {0: "cost of a", 1: "", 3: "cost of b", 5: "knee: within 0.5 of the ceiling", 6: "ceiling", 7: "cost of c"}


def test_the_report_shows_where_the_recommended_videos_ended(tmp_path):
    """A run of every policy: the page has the share chart and the recommended front's folded table."""
    from conftest import ucf101_slice

    from condsel.selection.evaluation.comparison import evaluate_policies
    from condsel.selection.evaluation.document import build_document

    table = ucf101_slice(3, 300).select_models(["mv", "flow", "iframe"])
    sections = evaluate_policies(table, "mv", ["cascade", "static"], SelectionConfig(folds=3, bootstrap=0), workers=1)
    doc = build_document(sections, Provenance("unknown", ["slice"]))
    for p in doc.recommended:
        assert set(p["share"]) == {"mv", "flow", "iframe"} and sum(p["share"].values()) == pytest.approx(1.0)
    write_json(tmp_path / "run" / "summary.json", doc.to_json())
    text = write_report(tmp_path / "run").read_text(encoding="utf-8")
    chart = re.search(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="recommended front: share of videos', text)
    assert chart and base64.b64decode(chart.group(1)).startswith(b"\x89PNG")
    assert f"<details><summary>All {len(doc.recommended)} budgets of the recommended front</summary>" in text
