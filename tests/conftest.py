"""Shared test fixtures."""

from __future__ import annotations

import pytest

from condsel._io import torch_threads


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread: on a shared 2-core machine OpenMP barriers make 2 threads far slower.

    Modules opt in with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``.
    """
    with torch_threads(1):
        yield
