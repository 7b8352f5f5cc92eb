"""The headline of a ``summary.json`` as a few lines of text."""

from __future__ import annotations

from condsel.selection.evaluation.document import SummaryDocument


def _fmt(value, spec: str, none: str = "not reached") -> str:
    return none if value is None else format(value, spec)


def format_summary(doc: SummaryDocument) -> str:
    """A few lines a person reads in the terminal."""
    metric = doc.metric
    label = {"top1": "top-1", "map": "mAP"}.get(metric, metric)
    head = doc.headline
    head_lines: list[str] = []
    recommended = doc.recommended or []
    if recommended:
        head_lines.append(f"recommended front: what each budget gets (policy and setting chosen on the training folds, held-out {label}):")
        shown = sorted(set(range(0, len(recommended), max(1, len(recommended) // 6))) | {len(recommended) - 1})
        for point in (recommended[i] for i in shown):
            head_lines.append(
                f"  budget {point['budget']:7.1f} GFLOPs: {point['policy']:<18} reached {point['gflops']:7.1f} GFLOPs, {label} {point[metric]:.2f}%"
            )
    lines = head_lines + [f"{'model':<14}{'GFLOPs/video':>14}{label + ' %':>10}"]
    for name, m in doc.models.items():
        tag = "  (backbone)" if name == doc.backbone else ""
        lines.append(f"{name:<14}{m['gflops']:>14.4g}{m[metric]:>10.2f}{tag}")
    best = head.best_model
    ci = head.ci95 or {}

    def interval(key: str, spec: str, value) -> str:
        """The CI beside a figure; none beside n/a (replicates can define what the full sample does not)."""
        c = ci.get(key)
        if value is None or not c or c["low"] is None:
            return ""
        return f" [95% CI {c['low']:{spec}}, {c['high']:{spec}}]"

    gain_key = f"{metric}_gain_at_best_gflops"  # the CI's key
    lines += [
        f"selector on {doc.backbone} ({doc.protocol['kind']}):",
        f"  reaches {best}'s {label} ({head.best_accuracy:.2f}%) at "
        f"{_fmt(head.gflops_to_match_best, '.4g')} GFLOPs = "
        f"{_fmt(head.gflops_ratio_to_match_best, '.3f')}x its cost{interval('gflops_ratio_to_match_best', '.3f', head.gflops_ratio_to_match_best)}",
        f"  {label} gain at <= {best}'s GFLOPs: {_fmt(head.accuracy_gain_at_best_gflops, '+.2f', 'n/a')} points"
        f"{interval(gain_key, '+.2f', head.accuracy_gain_at_best_gflops)}",
        "  share of the oracle's lead over the single-model hull closed: "
        + ("n/a for mAP (a per-sample oracle does not bound mAP)" if metric == "map" else
           f"{_fmt(head.oracle_gap_closed, '.3f', 'n/a')}{interval('oracle_gap_closed', '.3f', head.oracle_gap_closed)}"),
    ]
    for b in doc.budget:
        lines.append(
            f"  this selector alone at budget {b['target_gflops']:.1f} GFLOPs (threshold picked on training folds): "
            f"reached {b['reached_gflops']:.1f} GFLOPs, {label} {b['accuracy']:.2f}%"
        )
    lines += [f"warning: {w}" for w in doc.warnings or []]
    return "\n".join(lines)
