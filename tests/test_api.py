"""The front door: ``condsel.__all__`` resolves, stays lazy, and the README's Python example runs."""

from __future__ import annotations

import doctest
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import condsel

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_public_name_resolves():
    missing = [name for name in condsel.__all__ if getattr(condsel, name, None) is None]
    assert not missing
    assert {"PredictionTable", "load_table", "CascadePolicy", "SelectorPolicy", "cross_validate", "evaluate_holdout",
            "create_model", "list_models", "detection_map", "load_run"} <= set(condsel.__all__)
    with pytest.raises(AttributeError):
        condsel.no_such_name  # noqa: B018


def test_import_is_lazy():
    """``import condsel`` (and so ``condsel --help``) does not pay for torch."""
    code = "import sys, condsel; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_table_layer_does_not_import_torch():
    """Reading score files into a table is numpy work: the data layer and its importers never load torch."""
    code = ("import sys, condsel.selection, condsel.selection.data, condsel.selection.data.importers, "
            "condsel.selection.data.table; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_readme_python_example_runs():
    text = README.read_text()
    section = re.search(r"^## Python API\n(.*?)^## ", text, flags=re.S | re.M).group(1)
    test = doctest.DocTestParser().get_doctest(section, {}, "README.md#python-api", str(README), 0)
    assert len(test.examples) >= 8
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.failures == 0


def test_selector_before_fit_is_a_not_fitted_error():
    with pytest.raises(condsel.NotFittedError, match="not fitted"):
        condsel.Selector().predict_proba(np.zeros((1, 4), dtype=np.float32))
    with pytest.raises(condsel.NotFittedError):
        condsel.CascadePolicy().next_members({}, 0.5)
