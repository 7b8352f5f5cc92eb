"""The budget controller on simulated traffic (no Ray): it holds a target under drift, without oscillating, and sheds.

The simulated pool is a two-member selector: the backbone costs 1 per video,
the costly member 19 more. On the calibration videos a threshold t sends a
share t of the videos to the costly member, so the calibration curve is
cost(t) = 1 + 19 t. Drifted traffic sends share(t) != t: the fixed threshold
then misses its budget, which is what the controller must correct.
"""

from __future__ import annotations

import heapq
import math

import numpy as np
import pytest

from condsel.errors import CondselError
from condsel.serve.control import BudgetController, ControlSettings, OperatingCurve

CHEAP, EXTRA = 1.0, 19.0
CURVE = OperatingCurve.from_points([{"threshold": t, "gflops": CHEAP + EXTRA * t, "top1": 50 + 30 * t} for t in np.linspace(0, 1, 21)])
TARGET = 8.0
DRIFTS = {"less confident traffic": lambda t: min(1.0, 1.5 * t), "more confident traffic": lambda t: t**1.5}


def test_curve_inverts_its_expected_cost_and_flattens_noise():
    assert CURVE.threshold_for(TARGET) == pytest.approx(7 / 19)
    assert CURVE.cost_at(CURVE.threshold_for(12.3)) == pytest.approx(12.3)
    noisy = OperatingCurve.from_points([{"threshold": 0.0, "gflops": 1.0}, {"threshold": 0.5, "gflops": 3.0},
                                        {"threshold": 0.6, "gflops": 2.5}, {"threshold": 1.0, "gflops": 5.0}])
    assert list(noisy.costs) == [1.0, 3.0, 3.0, 5.0]  # the running maximum
    assert noisy.threshold_for(3.0) == pytest.approx(0.5)  # the lowest threshold reaching it


@pytest.mark.parametrize("drift", sorted(DRIFTS))
def test_on_expected_costs_the_controller_converges_monotonically(drift):
    share = DRIFTS[drift]
    fixed = CHEAP + EXTRA * share(CURVE.threshold_for(TARGET))
    assert abs(fixed / TARGET - 1) > 0.2  # the drift is real: the offline threshold misses by more than 20%
    control = BudgetController(CURVE, TARGET, settings=ControlSettings(window=20))
    errors = [math.log(TARGET / fixed)]
    for _ in range(2000):
        t = control.threshold
        moves = control.moves
        control.observe(t, CHEAP + EXTRA * share(t), 0.01)
        if control.moves > moves:
            realised = CHEAP + EXTRA * share(control.threshold)
            errors.append(math.log(TARGET / realised))
    assert abs(errors[-1]) <= 0.05  # within the deadband, so inside the +-10% goal
    assert all(np.sign(e) == np.sign(errors[0]) for e in errors[:-1])  # no overshoot before it settles
    assert all(abs(b) < abs(a) for a, b in zip(errors, errors[1:]))  # each move reduces the error
    assert len(errors) <= 8


@pytest.mark.parametrize("drift", sorted(DRIFTS))
def test_on_random_traffic_the_mean_holds_within_10_percent_and_the_threshold_settles(drift):
    share, rng = DRIFTS[drift], np.random.default_rng(0)
    control = BudgetController(CURVE, TARGET, settings=ControlSettings(window=64))
    costs, thresholds = [], []
    for _ in range(8000):
        t = control.threshold
        cost = CHEAP + EXTRA * (rng.random() < share(t))
        control.observe(t, cost, 0.01)
        costs.append(cost)
        thresholds.append(t)
    late = np.array(costs[2000:])
    assert abs(late.mean() / TARGET - 1) < 0.10
    for block in np.array_split(late, 6):  # every 1000-answer stretch holds the target, not only the average
        assert abs(block.mean() / TARGET - 1) < 0.10
    assert np.std(thresholds[2000:]) < 0.05  # it settles; a limit cycle would swing the threshold widely


def test_heavy_tailed_costs_are_held_on_average_not_overspent():
    # A costly member at 400x the backbone that few videos reach: a window's mean is mostly "backbone only" with
    # rare spikes. A loop on the log of the window mean settles where the *geometric* mean of window means is on
    # target, i.e. overspends; on the relative error it is unbiased.
    curve = OperatingCurve.from_points([{"threshold": t, "gflops": 1 + 399 * t} for t in np.linspace(0, 1, 101)])
    share, rng, target = (lambda t: min(1.0, 1.5 * t)), np.random.default_rng(0), 20.0
    fixed = 1 + 399 * share(curve.threshold_for(target))
    assert fixed / target - 1 > 0.4  # the fixed threshold overspends by over 40%
    control = BudgetController(curve, target, settings=ControlSettings(window=64))
    costs = []
    for _ in range(20000):
        t = control.threshold
        costs.append(1 + 399 * (rng.random() < share(t)))
        control.observe(t, costs[-1], 0.01)
    assert abs(np.mean(costs[4000:]) / target - 1) < 0.10


def test_targets_outside_the_curve_and_bad_settings_are_refused():
    with pytest.raises(CondselError, match=r"--target-gflops 0\.5 is outside .*\[1, 20\] gflops"):
        CURVE.check_target(0.5, "--target-gflops")
    with pytest.raises(CondselError, match="outside"):
        CURVE.check_target(20.5, "--target-gflops")
    assert CURVE.check_target(20.0, "--target-gflops") == 20.0
    with pytest.raises(CondselError, match="--slo-ms -5: must be positive"):
        ControlSettings(slo_s=-0.005)
    with pytest.raises(CondselError, match="--window 0"):
        ControlSettings(window=0)
    with pytest.raises(CondselError, match="does not vary"):
        OperatingCurve.from_points([{"threshold": 0.0, "gflops": 2.0}, {"threshold": 1.0, "gflops": 2.0}])


def simulate_load(control: BudgetController, phases, ms_per_cost: float, rng) -> list[dict]:
    """One FIFO server, service time = cost x ``ms_per_cost``; ``phases`` = [(requests, per second)].

    Each request's threshold is the controller's decision when it arrives, told
    how long the oldest unanswered request has waited; the controller hears of
    an answer when it completes (before later arrivals), as in serve.
    """
    now, free, pending, out = 0.0, 0.0, [], []
    for phase, (count, rate) in enumerate(phases):
        for _ in range(count):
            now += 1.0 / rate
            while pending and pending[0][0] <= now:
                done, arrived, t, cost = heapq.heappop(pending)
                control.observe(t, cost, done - arrived)
            t = control.decide(now - pending[0][1] if pending else 0.0)
            cost = CHEAP + EXTRA * (rng.random() < t)
            free = max(free, now) + cost * ms_per_cost / 1000
            heapq.heappush(pending, (free, now, t, cost))
            out.append({"phase": phase, "latency": free - now, "threshold": t, "cost": cost})
    return out


def test_shedding_keeps_p99_under_the_slo_in_a_burst_and_returns_after_it():
    # Service 1 ms per unit of cost. At threshold 0.5 a video costs 10.5 ms on average (95 videos/s at most):
    # 40 requests/s is light, 160/s is 4x and overloads it; the cheapest point (1 ms) carries 160/s easily.
    phases = [(400, 40.0), (1600, 160.0), (400, 40.0)]
    slo = 0.25
    results = {}
    for name, settings in {"fixed": None, "shedding": ControlSettings(window=32, slo_s=slo)}.items():
        control = BudgetController(CURVE, threshold=0.5, settings=settings or ControlSettings())
        out = simulate_load(control, phases, 1.0, np.random.default_rng(1))
        results[name] = {p: [r for r in out if r["phase"] == p] for p in range(3)}
        if settings is not None:
            assert control.threshold == pytest.approx(0.5)  # back at the accurate operating point
            assert not control.shedding
    p99 = {name: np.percentile([r["latency"] for r in phases_[1]], 99) for name, phases_ in results.items()}
    assert p99["fixed"] > 4 * slo  # the fixed threshold breaks the SLO in the burst
    assert p99["shedding"] < slo
    shed_burst = results["shedding"][1]
    assert np.mean([r["threshold"] for r in shed_burst]) < 0.4  # it paid for that with cheaper operating points
    assert np.mean([r["threshold"] for r in results["shedding"][2][-100:]]) == pytest.approx(0.5)
