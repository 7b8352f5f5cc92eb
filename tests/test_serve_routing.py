"""The service's policy loop (``condsel.serve.routing.execute``) against ``condsel.pool.predict.execute`` and ``route``.

No Ray: the member calls are coroutines returning a table's stored logits, as
the member deployments' handles would. Each policy kind must run, in the same
order, exactly the members its offline routing runs, and give the same scores.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from condsel.pool.predict import execute as execute_sync
from condsel.selection.method.policies import CascadePolicy, EnsembleSelectorPolicy, SelectorPolicy
from condsel.selection.data.table import PredictionTable
from condsel.serve.routing import execute


@pytest.fixture(scope="module")
def table() -> PredictionTable:
    """Three members of rising cost and ability on 60 samples of 5 classes."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, 60)
    logits = {}
    for name, signal in (("small", 0.5), ("medium", 1.5), ("large", 3.0)):
        x = rng.normal(size=(60, 5)).astype(np.float32)
        x[np.arange(60), labels] += signal
        logits[name] = x
    return PredictionTable(names=np.array([f"v{i}" for i in range(60)]), labels=labels, logits=logits,
                           gflops={"small": 1.0, "medium": 4.0, "large": 20.0}, class_names=[f"c{k}" for k in range(5)])


@pytest.mark.parametrize("make", [
    lambda: SelectorPolicy(backbone="small", hidden=(8,), epochs=5),
    lambda: CascadePolicy(members=["small", "medium", "large"]),
    lambda: EnsembleSelectorPolicy(backbone="small", max_size=2, hidden=(8,), epochs=5),
])
def test_the_async_loop_runs_what_route_runs(table, make):
    policy = make().fit(table)
    for threshold in (0.3, 0.8):
        routing = policy.route(table, threshold)
        for i in range(table.num_samples):
            async def call(name, video, i=i):
                await asyncio.sleep(0)  # let concurrently asked members interleave
                return table.logits[name][i]

            outputs = asyncio.run(execute(policy, call, None, threshold))
            expected = [m for m, ran in zip(policy.members_, routing.ran[i]) if ran]
            assert sorted(outputs) == sorted(expected)
            _, ran, _ = execute_sync(policy, lambda names, i=i: {n: table.logits[n][i] for n in names}, threshold)
            assert list(outputs) == ran  # same order as predict's
            np.testing.assert_allclose(policy.final_scores(outputs), routing.scores[i], atol=1e-6)


def test_a_policy_asking_twice_for_a_member_is_an_error():
    class Stubborn:
        def next_members(self, outputs, threshold, video=None):
            return ["a"]

    async def call(name, video):
        return np.zeros(3)

    with pytest.raises(RuntimeError, match="already ran"):
        asyncio.run(execute(Stubborn(), call, None, 0.5))
