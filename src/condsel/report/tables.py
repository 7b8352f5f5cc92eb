"""HTML tables of a run's summaries and analyses; every cell is escaped text.

One function per kind of ``summary.json`` (classification, localization) and
per analysis output; each returns an HTML fragment, or "" when its input lacks
what it needs, so the report shows whatever a run holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

import numpy as np

from condsel.analysis.operating import best_point, matching_point
from condsel.selection.method.curves import curve_at
from condsel.selection.evaluation.document import SummaryDocument

METRIC_NAMES = {"top1": "top-1 %", "map": "mAP %"}


def num(value, digits: int = 2) -> str:
    """Fixed decimals; three significant digits for magnitudes below 0.1 (the synthetic pool's GFLOPs)."""
    if value is None or not np.isfinite(float(value)):
        return "–"
    value = float(value)
    if abs(value) < 1e-9:  # rounding noise, e.g. the spread of identical draws
        value = 0.0
    return f"{value:.3g}" if 0 < abs(value) < 0.1 else f"{value:.{digits}f}"


def gflops(value) -> str:
    return num(value, 1 if value is not None and abs(float(value)) >= 10 else 2)


def table(headers: Sequence[str], rows: Sequence[Sequence], caption: str = "") -> str:
    head = "".join(f"<th>{escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    cap = f"<caption>{escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def paragraph(text: str, cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    return f"<p{attr}>{escape(text)}</p>"


def _interval(ci: dict, key: str, fmt) -> str:
    c = ci.get(key) or {}
    if c.get("low") is None:
        return "–"
    return f"[{fmt(c['low'])}, {fmt(c['high'])}]"


def _at(points: list[dict], cost: float, metric: str) -> float | None:
    """A curve's value at ``cost`` (linear in between, NaN before its start)."""
    if not points:
        return None
    c = np.array([p["gflops"] for p in points], dtype=np.float64)
    a = np.array([p[metric] for p in points], dtype=np.float64)
    order = np.argsort(c, kind="stable")
    value = float(curve_at(c[order], a[order], np.array([cost]))[0])
    return None if np.isnan(value) else value


def _operating_points(doc: SummaryDocument, metric: str) -> list[tuple[str, dict]]:
    """Named points of the selector's sweep: where it first matches the best single model, and its best."""
    sel = doc.curves.selector
    match = matching_point(sel, doc.headline.best_accuracy, metric)
    named = [("cheapest point matching the best single model", match)] if match else []
    return named + [("most accurate point", best_point(sel, metric))]


LEAD_ROWS = (6, 8)  # the fewest and most budgets the recommended front leads with
KNEE_POINTS = 0.5  # the knee: the cheapest budget within this many points of the ceiling


def lead_budgets(points: list[dict], costs: dict[str, float], metric: str) -> dict[int, str]:
    """The recommended points a reader takes in first (index -> why), in budget order; the rest are folded away.

    Each member's cost (the last budget within it), the knee (the cheapest
    point within ``KNEE_POINTS`` of the ceiling) and the ceiling (the most
    accurate point, the cheapest of equals), at most ``LEAD_ROWS[1]``: the
    knee, the ceiling and the cheapest budget stay, member costs are thinned
    evenly. Fewer than ``LEAD_ROWS[0]`` are filled with budgets evenly spread
    in between.
    """
    budgets = np.array([p["budget"] for p in points], dtype=np.float64)
    values = np.array([p[metric] for p in points], dtype=np.float64)
    ceiling = int(np.flatnonzero(values == values.max())[0])
    knee = int(np.flatnonzero(values >= values.max() - KNEE_POINTS)[0])
    at_cost: dict[int, list[str]] = {}
    for member, cost in sorted(costs.items(), key=lambda kv: (kv[1], kv[0])):
        within = np.flatnonzero(budgets <= cost * (1 + 1e-9))
        if within.size:
            at_cost.setdefault(int(within[-1]), []).append(member)
    keep = {0, knee, ceiling}
    spare = [i for i in sorted(at_cost) if i not in keep]
    room = LEAD_ROWS[1] - len(keep)
    keep |= set(spare if len(spare) <= room else [spare[int(j)] for j in np.linspace(0, len(spare) - 1, room).round()])
    for i in np.linspace(0, len(points) - 1, min(LEAD_ROWS[0] + 2, len(points))).round().astype(int):
        if len(keep) >= min(LEAD_ROWS[0], len(points)):
            break
        keep.add(int(i))
    why = {i: [f"cost of {', '.join(at_cost[i])}"] if i in at_cost else [] for i in sorted(keep)}
    why[knee].append(f"knee: within {KNEE_POINTS} of the ceiling")
    why[ceiling].append("ceiling")
    return {i: "; ".join(reasons) for i, reasons in why.items()}


def share_text(share: dict[str, float] | None) -> str:
    """A point's ``share``, largest first, members at 0 left out: "iframe 62%, flow 38%"."""
    if not share:
        return "–"
    shown = sorted(((f, m) for m, f in share.items() if f > 0), reverse=True)
    return ", ".join(f"{m} {100 * f:.0f}%" for f, m in shown)


def recommended_table(doc: SummaryDocument) -> str:
    """The recommended front: a few budgets a reader takes in (:func:`lead_budgets`), then every budget folded away.

    Each row sits beside the paper's selector (same nested protocol), the
    static hull and the oracles, and says where its videos ended (``share``).
    """
    lead = lead_budgets(doc.recommended, {m: v["gflops"] for m, v in doc.models.items()}, doc.metric)
    headers, rows = _recommended_rows(doc, lead)
    caption = ("Recommended front: per budget, the policy and setting chosen on the training folds only (nested), reported "
               "held out; beside it the paper's selector under the same protocol, the hull of static choices and the oracles")
    return (table(headers, [rows[i] for i in lead], f"{caption}. The budgets at each member's cost, the knee and the ceiling")
            + f"<details><summary>All {len(rows)} budgets of the recommended front</summary>{table(headers, rows, caption)}</details>")


def _recommended_rows(doc: SummaryDocument, lead: dict[int, str]) -> tuple[list[str], list[list[str]]]:
    metric = doc.metric
    label = METRIC_NAMES.get(metric, metric)
    paper = {p["budget"]: p for p in doc.selector_budgets or []}
    rows = []
    for i, p in enumerate(doc.recommended):
        ci = p.get("ci95") or {}
        own = paper.get(p["budget"])
        rows.append([
            gflops(p["budget"]) + (f" ({lead[i]})" if lead.get(i) else ""), p["policy"], gflops(p["gflops"]),
            f"{num(p[metric])} {_interval({'x': ci}, 'x', num)}",
            f"{num(own[metric])} @ {gflops(own['gflops'])}" if own else "–",
            num(_at(doc.static_hull or [], p["gflops"], metric)),
            num(_at(doc.fusion_oracle or [], p["gflops"], metric)),
            num(_at(doc.curves.oracle, p["gflops"], metric)),
            share_text(p.get("share")),
        ])
    headers = ["budget GFLOPs", "policy chosen", "GFLOPs reached", f"recommended {label} [95% CI]",
               f"paper's selector {label} @ GFLOPs", f"static hull {label}", f"fusion-aware oracle {label}",
               f"oracle over the backbone's pool {label}", "videos ended at (share)"]
    return headers, rows


def classification_tables(doc: SummaryDocument) -> str:
    """The recommended front first (when there is one), then single models, the selector at its operating points
    against random and oracle, and the headline figures with CIs."""
    metric = doc.metric
    label = METRIC_NAMES.get(metric, metric)
    parts = [recommended_table(doc)] if doc.recommended else []
    rows = [
        [name + (" (backbone)" if name == doc.backbone else ""), gflops(m["gflops"]), num(m[metric]),
         num(m["top5"]) if "top5" in m else "–"]
        for name, m in doc.models.items()
    ]
    parts.append(table(["model", "GFLOPs/video", label, "top-5 %"], rows, "Single models, each run alone"))

    curves = doc.curves
    rows = []
    for name, p in _operating_points(doc, metric):
        rand = _at(curves.random, p["gflops"], metric)
        orc = _at(curves.oracle, p["gflops"], metric)
        hull = _at(curves.hull, p["gflops"], metric)
        rows.append([name, num(p["threshold"], 3), gflops(p["gflops"]), num(p[metric]), num(rand), num(orc), num(hull)])
    for b in doc.budget:
        t = b.get("thresholds") or []
        rows.append([
            f"budget {gflops(b['target_gflops'])} GFLOPs (threshold picked on training data)",
            num(float(np.mean(t)), 3) if t else "–", gflops(b["reached_gflops"]), num(b["accuracy"]),
            num(_at(curves.random, b["reached_gflops"], metric)),
            num(_at(curves.oracle, b["reached_gflops"], metric)),
            num(_at(curves.hull, b["reached_gflops"], metric)),
        ])
    parts.append(table(
        ["operating point", "threshold", "GFLOPs/video", f"selector {label}", f"random {label}", f"oracle {label}",
         f"single-model hull {label}"],
        rows,
        "The selector at chosen operating points, and random selection (same per-model shares), the oracle and the "
        "hull of single models at the same GFLOPs/video",
    ))

    head = doc.headline
    ci = head.ci95 or {}
    gain = f"{metric}_gain_at_best_gflops"  # the CI's key
    rows = [
        [f"GFLOPs to reach {head.best_model}'s {label} ({num(head.best_accuracy)})",
         gflops(head.gflops_to_match_best), "–"],
        ["… as a share of its cost", num(head.gflops_ratio_to_match_best, 3),
         _interval(ci, "gflops_ratio_to_match_best", lambda v: num(v, 3))],
        [f"{label} gain at ≤ {head.best_model}'s GFLOPs", num(head.accuracy_gain_at_best_gflops), _interval(ci, gain, num)],
        ["share of the oracle's lead over the hull closed", num(head.oracle_gap_closed, 3),
         _interval(ci, "oracle_gap_closed", lambda v: num(v, 3))],
    ]
    replicates = ci.get("replicates")
    parts.append(table(["headline figure", "value", "95% bootstrap CI"], rows,
                       f"Headline figures ({replicates} bootstrap replicates)" if replicates else "Headline figures"))
    protocol = doc.protocol
    parts.append(paragraph(
        f"Protocol: {protocol.get('kind', 'unknown')}; {protocol.get('samples', '?')} samples; "
        f"backbone {doc.backbone}; alpha = {doc.alpha}; affinity {doc.affinity}; "
        f"selector input {doc.selector_input}; selector {gflops(doc.selector_gflops)} GFLOPs. "
        f"{doc.flop_convention}", "note"))
    if doc.provenance is not None:
        parts.append(paragraph(f"Data ({doc.provenance.data}): {'; '.join(doc.provenance.sources)}.", "note"))
    if doc.cost_derivation:
        parts.append("<details><summary>How the GFLOPs were derived</summary><pre>"
                     + escape("\n".join(doc.cost_derivation)) + "</pre></details>")
    if doc.latency:
        parts.append(latency_table(doc.latency))
    return "\n".join(parts)


def latency_table(latency: dict) -> str:
    rows = []
    for mode, entry in latency.items():
        if isinstance(entry, dict) and "seconds_per_video" in entry:
            rows.append([mode.replace("_", " "), num(1000 * entry["seconds_per_video"]), gflops(entry.get("gflops")),
                         num(entry["threshold"], 3) if "threshold" in entry else "–", entry.get("batch_size", 1)])
    caption = (f"Measured latency ({latency.get('videos', '?')} videos, {latency.get('torch_threads', '?')} torch "
               f"thread(s); {latency.get('includes', '')}); wall-clock speedup {num(latency.get('wall_speedup'))}x "
               f"for a GFLOPs speedup of {num(latency.get('gflops_speedup'))}x")
    return table(["mode", "ms/video", "GFLOPs/video", "threshold", "batch"], rows, caption)


def localization_tables(summary: dict) -> str:
    streams = summary.get("streams", {})
    rows = [[name, gflops(s.get("gflops")), num(s.get("map"))] for name, s in streams.items()]
    parts = [table(["stream", "GFLOPs/clip", "average mAP %"], rows, "Each stream alone, and both on every clip")]
    curves = summary.get("curves", {})
    sel, rnd = curves.get("selector", []), curves.get("random", [])
    rows = [
        [num(p.get("threshold"), 3), num(100 * p.get("motion_share", float("nan")), 1), gflops(p["gflops"]), num(p["map"]),
         f"{num(r['map'])} ± {num(r.get('map_std'))}" if r else "–"]
        for p, r in zip(sel, rnd + [None] * (len(sel) - len(rnd)))
    ]
    sweep = table(["threshold", "clips to motion %", "GFLOPs/clip", "selector mAP %", "random mAP % (mean ± sd)"],
                  rows, "Clip selector sweep against random clip selection at the same motion share")
    parts.append(f"<details><summary>The clip selector's sweep ({len(rows)} points)</summary>{sweep}</details>")
    if "selector_above_random_fraction" in summary:
        parts.append(paragraph(f"The selector is above random over {num(100 * summary['selector_above_random_fraction'], 0)}% "
                               "of the GFLOPs range both curves span.", "note"))
    return "\n".join(parts)


def analysis_tables(name: str, data: dict) -> str:
    """The key numbers of one analysis output (``<name>.json``); "" for an unknown name."""
    render = ANALYSIS_TABLES.get(name)
    return render(data) if render else ""


def _alpha(data: dict) -> str:
    pool = data["pool"]
    rows = []
    curves = {c["alpha"]: c for c in data.get("curves", [])}
    for r in data["labels"]:
        head = curves.get(r["alpha"], {}).get("headline", {})
        rows.append([num(r["alpha"])] + [num(100 * r["share"][m], 1) for m in pool]
                    + [gflops(r["mean_routed_gflops"]), gflops(head.get("gflops_to_match_best"))])
    return table(["alpha"] + [f"{m} labels %" for m in pool] + ["GFLOPs/video of the labels", "selector GFLOPs to match best"],
                 rows, "Affinity labels per alpha, and the cross-validated selector trained on them")


def _per_class(data: dict) -> str:
    by_name = {r["class"]: r for r in data["classes"]}
    rows = [[kind, n, gflops(by_name[n]["gflops"]), num(by_name[n]["top1"]), num(by_name[n]["backbone_top1"])]
            for kind, names in (("cheapest", data["cheapest"]), ("costliest", data["costliest"])) for n in names]
    return table(["", "class", "GFLOPs/video", "top-1 %", "backbone alone top-1 %"], rows,
                 f"Cheapest and costliest classes at threshold {num(data['threshold'], 3)} "
                 f"(all classes: {gflops(data['overall']['gflops'])} GFLOPs/video, top-1 {num(data['overall']['top1'])}%)")


def _backbones(data: dict) -> str:
    metric = data["metric"]
    rows = [[name, gflops(b["gflops"]), num(b[metric]), gflops(b["headline"].get("gflops_to_match_best")),
             num(b["headline"].get(f"{metric}_gain_at_best_gflops")), num(b["headline"].get("oracle_gap_closed"), 3)]
            for name, b in data["backbones"].items()]
    return table(["backbone", "GFLOPs/video", f"alone {METRIC_NAMES.get(metric, metric)}", "GFLOPs to match best",
                  "gain at best's GFLOPs", "oracle gap closed"], rows, "The same pool with the selector on each backbone")


def _latency(data: dict) -> str:
    rows = [[p["label"], num(1000 * p["seconds_per_video"]), gflops(p["gflops"]), num(p["top1"])] for p in data["points"]]
    return table(["mode", "ms/video", "GFLOPs/video", "top-1 %"], rows, f"Latency and accuracy ({data['accuracy_from']})")


def _diagnostics(data: dict) -> str:
    rows = [["top model = affinity label", num(data["reliability_vs_label"]["ece"], 3),
             num(100 * data["top_model_agreement"], 1)],
            ["(always the commonest label)", "–", num(100 * data["majority_label_rate"], 1)]]
    if data.get("reliability_vs_correct"):
        rows.append(["top model classifies correctly", num(data["reliability_vs_correct"]["ece"], 3), "–"])
    return table(["event", "expected calibration error", "rate %"], rows, "Selector calibration (out-of-fold)")


def _views(data: dict) -> str:
    rows = [[name, f"{p['clips']} x {p['crops']}", gflops(p["gflops"]), f"{num(p['top1'])} ± {num(p['top1_std'])}"]
            for name, m in data["models"].items() for p in m["points"]]
    return table(["model", "clips x crops", "GFLOPs/video", "top-1 % (mean ± sd over draws)"], rows, "Test views per video")


def _localization(data: dict) -> str:
    rows = [[num(r["beta"]), r["variant"], num(100 * r["motion_label_share"], 1),
             num(100 * r["selector_above_random_fraction"], 0), num(max(p["map"] for p in r["selector"]))]
            for r in data["runs"]]
    return table(["beta", "labels", "training clips labelled motion %", "selector above random on % of GFLOPs",
                  "best selector mAP %"], rows, "Clip selector per beta and label variant")


ANALYSIS_TABLES = {
    "alpha_sweep": _alpha,
    "per_class": _per_class,
    "backbones": _backbones,
    "latency": _latency,
    "diagnostics": _diagnostics,
    "views": _views,
    "localization": _localization,
}
