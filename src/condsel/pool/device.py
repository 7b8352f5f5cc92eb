"""Where a pool's forward passes run and at what precision: one ``Placement`` for every inference path.

``predict``, ``serve``, ``extract`` and ``profile`` (and the library functions
under them) take the same two settings, spelt the same way:

- ``device``: ``cpu``, ``cuda`` (the current GPU) or ``cuda:N``;
- ``precision``: ``fp32`` (default), ``bf16`` or ``fp16``: ``torch.autocast``
  around the forward pass only. Normalisation, view aggregation and the
  returned scores stay float32, as PySlowFast and MMAction2 test with mixed
  precision: the network's matmuls and convolutions run reduced, the softmax
  and the means over views do not.

Decoding never moves: it stays in CPU workers, and views reach the device as
uint8 through a pinned buffer with a non-blocking copy (4x fewer bytes than
float32, and the normalisation runs on the device).

Bad combinations are errors naming the flag, raised before any work starts:
``--device cuda`` where torch sees no GPU, ``cuda:N`` past the last GPU, and
``--precision fp16`` on a CPU (CPU autocast is bfloat16; float16 convolutions
there are slow or missing).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass

import torch
from torch import nn

from condsel._argtypes import PRECISIONS
from condsel.errors import CondselError

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
DEVICE_FORMS = "cpu, cuda or cuda:N"


def parse_device(text: str, here: bool = True) -> torch.device:
    """``cpu``, ``cuda`` or ``cuda:N`` -> a device; anything else, or a GPU that is not there, names ``--device``.

    ``here=False`` checks the spelling only: for a device on another machine
    (a Ray cluster, a written serve config).
    """
    m = re.fullmatch(r"(cpu|cuda)(?::(\d+))?", text.strip())
    if m is None or (m[1] == "cpu" and m[2] is not None):
        raise CondselError(f"--device {text!r}: expected {DEVICE_FORMS}")
    if m[1] == "cpu":
        return torch.device("cpu")
    if not here:
        return torch.device("cuda", None if m[2] is None else int(m[2]))
    if not torch.cuda.is_available():
        raise CondselError(f"--device {text}: CUDA is not available on this machine (torch sees no GPU); use --device cpu")
    index = int(m[2]) if m[2] is not None else torch.cuda.current_device()
    if index >= torch.cuda.device_count():
        raise CondselError(f"--device {text}: this machine has {torch.cuda.device_count()} GPU(s), cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    return torch.device("cuda", index)


@dataclass(frozen=True)
class Placement:
    """A device and a forward precision, checked together (see the module docstring)."""

    device: torch.device = torch.device("cpu")
    precision: str = "fp32"

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise CondselError(f"--precision {self.precision!r}: expected one of {', '.join(PRECISIONS)}")
        if self.precision == "fp16" and self.device.type != "cuda":
            raise CondselError("--precision fp16: float16 autocast needs a CUDA device; on cpu use bf16 or fp32")

    @classmethod
    def parse(cls, device: str = "cpu", precision: str = "fp32", here: bool = True) -> Placement:
        """From the command-line spellings; errors name the flag at fault (``here``: see :func:`parse_device`)."""
        return cls(parse_device(device, here), precision)

    @property
    def reduced(self) -> bool:
        return self.precision != "fp32"

    @property
    def name(self) -> str:
        """``cuda:0`` / ``cpu``: how a run's records spell the device."""
        return str(self.device)

    def autocast(self) -> contextlib.AbstractContextManager:
        """The forward pass's precision: ``torch.autocast`` for bf16/fp16, nothing for fp32."""
        if not self.reduced:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=DTYPES[self.precision])

    def to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` on the device: through pinned memory and a non-blocking copy when that is a GPU."""
        if self.device.type != "cuda" or tensor.device == self.device:
            return tensor
        if not tensor.is_pinned():
            tensor = tensor.pin_memory()
        return tensor.to(self.device, non_blocking=True)

    def place(self, model: nn.Module) -> nn.Module:
        """``model`` moved to the device (weights stay float32: autocast casts per op), in eval mode."""
        return model.to(self.device).eval()

    def synchronize(self) -> None:
        """Wait for the device's queued work (for timing); a no-op on a CPU."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


CPU_FP32 = Placement()
