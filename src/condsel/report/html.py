"""``report.html``: one self-contained page of everything a run directory holds.

The page finds what is there instead of expecting a fixed layout: every
directory with a ``summary.json`` (classification or localization), an
analysis output (``<name>.json`` from ``condsel analyze``) or a PNG becomes a
section, with its tables and every plot. Images are embedded as base64 data
URIs and the styles are inline; a Content-Security-Policy forbids every
network fetch and every script, so the file reads the same offline and
anywhere. A part that cannot be read is shown as a note, never a crash.
"""

from __future__ import annotations

import base64
import io
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from html import escape
from pathlib import Path

from condsel._io import atomic_path
from condsel.errors import CondselError
from condsel.report.plots import plot_share
from condsel.report.provenance import read_provenance, versions
from condsel.report.tables import (
    ANALYSIS_TABLES,
    analysis_tables,
    classification_tables,
    localization_tables,
    paragraph,
    table,
)
from condsel.selection.evaluation.document import SummaryDocument

log = logging.getLogger(__name__)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# known parts of a demo run, in page order; other directories follow alphabetically
PARTS = {
    "ucf101": "UCF101: selection over five published models",
    "synthetic": "Synthetic video benchmark: the pool trained and timed here",
    "localization": "Localization: clip-level stream selection",
    "analyses": "Analyses",
}
ANALYSIS_TITLES = {
    "alpha_sweep": "Cost weight alpha: curves and affinity labels (Fig. 3a)",
    "views": "Test views per video (Fig. 3b)",
    "per_class": "Compute per class (Fig. 3c)",
    "backbones": "Selector backbone (Fig. 4a)",
    "latency": "Latency vs accuracy (Fig. 4b)",
    "diagnostics": "Selector diagnostics",
    "localization": "Localization: beta, pseudo-labels, disparity (Fig. 5)",
}
DEMO_REAL_AND_SYNTHETIC = (  # the demo's own parts only: other sections are described from their provenance
    "The demo's parts (ucf101/, synthetic/, localization/, analyses/). Real: the UCF101 per-video scores of five "
    "published models (DMC-Net/CoViAR, facebookresearch/dmc-net, MIT "
    "licence), video decoding and sampling, the model architectures and their FLOP counts (multiply-adds, counted "
    "from the graphs), the THUMOS'14 and MultiThumos annotations and the detection-mAP rules. "
    "Synthetic: the benchmark videos (generated, then encoded and decoded as real files), the weights of the "
    "synthetic pool and its selector (trained on CPU on those videos), and the untrimmed localization benchmark and "
    "its features. Latencies are measured on this machine. No number in these parts comes from a real video model on "
    "real video except the published UCF101 scores."
)
DATA_WORDS = {
    "real": "real: published per-video scores ({sources})",
    "synthetic": "synthetic: condsel's generated benchmark ({sources})",
    "user": "your data: scores read from {sources}; condsel records where they came from and makes no claim about "
            "what produced them",
    "unknown": "scores read from {sources}; condsel records where they came from and makes no claim about what produced them",
}
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1480px;padding:1.5em;
color:#1a1a1a;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:2px solid #0072B2;padding-bottom:.2em;margin-top:2em}
h3{margin-top:1.6em}table{border-collapse:collapse;margin:1em 0;font-size:.92em}
caption{text-align:left;font-weight:600;padding:.3em 0}th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right}
th{background:#eef4f9}td:first-child,th:first-child{text-align:left}figure{margin:1.2em 0}
img{max-width:100%;height:auto;border:1px solid #ddd}figcaption{font-size:.85em;color:#555}
.note{color:#444;font-size:.92em}.badge{display:inline-block;font-size:.75em;font-weight:700;padding:.1em .5em;
border-radius:.3em;margin-left:.6em;vertical-align:middle}.real{background:#009E73;color:#fff}
.synthetic{background:#E69F00;color:#000}.missing{color:#a33}pre{background:#f6f6f6;padding:.8em;overflow-x:auto}
nav ul{columns:2}
"""


@dataclass
class Section:
    directory: Path  # relative to the run directory
    document: SummaryDocument | None = None  # a classification summary.json
    summary: dict | None = None  # any other summary.json (localization)
    analyses: dict[str, dict] = field(default_factory=dict)
    images: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _order(rel: Path) -> tuple:
    top = rel.parts[0] if rel.parts else ""
    return (list(PARTS).index(top) if top in PARTS else len(PARTS), rel.as_posix())


def _read_json(path: Path, section: Section) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return data
    except (OSError, ValueError) as e:
        section.notes.append(f"{path.name} could not be read and is left out: {e}")
        log.warning("%s: unreadable, left out of the report: %s", path, e)
        return None


def discover(rundir: Path) -> list[Section]:
    """Sections for every directory under ``rundir`` holding a summary, an analysis output or a PNG."""
    sections: dict[Path, Section] = {}
    for path in sorted(rundir.rglob("*")):
        rel = path.relative_to(rundir)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        is_summary = path.name == "summary.json"
        is_analysis = path.suffix == ".json" and path.stem in ANALYSIS_TABLES
        if not (is_summary or is_analysis or path.suffix.lower() == ".png"):
            continue
        section = sections.setdefault(rel.parent, Section(rel.parent))
        if is_summary:
            _read_summary(path, section)
        elif is_analysis:
            data = _read_json(path, section)
            if data is not None:
                section.analyses[path.stem] = data
        else:
            section.images.append(path)
    return sorted(sections.values(), key=lambda s: _order(s.directory))


def _read_summary(path: Path, section: Section) -> None:
    """A classification summary becomes the typed document; a localization summary stays a dict."""
    data = _read_json(path, section)
    if data is None or "streams" in data:
        section.summary = data
        return
    try:
        section.document = SummaryDocument.from_json(data, path.name)
    except ValueError as e:
        section.notes.append(f"summary.json has an unexpected layout and its tables are left out: {e}")


def _data_kind(section: Section) -> str:
    """"real", "synthetic" or "" (not recorded), as the section's summary records it."""
    if section.document is not None:
        return section.document.provenance.data if section.document.provenance else ""
    return "synthetic" if section.summary and section.summary.get("synthetic") else ""


def _badge(kind: str) -> str:
    """A REAL / SYNTHETIC badge for a summary's recorded provenance, or an analysis' data note."""
    if kind == "synthetic":
        return '<span class="badge synthetic">SYNTHETIC</span>'
    if kind == "real":
        return '<span class="badge real">REAL published scores</span>'
    return ""


def _note_kind(data_note: str) -> str:
    note = data_note.lower()
    return "synthetic" if "synthetic" in note else "real" if "ucf101" in note else ""


def _image(path: Path, rundir: Path) -> str:
    rel = path.relative_to(rundir).as_posix()
    try:
        data = path.read_bytes()
        if not data.startswith(PNG_SIGNATURE):
            raise ValueError("not a PNG file")
    except (OSError, ValueError) as e:
        return paragraph(f"{rel}: left out ({e})", "note missing")
    return _figure(data, rel)


def _figure(png: bytes, caption: str) -> str:
    encoded = base64.b64encode(png).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{encoded}" alt="{escape(caption)}">'
            f"<figcaption>{escape(caption)}</figcaption></figure>")


def _share_chart(doc: SummaryDocument) -> str:
    """The recommended front's share per budget as a stacked bar chart, drawn from summary.json (older runs have no share)."""
    if not doc.recommended or any("share" not in p for p in doc.recommended):
        return ""
    buffer = io.BytesIO()
    plot_share(doc, buffer)
    return _figure(buffer.getvalue(), "recommended front: share of videos per member, per budget (from summary.json)")


def _summary_html(section: Section) -> str:
    """The tables of the section's classification document or localization summary."""
    try:
        if section.document is not None:
            return classification_tables(section.document) + _share_chart(section.document)
        return localization_tables(section.summary)
    except (KeyError, TypeError, ValueError) as e:
        return paragraph(f"summary.json has an unexpected layout and its tables are left out: {e!r}", "note missing")


def _section_html(section: Section, rundir: Path) -> str:
    rel = section.directory.as_posix()
    top = section.directory.parts[0] if section.directory.parts else ""
    title = PARTS.get(top, rel if rel != "." else "Run")
    if rel not in (".", top):
        title = f"{title}: {rel}"
    parts = [f'<section id="{escape(rel)}"><h2>{escape(title)}{_badge(_data_kind(section))}</h2>']
    parts += [paragraph(n, "note missing") for n in section.notes]
    if section.document is not None or section.summary is not None:
        parts.append(_summary_html(section))
    shown: set[Path] = set()
    for name, data in sorted(section.analyses.items(), key=lambda kv: list(ANALYSIS_TITLES).index(kv[0])):
        note = str(data.get("data", ""))
        parts.append(f"<h3>{escape(ANALYSIS_TITLES[name])}{_badge(_note_kind(note))}</h3>")
        if note:
            parts.append(paragraph(f"Data: {note}", "note"))
        try:
            parts.append(analysis_tables(name, data))
        except (KeyError, TypeError, ValueError) as e:
            parts.append(paragraph(f"{name}.json has an unexpected layout; its table is left out: {e!r}", "note missing"))
        png = rundir / section.directory / f"{name}.png"
        if png in section.images:
            parts.append(_image(png, rundir))
            shown.add(png)
    rest = [p for p in section.images if p not in shown]
    if rest:
        if section.analyses:
            parts.append("<h3>Other plots</h3>")
        parts += [_image(p, rundir) for p in rest]
    parts.append("</section>")
    return "\n".join(parts)


def _section_data(section: Section) -> str:
    """What the section's data is, in words, from what its outputs record; "" when they record nothing."""
    if section.document is not None:
        provenance = section.document.provenance
        if provenance is None:
            return "not recorded (its summary.json has no provenance)"
        return DATA_WORDS[provenance.data].format(sources="; ".join(provenance.sources))
    if section.summary is not None:
        return DATA_WORDS["synthetic"].format(sources="the untrimmed localization benchmark") if section.summary.get("synthetic") else ""
    notes = [f"{name}: {data['data']}" for name, data in section.analyses.items() if data.get("data")]
    return "; ".join(notes)


def _written_by_demo(rundir: Path) -> bool:
    try:
        doc = read_provenance(rundir)
    except ValueError:
        return False
    return bool(doc and doc["commands"] and doc["commands"][0].startswith("condsel demo"))


def _real_and_synthetic_html(sections: list[Section], rundir: Path) -> str:
    """Each section's data as its run recorded it; the demo's fixed wording only for a demo's own parts."""
    demo = _written_by_demo(rundir)
    parts = ['<section id="real-synthetic"><h2>What is real and what is synthetic</h2>']
    if demo:
        parts.append(paragraph(DEMO_REAL_AND_SYNTHETIC))
    items = []
    for section in sections:
        top = section.directory.parts[0] if section.directory.parts else ""
        if demo and top in PARTS:
            continue
        words = _section_data(section) or "not recorded (plots only)"
        items.append(f"<li>{escape(section.directory.as_posix())}: {escape(words)}</li>")
    if items:
        parts.append(f"<ul>{''.join(items)}</ul>")
    parts.append("</section>")
    return "\n".join(parts)


def _provenance_html(rundir: Path) -> str:
    parts = ['<section id="provenance"><h2>Commands and versions</h2>']
    try:
        doc = read_provenance(rundir)
    except ValueError as e:
        doc = None
        parts.append(paragraph(str(e), "note missing"))
    if doc:
        parts.append("<pre>" + escape("\n".join(doc["commands"])) + "</pre>")
        recorded = doc.get("versions", {})
        parts.append(table(["package", "version"], sorted(recorded.items()), "Versions the commands ran with"))
    else:
        parts.append(paragraph("This run directory has no provenance.json, so the commands that wrote it are not "
                               "recorded. The versions below are those that rendered this report.", "note missing"))
        parts.append(table(["package", "version"], sorted(versions().items()), "Versions that rendered this report"))
    parts.append("</section>")
    return "\n".join(parts)


def render_report(rundir: str | Path) -> str:
    """The report's HTML for ``rundir``; a directory holding no run is an error, not an empty page."""
    rundir = Path(rundir)
    if not rundir.is_dir():
        raise CondselError(f"{rundir}: not a directory")
    sections = discover(rundir)
    if not sections:
        looked_for = ", ".join(f"{name}.json" for name in ANALYSIS_TABLES)
        raise CondselError(f"{rundir}: no run to report: no summary.json, no analysis output ({looked_for}) "
                           "and no PNG anywhere under it")
    body = [f"<h1>condsel report: {escape(rundir.resolve().name)}</h1>",
            paragraph(f"Rendered {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} from {rundir.resolve()}. "
                      "GFLOPs are multiply-adds (1 multiply-add = 1 FLOP, the X3D/fvcore convention), per video for "
                      "classification and per clip for localization; accuracies in percent.", "note")]
    links = "".join(f'<li><a href="#{escape(s.directory.as_posix())}">{escape(s.directory.as_posix())}</a></li>'
                    for s in sections)
    body.append(f'<nav><ul><li><a href="#real-synthetic">what is real and what is synthetic</a></li>{links}'
                '<li><a href="#provenance">commands and versions</a></li></ul></nav>')
    body.append(_real_and_synthetic_html(sections, rundir))
    present = {s.directory.parts[0] for s in sections if s.directory.parts}
    if present & set(PARTS):
        for part in PARTS:
            if part not in present:
                body.append(paragraph(f"Not in this run: {part}/ ({PARTS[part]}); its section is skipped.", "note missing"))
    body += [_section_html(s, rundir) for s in sections]
    body.append(_provenance_html(rundir))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>condsel report: {escape(rundir.resolve().name)}</title><style>{STYLE}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def write_report(rundir: str | Path, out: str | Path | None = None) -> Path:
    """Write the report (default ``RUNDIR/report.html``) atomically; returns its path."""
    out = Path(out) if out is not None else Path(rundir) / "report.html"
    html = render_report(rundir)
    with atomic_path(out) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return out
