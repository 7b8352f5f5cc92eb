"""Headline figures that compare the selector's curve with single models and the oracle."""

from __future__ import annotations

import numpy as np

from condsel.selection.method.curves import curve_at, pareto_front, upper_hull


def headline_figures(
    selector: tuple[np.ndarray, np.ndarray],
    singles: tuple[np.ndarray, np.ndarray],
    oracle: tuple[np.ndarray, np.ndarray],
    grid_points: int = 512,
) -> dict:
    """Costs-to-match, gain-at-cost and the share of the oracle's lead over the hull that the selector closes.

    The gap closed is the signed area between the selector's Pareto front and
    the single-model hull, over the costs where the oracle is above the hull,
    divided by the oracle's area there. 1 = oracle, 0 = no better than mixing
    single models, negative = worse.

    Each argument is (costs, accuracies). ``None`` marks a figure that does not
    exist (e.g. the selector never reaches the best single model).
    """
    sel_c, sel_a = (np.asarray(x, dtype=np.float64) for x in selector)
    one_c, one_a = (np.asarray(x, dtype=np.float64) for x in singles)
    best = int(np.lexsort((one_c, -one_a))[0])  # most accurate, cheapest on ties
    best_c, best_a = one_c[best], one_a[best]
    reaching = sel_c[sel_a >= best_a - 1e-12]
    match = float(reaching.min()) if reaching.size else None
    affordable = sel_a[sel_c <= best_c]
    gain = float(affordable.max() - best_a) if affordable.size else None

    hull_c, hull_a = upper_hull(one_c, one_a)
    front_c, front_a = pareto_front(sel_c, sel_a)
    orc_c, orc_a = (np.asarray(x, dtype=np.float64) for x in oracle)
    lo = max(front_c[0], hull_c[0], orc_c[0])
    hi = front_c[-1]
    closed = None
    if hi > lo:
        grid = np.linspace(lo, hi, grid_points)
        hull_at = curve_at(hull_c, hull_a, grid)
        lead = curve_at(orc_c, orc_a, grid) - hull_at
        ahead = lead > 0  # where the oracle beats the hull; elsewhere there is no gap to close
        if ahead.any():
            gained = np.where(ahead, curve_at(front_c, front_a, grid) - hull_at, 0.0)
            closed = float(np.trapezoid(gained, grid) / np.trapezoid(np.where(ahead, lead, 0.0), grid))
    return {
        "best_index": best,
        "best_accuracy": float(best_a),
        "best_gflops": float(best_c),
        "gflops_to_match_best": match,
        "gflops_ratio_to_match_best": None if match is None else match / float(best_c),
        "accuracy_gain_at_best_gflops": gain,
        "oracle_gap_closed": closed,
    }
