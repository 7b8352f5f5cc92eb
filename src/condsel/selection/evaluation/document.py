"""The ``summary.json`` document, typed: one producer builds it, readers use attributes.

In the manner of Ray Serve's ``schema.py``: dataclasses mirror the JSON, so its
keys (the ones README's schema block documents) are spelled here once, and
``from_json(doc.to_json()) == doc``. A key the schema does not know, or a
missing required one, is an error naming it. Curve points stay dicts: their
value key is the metric's own name (``top1`` or ``map``).

Four things were once all called "summary": :class:`SummaryDocument` is the
whole file; :class:`Headline` is its ``"summary"`` section (the headline
figures); ``text_summary.format_summary`` writes the headline as text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from pathlib import Path

from condsel.errors import CondselError

DATA_KINDS = ("real", "synthetic", "user", "unknown")  # "unknown": summaries written before "user" existed


def _check_keys(data, required: set[str], optional: set[str], where: str) -> None:
    if not isinstance(data, dict):
        raise CondselError(f"{where}: expected a JSON object, got {type(data).__name__}")
    missing = sorted(required - set(data))
    unknown = sorted(set(data) - required - optional)
    if missing or unknown:
        raise CondselError(f"{where}: " + "; ".join(
            ([f"missing keys {missing}"] if missing else []) + ([f"unknown keys {unknown}"] if unknown else [])))


@dataclass
class Headline:
    """``summary["summary"]``: the selector's curve against the best single model and the oracle.

    Two keys carry the metric's name (``best_top1``, ``top1_gain_at_best_gflops``,
    or ``map`` for multi-label), so the JSON codec takes the metric.
    """

    best_model: str
    best_accuracy: float  # JSON "best_<metric>"
    best_gflops: float
    gflops_to_match_best: float | None  # None: the selector never reaches the best single model
    gflops_ratio_to_match_best: float | None
    accuracy_gain_at_best_gflops: float | None  # JSON "<metric>_gain_at_best_gflops"
    oracle_gap_closed: float | None
    ci95: dict | None = None  # "replicates", and FIGURE (a key above) -> {"low", "high", "defined_fraction"}

    @staticmethod
    def _renamed(metric: str) -> dict[str, str]:
        return {"best_accuracy": f"best_{metric}", "accuracy_gain_at_best_gflops": f"{metric}_gain_at_best_gflops"}

    def to_json(self, metric: str) -> dict:
        keys = self._renamed(metric)
        out = {keys.get(f.name, f.name): getattr(self, f.name) for f in fields(self)}
        if self.ci95 is None:
            del out["ci95"]
        return out

    @classmethod
    def from_json(cls, data: dict, metric: str, where: str = "summary") -> Headline:
        keys = cls._renamed(metric)
        names = {keys.get(f.name, f.name): f.name for f in fields(cls)}
        _check_keys(data, set(names) - {"ci95"}, {"ci95"}, where)
        return cls(**{names[k]: v for k, v in data.items()})


@dataclass
class Curves:
    """``curves``: the paper's selector sweep and its baselines, as lists of points."""

    selector: list[dict]  # {"gflops", METRIC, ..., "threshold", "share": {NAME: fraction}}
    random: list[dict]  # {"gflops", METRIC, "METRIC_std"}
    oracle: list[dict]  # {"gflops", METRIC}
    hull: list[dict]  # {"gflops", METRIC}

    def to_json(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, data: dict, where: str = "curves") -> Curves:
        _check_keys(data, {f.name for f in fields(cls)}, set(), where)
        return cls(**data)


@dataclass
class Provenance:
    """Where the table came from: what the report's REAL / SYNTHETIC badge and the fold grouping's name read."""

    data: str  # "real" (published scores), "synthetic" (condsel's benchmark) or "user" (the user's files, named in sources)
    sources: list[str]  # the files or bundled table the scores were read from
    groups: str | None = None  # what keeps samples in one fold, e.g. "UCF101 gXX"; None: no grouping

    def __post_init__(self) -> None:
        if self.data not in DATA_KINDS:
            raise CondselError(f"provenance.data must be one of {list(DATA_KINDS)}, got {self.data!r}")

    def to_json(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, data: dict, where: str = "provenance") -> Provenance:
        _check_keys(data, {"data", "sources"}, {"groups"}, where)
        return cls(**data)


# JSON key -> attribute where they differ
_KEYS = {"summary": "headline"}
_OPTIONAL = {
    "backbone_chosen", "cost_derivation", "cost_unit", "provenance", "policies", "static", "static_hull", "fusion_oracle",
    "recommended", "selector_budgets", "pruned", "latency", "synthetic", "warnings",
}


@dataclass
class SummaryDocument:
    """The whole ``summary.json``; optional sections are ``None`` when the run did not compute them.

    ``condsel table`` writes every section but ``latency`` and ``synthetic``
    (the demo's synthetic part adds those); a run of the paper's selector alone
    (``cross_validate``, ``evaluate_holdout``) has no policy sections.
    """

    models: dict[str, dict]  # NAME -> {"gflops", METRIC, "top5"}
    curves: Curves
    headline: Headline  # JSON "summary"
    budget: list[dict]  # {"target_gflops", "reached_gflops", "accuracy", "thresholds"}
    backbone: str
    pool: list[str]
    alpha: float
    selector_input: str
    affinity: str
    protocol: dict
    selector_gflops: float
    flop_convention: str
    metric: str  # "top1", or "map" for multi-label tables
    backbone_chosen: bool | None = None
    cost_derivation: list[str] | None = None
    cost_unit: str | None = None  # "ms" when a profiled [ms] costs file replaced the GFLOPs (the "gflops" keys then hold ms)
    provenance: Provenance | None = None
    policies: dict[str, list[dict]] | None = None
    static: list[dict] | None = None
    static_hull: list[dict] | None = None
    fusion_oracle: list[dict] | None = None
    recommended: list[dict] | None = None
    selector_budgets: list[dict] | None = None
    pruned: dict[str, str] | None = None
    latency: dict | None = None
    synthetic: dict | None = None
    warnings: list[str] | None = None  # what a reader must know about the run, e.g. a budget above every setting's cost

    @classmethod
    def json_keys(cls) -> set[str]:
        """Every top-level key the document may hold."""
        back = {v: k for k, v in _KEYS.items()}
        return {back.get(f.name, f.name) for f in fields(cls)}

    def to_json(self) -> dict:
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if isinstance(value, Headline):
                value = value.to_json(self.metric)
            elif isinstance(value, (Curves, Provenance)):
                value = value.to_json()
            out["summary" if f.name == "headline" else f.name] = value
        return out

    @classmethod
    def from_json(cls, data: dict, where: str = "summary.json") -> SummaryDocument:
        keys = cls.json_keys()
        _check_keys(data, keys - _OPTIONAL, _OPTIONAL, where)
        values = {_KEYS.get(k, k): v for k, v in data.items()}
        values["headline"] = Headline.from_json(data["summary"], data["metric"], f"{where}: summary")
        values["curves"] = Curves.from_json(data["curves"], f"{where}: curves")
        if data.get("provenance") is not None:
            values["provenance"] = Provenance.from_json(data["provenance"], f"{where}: provenance")
        return cls(**values)


def build_document(sections: dict, provenance: Provenance, cost_derivation: list[str] | None = None,
                   cost_unit: str = "gflops") -> SummaryDocument:
    """The one producer: the engine's sections, plus where the table came from and how its costs were derived.

    The fold grouping is named after the dataset that supplied the groups (the
    engine only knows that samples were grouped).
    """
    doc = SummaryDocument.from_json(sections, "the evaluation's sections")
    protocol = dict(doc.protocol)
    if protocol.get("grouped_by") == "group" and provenance.groups:
        protocol["grouped_by"] = f"group ({provenance.groups})"
    return replace(doc, protocol=protocol, provenance=provenance, cost_derivation=cost_derivation, cost_unit=cost_unit,
                   warnings=budget_warnings(doc, cost_unit) or None)


def budget_warnings(doc: SummaryDocument, cost_unit: str = "gflops") -> list[str]:
    """A line for each budget outside the costs the run's settings span: above the costliest it buys nothing more,
    below the cheapest it cannot be met."""
    fronts = [doc.curves.selector, *(doc.policies or {}).values(), doc.static or []]
    costs = [p["gflops"] for front in fronts for p in front]
    costliest, cheapest = max(costs), min(costs)
    unit = "ms" if cost_unit == "ms" else "GFLOPs"
    lines = []
    for target in (b["target_gflops"] for b in doc.budget):
        if target > costliest:
            lines.append(f"budget {target:g} {unit} is above the costliest setting ({costliest:.4g} {unit}): every setting "
                         "fits it, so it gets the most accurate one, and the cost reached stays below the budget")
        elif target < cheapest:
            lines.append(f"budget {target:g} {unit} is below the cheapest setting ({cheapest:.4g} {unit}): no setting "
                         "meets it, so the cheapest is reported, above the budget")
    return lines


def load_summary(path: str | Path) -> SummaryDocument:
    """Read a ``summary.json``; an unreadable file or an unknown layout is an error naming it."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CondselError(f"{path}: cannot read a summary.json: {e}") from e
    return SummaryDocument.from_json(data, str(path))
