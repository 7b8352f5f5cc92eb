"""The online budget controller of ``condsel serve``: hold a mean cost per video, shed under load. No Ray, no I/O.

A run's calibration curve maps each threshold to the mean cost per video
expected on the calibration videos. On other traffic the selector's
confidences shift and the realised cost drifts (content drift). The
controller keeps a *setpoint* on the curve, serves at the threshold whose
expected cost is the setpoint, and corrects the setpoint from the realised
costs:

- integral control on the relative cost error: after every ``window``
  answers served at the current threshold, ``log setpoint += gain * (1 -
  realised mean / target)``, the mean taken over every answer since the last
  move (up to ``EVIDENCE_WINDOWS`` windows), the step clipped to ``max_step``
  (rate limit) and the setpoint to the curve's range (the calibration range
  bounds the threshold). The relative error, not the log error: per-video
  costs are heavy-tailed, and the log of a window mean is biased low, which
  made a log-error loop overspend by 30-60% in simulation;
- a deadband: no move while the error is within ``deadband`` or within one
  relative standard error of that mean (noise is not evidence; see
  ``_noise``);
- only answers served at the current threshold count, and the evidence
  restarts after every move, so a move is never based on answers from before
  it (no delay-driven overshoot).

If the realised cost is ``k * setpoint**s`` near the target (drift ``k``,
local elasticity ``s`` > 0), one move multiplies the error by about ``1 -
gain * s``: with ``gain`` 0.5 the error shrinks without changing sign for any
``s < 2``, i.e. no oscillation unless traffic spends more than twice as
steeply as calibration.

Shedding (``slo_s``): a second loop caps the operating cost. When the oldest
unanswered request has waited (``decide``), or the p99 of the last
end-to-end latencies (``observe``) is, past ``threaten`` x the SLO, the cap
drops to ``shed`` x the current operating cost (bounded by the cheapest
point), at most once per ``min_latencies`` requests. When the median latency
falls under ``relax`` x the SLO (and the p99 under ``threaten`` x), the cap
rises by ``recover`` until it no longer binds. Each move waits for
``min_latencies`` fresh latencies. While the cap binds, the budget loop
holds still (anti-windup).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from condsel.errors import CondselError

# The evidence for a move: every answer since the last one, up to this many windows.
EVIDENCE_WINDOWS = 16


@dataclass(frozen=True)
class OperatingCurve:
    """Expected cost per video against threshold, made non-decreasing; its inverse picks thresholds."""

    thresholds: np.ndarray  # ascending
    costs: np.ndarray  # expected cost per video, non-decreasing
    unit: str = "gflops"

    @classmethod
    def from_points(cls, points: Sequence[dict], key: str = "gflops", unit: str | None = None) -> OperatingCurve:
        """From a run's calibration points (``{"threshold", key, ...}``).

        A curve that falls somewhere (noise on few calibration videos) is
        replaced by its running maximum, so the inverse is well defined.
        """
        if len(points) < 2:
            raise CondselError(f"the calibration curve has {len(points)} point(s); the controller needs at least 2")
        ordered = sorted(points, key=lambda p: p["threshold"])
        t = np.array([float(p["threshold"]) for p in ordered])
        c = np.maximum.accumulate(np.array([float(p[key]) for p in ordered]))
        if not c[-1] > c[0]:
            raise CondselError(f"the calibration curve's cost does not vary with the threshold ({c[0]:.4g} {key} throughout)")
        return cls(t, c, unit or key)

    @property
    def cheapest(self) -> float:
        return float(self.costs[0])

    @property
    def costliest(self) -> float:
        return float(self.costs[-1])

    def cost_at(self, threshold: float) -> float:
        return float(np.interp(threshold, self.thresholds, self.costs))

    def threshold_for(self, cost: float) -> float:
        """The lowest threshold whose expected cost reaches ``cost`` (linear between calibration points)."""
        costs, first = np.unique(self.costs, return_index=True)
        return float(np.interp(cost, costs, self.thresholds[first]))

    def check_target(self, target: float, flag: str) -> float:
        """``target`` if it lies on the curve; else an error naming ``flag`` and the range."""
        if not (math.isfinite(target) and self.cheapest <= target <= self.costliest):
            raise CondselError(
                f"{flag} {target:g} is outside the run's operating range [{self.cheapest:.4g}, {self.costliest:.4g}] "
                f"{self.unit} per video (cheapest to costliest calibration point)"
            )
        return target


@dataclass(frozen=True)
class ControlSettings:
    window: int = 64
    gain: float = 0.5
    deadband: float = 0.05  # relative error left alone
    max_step: float = 0.5  # largest |log| change of the setpoint per move (rate limit)
    slo_s: float | None = None  # p99 end-to-end latency to keep under
    threaten: float = 0.4  # shed when the oldest wait or the p99 passes threaten * slo
    relax: float = 0.3  # return when the median latency < relax * slo (and p99 is under threaten * slo)
    shed: float = 0.6  # the cap's factor per shedding move
    recover: float = 1.25  # the cap's factor per returning move: slower up than down, so a burst is not re-invited
    min_latencies: int = 8

    def __post_init__(self):
        if self.window < 1:
            raise CondselError(f"--window {self.window}: must be >= 1")
        if self.slo_s is not None and not self.slo_s > 0:
            raise CondselError(f"--slo-ms {1000 * self.slo_s:g}: must be positive")
        if not 0 < self.gain <= 1 or not 0 < self.shed < 1 or not self.recover > 1 or not 0 < self.relax < self.threaten:
            raise CondselError(f"controller settings out of range: {self}")


class BudgetController:
    """Chooses the operating threshold of every request from the answers so far; see the module docstring.

    Parameters
    ----------
    curve : OperatingCurve
        The run's calibration curve, in the unit of ``target``.
    target : float, optional
        Mean cost per video to hold; without it the setpoint stays at
        ``threshold``'s expected cost (shedding only).
    threshold : float
        The run's operating threshold, used when there is no target.
    settings : ControlSettings
    """

    def __init__(self, curve: OperatingCurve, target: float | None = None, threshold: float = 0.5,
                 settings: ControlSettings = ControlSettings()):
        self.curve, self.target, self.settings = curve, target, settings
        self.setpoint = curve.cost_at(threshold) if target is None else target
        self.cap = curve.costliest
        self._costs: deque[float] = deque(maxlen=EVIDENCE_WINDOWS * settings.window)  # since the last move
        self._latencies: deque[float] = deque(maxlen=max(settings.window, settings.min_latencies))
        self.threshold = curve.threshold_for(self.operating_cost)
        self.moves = 0
        self._since_shed = 0
        self._rel_var_sum, self._windows = 0.0, 0
        self._served = 0  # answers counted at the current threshold

    @property
    def operating_cost(self) -> float:
        """The expected cost per video (on the calibration curve) at the current threshold."""
        return min(self.setpoint, self.cap)

    @property
    def shedding(self) -> bool:
        return self.cap < self.setpoint

    def decide(self, waiting_s: float = 0.0) -> float:
        """The threshold for a new request; ``waiting_s``: how long the oldest unanswered request has waited.

        That wait is the queue's leading edge: it grows as soon as a burst
        queues, where completed latencies only show the burst once it has
        been served. Past ``threaten`` x the SLO it sheds, at most once per
        ``min_latencies`` requests.
        """
        s = self.settings
        self._since_shed += 1
        if (s.slo_s is not None and waiting_s > s.threaten * s.slo_s and self._since_shed >= s.min_latencies
                and self.operating_cost > self.curve.cheapest):
            self._shed()
            return self._moved()
        return self.threshold

    def observe(self, threshold: float, cost: float, seconds: float) -> float:
        """Take one answer (the threshold it was served at, its realised cost, its latency); return the threshold to use next."""
        s = self.settings
        if s.slo_s is not None:
            self._latencies.append(seconds)
            if len(self._latencies) >= s.min_latencies and self._shed_or_relax(np.asarray(self._latencies)):
                self._latencies.clear()
                return self._moved()
        if self.target is None or self.shedding or threshold != self.threshold:
            return self.threshold
        self._costs.append(cost)
        self._served += 1
        if self._served % s.window:  # judge once per window of answers, on every answer since the last move
            return self.threshold
        costs = np.asarray(self._costs)
        mean = float(costs.mean())
        error = 1.0 - mean / self.target  # relative, not log: zero in expectation exactly when the mean is on target
        if abs(error) <= max(s.deadband, self._noise(costs, mean)):
            return self.threshold
        step = float(np.clip(s.gain * error, -s.max_step, s.max_step))
        self.setpoint = float(np.clip(self.setpoint * math.exp(step), self.curve.cheapest, self.curve.costliest))
        return self._moved()

    def _noise(self, costs: np.ndarray, mean: float) -> float:
        """The relative standard error of the window's mean cost.

        Per-video costs are heavy-tailed (a few videos reach a member that
        costs 100x the backbone): a window that happens to hold none of them
        has a small spread of its own. So the relative variance is the larger
        of this window's and the mean over every window seen so far.
        """
        if len(costs) < 2 or mean <= 0:
            return 0.0
        rel_var = float(costs.var(ddof=1)) / mean**2
        self._rel_var_sum += rel_var
        self._windows += 1
        return math.sqrt(max(rel_var, self._rel_var_sum / self._windows) / len(costs))

    def _shed_or_relax(self, latencies: np.ndarray) -> bool:
        """Shed on the p99; return on the median (a p99 of a few answers is their maximum, which an unloaded
        service's tail alone can keep above ``relax`` x the SLO) while the p99 is not threatening."""
        s, curve = self.settings, self.curve
        p50, p99 = np.percentile(latencies, [50, 99])
        if p99 > s.threaten * s.slo_s and self.operating_cost > curve.cheapest and self._since_shed >= s.min_latencies:
            self._shed()
            return True
        if p50 < s.relax * s.slo_s and p99 <= s.threaten * s.slo_s and self.shedding:
            self.cap = self.cap * s.recover
            if self.cap >= self.setpoint:
                self.cap = curve.costliest
            return True
        return False

    def _shed(self) -> None:
        self.cap = max(self.curve.cheapest, self.settings.shed * self.operating_cost)
        self._since_shed = 0
        self._latencies.clear()

    def _moved(self) -> float:
        self.threshold = self.curve.threshold_for(self.operating_cost)
        self._costs.clear()
        self._served = 0
        self.moves += 1
        return self.threshold

    def state(self) -> dict:
        """For ``GET /v1/models`` and the logs; keys name the unit."""
        u = self.curve.unit
        return {"threshold": self.threshold, f"target_{u}": self.target, f"setpoint_{u}": self.setpoint,
                f"cap_{u}": self.cap, "shedding": self.shedding, "window": self.settings.window,
                "slo_ms": None if self.settings.slo_s is None else 1000 * self.settings.slo_s, "moves": self.moves}
