"""The zoo against the official implementations' own logits.

``../shared/data/zoo_reference/`` holds checkpoints in the official key layouts
(PyTorchVideo X3D-XS, pytorch-i3d I3D RGB, torchvision EfficientNet-B0) with
random weights and batch-norm statistics, an input, and the logits the official
code computed on it (how: that folder's README.md and manifest.json). Unlike the
round-trip tests in test_models_checkpoints.py, which compare the zoo with
itself, these fail when the zoo's arithmetic departs from the official one
(a batch-norm eps, a padding, a pooling order): a changed eps in X3D's stem
moves its logits by ~2e-3, float32 rounding here is ~1e-5.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from condsel import models
from conftest import SHARED_DATA, shared_data

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REFERENCE = "zoo_reference"
# float32 rounding through ~50 layers; the smallest departure seen (X3D stem eps) is 20x larger
ATOL = 1e-4


def _entries() -> list[dict]:
    manifest = SHARED_DATA / REFERENCE / "manifest.json"
    if not manifest.is_file():
        return [pytest.param(None, id="zoo_reference-absent")]
    return [pytest.param(entry, id=entry["model"]) for entry in json.loads(manifest.read_text())]


@pytest.mark.parametrize("entry", _entries())
def test_checkpoint_gives_the_official_logits(entry):
    folder = shared_data(f"{REFERENCE}/manifest.json").parent
    checkpoint = folder / entry["checkpoint"]
    io = np.load(folder / entry["io"])
    assert io["input"].shape == tuple(entry["input_shape"])
    model = models.create_model(entry["model"], checkpoint=checkpoint).eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(io["input"])).numpy()
    np.testing.assert_allclose(logits, io["logits"], rtol=1e-5, atol=ATOL, err_msg=f"{entry['model']}: {checkpoint}")
