"""Reading official checkpoints from local files and fitting them to zoo models.

Files are read with ``torch.load(weights_only=True)``: a checkpoint is data,
never code, and nothing is ever downloaded. Common wrappers (PySlowFast and
PyTorchVideo's ``model_state``, MMAction2/Lightning's ``state_dict``, a bare
``model``) are unwrapped and DataParallel's ``module.`` prefix is dropped.
Family layouts that name parameters differently from the zoo are renamed by
explicit rules (PySlowFast X3D -> PyTorchVideo X3D). Loading is strict: any
missing, unexpected or mis-shaped parameter is an error that lists them.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from condsel.errors import CondselError

WRAPPER_KEYS = ("model_state", "state_dict", "model")
MAX_LISTED = 8

# PySlowFast X3D parameter names -> PyTorchVideo's (facts from
# slowfast/models/{stem_helper,resnet_helper,head_helper,operators}.py and
# pytorchvideo/models/x3d.py). Note the stem: PySlowFast's spatial conv is
# ``conv_xy`` and its temporal conv ``conv``; PyTorchVideo calls the spatial
# one ``conv_t`` and the temporal one ``conv_xy``.
PYSLOWFAST_X3D_RULES: tuple[tuple[str, str], ...] = (
    (r"^s1\.pathway0_stem\.conv_xy\.", "blocks.0.conv.conv_t."),
    (r"^s1\.pathway0_stem\.conv\.", "blocks.0.conv.conv_xy."),
    (r"^s1\.pathway0_stem\.bn\.", "blocks.0.norm."),
    (r"^s([2-5])\.pathway0_res(\d+)\.branch1\.", r"blocks.<\1>.res_blocks.\2.branch1_conv."),
    (r"^s([2-5])\.pathway0_res(\d+)\.branch1_bn\.", r"blocks.<\1>.res_blocks.\2.branch1_norm."),
    (r"^s([2-5])\.pathway0_res(\d+)\.branch2\.a\.", r"blocks.<\1>.res_blocks.\2.branch2.conv_a."),
    (r"^s([2-5])\.pathway0_res(\d+)\.branch2\.a_bn\.", r"blocks.<\1>.res_blocks.\2.branch2.norm_a."),
    (r"^s([2-5])\.pathway0_res(\d+)\.branch2\.b\.", r"blocks.<\1>.res_blocks.\2.branch2.conv_b."),
    (r"^s([2-5])\.pathway0_res(\d+)\.branch2\.b_bn\.", r"blocks.<\1>.res_blocks.\2.branch2.norm_b.0."),
    (r"^s([2-5])\.pathway0_res(\d+)\.branch2\.se\.fc1\.", r"blocks.<\1>.res_blocks.\2.branch2.norm_b.1.block.0."),
    (r"^s([2-5])\.pathway0_res(\d+)\.branch2\.se\.fc2\.", r"blocks.<\1>.res_blocks.\2.branch2.norm_b.1.block.2."),
    (r"^s([2-5])\.pathway0_res(\d+)\.branch2\.c\.", r"blocks.<\1>.res_blocks.\2.branch2.conv_c."),
    (r"^s([2-5])\.pathway0_res(\d+)\.branch2\.c_bn\.", r"blocks.<\1>.res_blocks.\2.branch2.norm_c."),
    (r"^head\.conv_5\.", "blocks.5.pool.pre_conv."),
    (r"^head\.conv_5_bn\.", "blocks.5.pool.pre_norm."),
    (r"^head\.lin_5\.", "blocks.5.pool.post_conv."),
    (r"^head\.projection\.", "blocks.5.proj."),
)
_STAGE_NUMBER = re.compile(r"<(\d)>")


class CheckpointError(CondselError):
    """A checkpoint file that cannot be read or does not fit the model."""


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a checkpoint file as a flat ``name -> tensor`` dict on the CPU."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"{path}: not a plain tensor checkpoint (weights_only loading refused it: {e})"
        ) from e
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as e:
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({type(e).__name__}: {e})") from e
    state = unwrap_state_dict(obj, source=str(path))
    return strip_prefix(state, "module.")


def _is_tensor_dict(obj: object) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def unwrap_state_dict(obj: object, source: str) -> dict[str, torch.Tensor]:
    """Find the parameter dict, bare or under one of ``WRAPPER_KEYS``."""
    if isinstance(obj, Mapping) and not _is_tensor_dict(obj):
        obj = next((obj[k] for k in WRAPPER_KEYS if _is_tensor_dict(obj.get(k))), obj)
    if _is_tensor_dict(obj):
        return dict(obj)
    kind = f"dict with keys {sorted(map(str, obj))[:MAX_LISTED]}" if isinstance(obj, Mapping) else type(obj).__name__
    raise CheckpointError(
        f"{source}: no state dict found (expected name -> tensor, bare or under one of "
        f"{list(WRAPPER_KEYS)}; got a {kind})"
    )


def strip_prefix(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    if state and all(k.startswith(prefix) for k in state):
        return {k[len(prefix):]: v for k, v in state.items()}
    return state


def rename_keys(state: dict[str, torch.Tensor], rules) -> dict[str, torch.Tensor]:
    """Apply the first matching (regex, replacement) rule to every key."""
    renamed = {}
    for key, value in state.items():
        for pattern, replacement in rules:
            new, hits = re.subn(pattern, replacement, key)
            if hits:
                key = new
                break
        renamed[key] = value
    return renamed


def is_pyslowfast_x3d(state: Mapping[str, torch.Tensor]) -> bool:
    return any(k.startswith("s1.pathway0_stem.") for k in state)


def pyslowfast_x3d_to_pytorchvideo(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a PySlowFast X3D state dict to PyTorchVideo's names (stage sN -> blocks.N-1)."""
    renamed = rename_keys(state, PYSLOWFAST_X3D_RULES)
    return {_STAGE_NUMBER.sub(lambda m: str(int(m.group(1)) - 1), k): v for k, v in renamed.items()}


def adapt_x3d_state_dict(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict]:
    """Return the state dict in PyTorchVideo names and the X3D build options it needs.

    PySlowFast's first stage keeps a BatchNorm on its strided shortcut that
    PyTorchVideo's layout lacks, so such checkpoints build that variant.
    """
    if not is_pyslowfast_x3d(state):
        return state, {}
    return pyslowfast_x3d_to_pytorchvideo(state), {"stage1_shortcut_norm": True}


def load_checked(model: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Copy ``state`` into ``model`` or raise listing every mismatch.

    A missing ``num_batches_tracked`` is tolerated: checkpoints saved before
    PyTorch 0.4.1 (such as pytorch-i3d's) do not have it, and it does not
    change inference.
    """
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in expected
        if k in state and state[k].shape != expected[k].shape
    ]
    problems = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", mismatched)):
        if items:
            shown = ", ".join(items[:MAX_LISTED]) + (f", ... ({len(items)} in all)" if len(items) > MAX_LISTED else "")
            problems.append(f"{label}: {shown}")
    if problems:
        bad = set(missing) | {k for k in expected if k in state and state[k].shape != expected[k].shape}
        first = next((k for k in expected if k in bad), unexpected[0] if unexpected else None)
        raise CheckpointError(
            f"{source}: checkpoint does not fit {type(model).__name__}, first mismatching key {first!r} ("
            + "; ".join(problems)
            + "). Check the model name, num_classes and in_channels."
        )
    model.load_state_dict(state, strict=False)
