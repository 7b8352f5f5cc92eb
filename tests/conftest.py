"""Shared test fixtures, and where the tests find real data.

Small real fixtures ship in ``tests/data`` (see its ATTRIBUTION.md), so every
test runs from a fresh clone. The large published files live in
``../shared/data`` beside the checkout, which CI has and a user's clone does
not: tests on them call :func:`shared_data`, which skips with a reason when
the file is absent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from condsel._io import torch_threads
from condsel.datasets.ucf101 import load_ucf101_split1
from condsel.selection.data.table import PredictionTable

FIXTURES = Path(__file__).resolve().parent / "data"
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_data(relpath: str) -> Path:
    """``../shared/data/relpath``, or skip the calling test when it is absent."""
    path = SHARED_DATA / relpath
    if not path.exists():
        pytest.skip(f"needs ../shared/data/{relpath}: the published files kept beside the checkout, present in CI")
    return path


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread: on a shared 2-core machine OpenMP barriers make 2 threads far slower.

    Modules opt in with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``.
    """
    with torch_threads(1):
        yield


# the README's derived GFLOPs per video of the five DMC-Net/CoViAR models
UCF_COSTS = {"mv": 44.36, "residual": 45.34, "flow": 44.36, "gen_flow": 50.07, "iframe": 287.79}


def ucf101_slice(seed: int, videos: int = 900) -> PredictionTable:
    """A random slice of the bundled UCF101 split-1 table (real DMC-Net/CoViAR scores), costs attached."""
    table = load_ucf101_split1().with_costs(UCF_COSTS)
    return table.subset(np.random.default_rng(seed).permutation(table.num_samples)[:videos])


def synthetic_pool_videos(root: Path, count: int):
    """The demo's synthetic pool with seeded random weights, and ``count`` generated videos decoded for it.

    Returns ``(nets, data, videos)``: member name -> network, the generated
    dataset (paths, labels) and the decoded videos in its order.
    """
    import torch

    from condsel.pool.config import build_pool
    from condsel.synthetic import generate
    from condsel.video.decode import decode_video
    from condsel.workflows.demo import SYNTHETIC_POOL

    torch.manual_seed(0)
    nets = build_pool(SYNTHETIC_POOL, random_weights=True)
    data = generate(root / "videos", count, seed=0)
    return nets, data, [decode_video(p, short_side=SYNTHETIC_POOL.decode_short_side) for p in data.paths]

# fuzzed inputs tried per importer (tests/test_fuzz_importers.py); printed at the end of the run
FUZZ_CASES: dict[str, int] = {}


def pytest_terminal_summary(terminalreporter) -> None:
    if FUZZ_CASES:
        terminalreporter.write_sep("-", f"fuzzed inputs tried: {sum(FUZZ_CASES.values())}")
        for kind, count in sorted(FUZZ_CASES.items()):
            terminalreporter.write_line(f"  {kind}: {count}")
