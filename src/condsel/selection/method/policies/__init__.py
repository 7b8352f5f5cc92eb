"""Selection policies: who runs which pool member on a video, behind one estimator interface.

``base`` holds the protocol (:class:`Policy`, :class:`Routing`); one module per
policy: ``selector`` (the paper's), ``cascade`` (fused outputs, per-stage
thresholds, order search), ``ensemble`` (a selector over fused subsets),
``routing`` (cascade routing: the next member chosen from what ran)
and ``static_mix`` (a member
or fused subset on every video, or a seeded mix of two).
"""

from __future__ import annotations

import json
from pathlib import Path

from condsel.selection.method.policies.base import POLICY_FILE, NotFittedError, Policy, Routing, metric_name, metric_value, restore_common, single_values
from condsel.selection.method.policies.cascade import CascadePolicy
from condsel.selection.method.policies.ensemble import EnsembleSelectorPolicy
from condsel.selection.method.policies.routing import RoutingPolicy
from condsel.selection.method.policies.selector import SelectorPolicy
from condsel.selection.method.policies.static_mix import StaticPolicy

POLICIES: dict[str, type[Policy]] = {p.name: p for p in (SelectorPolicy, CascadePolicy, EnsembleSelectorPolicy, StaticPolicy, RoutingPolicy)}

__all__ = [
    "POLICIES", "CascadePolicy", "EnsembleSelectorPolicy", "NotFittedError", "Policy", "Routing", "RoutingPolicy",
    "SelectorPolicy", "StaticPolicy", "load_policy", "metric_name", "metric_value", "single_values",
]


def load_policy(directory: str | Path) -> Policy:
    """Load a policy saved with :meth:`Policy.save`.

    Parameters
    ----------
    directory : path
        Holds ``policy.json`` and the policy's tensor files.

    Returns
    -------
    Policy
        The fitted policy.
    """
    path = Path(directory) / POLICY_FILE
    try:
        state = json.loads(path.read_text())
        cls = POLICIES[state["name"]]
        params = state["params"]
    except FileNotFoundError as e:
        raise ValueError(f"{path}: no such file") from e
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a condsel policy file: {e}") from e
    try:
        policy = cls(**{k: tuple(v) if isinstance(v, list) and k in cls._tuple_params else v for k, v in params.items()})
        restore_common(policy, state)
        policy._restore(state["fitted"], Path(directory))
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: malformed {state['name']} policy: {e}") from e
    return policy
