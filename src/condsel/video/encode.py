"""Write RGB frames as an H.264 mp4 (the synthetic benchmark's files, and test fixtures)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from condsel._io import atomic_path

_X264_OPTIONS = {"preset": "veryfast", "tune": "fastdecode", "threads": "1", "x264-params": "mbtree=0"}


def write_video(path: str | Path, frames: np.ndarray, fps: int, crf: int = 18) -> None:
    """Encode (T, H, W, 3) uint8 RGB frames (even H and W) with libx264, atomically.

    The bytes are identical from run to run: one encoder thread, and no
    macroblock-tree rate control, whose AVX-512 kernels read uninitialised
    padding on frames only a few macroblocks wide (64x48 synthetic clips gave
    different bytes for the same frames). ``tune fastdecode`` (no CABAC, no
    deblocking) roughly halves decoding time for ~10% more bytes, so that
    decoding stays a small part of inference.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected (T, H, W, 3) uint8 frames, got {frames.shape} {frames.dtype}")
    _, height, width, _ = frames.shape
    if height % 2 or width % 2:
        raise ValueError(f"H.264 with yuv420p needs even frame sizes, got {width}x{height}")
    with atomic_path(path) as tmp, av.open(str(tmp), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps, options=_X264_OPTIONS | {"crf": str(crf)})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
