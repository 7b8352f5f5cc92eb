"""Decode a video file once into the RGB frames a whole pool of models needs.

Every model of a pool samples its clips from the same ``DecodedVideo``, so a file
is opened, demuxed and decoded once however many models run on it. Only the
frames that some model asks for are converted to RGB (the costly step), and a
clip that starts late in a long video is reached by seeking to the preceding
keyframe instead of decoding from the start.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
from av.video.reformatter import VideoReformatter

from condsel.errors import CondselError

# Seeking costs a demuxer round trip and lands on an earlier keyframe anyway;
# it only pays when the first wanted frame is this far into the video.
SEEK_MIN_SECONDS = 2.0
# After a seek, a frame's index is read from its timestamp. Only containers
# with a sample index give exact presentation timestamps: AVI frames carry
# decode-order stamps (off by one or two around B-frames), so AVI and the
# rest are decoded from the start.
SEEKABLE_FORMATS = ("mov", "mp4", "matroska", "webm")

# Frame-threaded decoding starts a thread pool per file, which costs more than
# it saves below about this many pixels per frame (tens of ms on 64x48 clips).
THREADED_MIN_PIXELS = 320 * 240

# A declared frame count may overshoot the decodable frames by a little (edit
# lists, a trailing partial GOP); a stream that ends earlier than this is
# reported as truncated.
_TRUNCATION_TOLERANCE = 0.05


class VideoDecodeError(CondselError):
    """A video that cannot be decoded; ``str()`` names the file and the reason."""

    def __init__(self, path: str | Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


@dataclass(frozen=True)
class DecodedVideo:
    """The decoded frames of one video, with their positions in the source.

    ``frames`` holds only the frames that were asked for; ``indices`` says which
    source frame each row is, so clip samplers address frames by source index.
    """

    path: str
    frames: np.ndarray  # (K, H, W, 3) uint8 RGB
    indices: np.ndarray  # (K,) int64, strictly increasing source frame indices
    num_frames: int  # frames in the whole source video
    fps: float

    def take(self, wanted: np.ndarray) -> np.ndarray:
        """Frames at source indices ``wanted``; each maps to the nearest decoded frame at or before it."""
        pos = np.searchsorted(self.indices, np.asarray(wanted), side="right") - 1
        return self.frames[np.clip(pos, 0, len(self.indices) - 1)]


FrameSelector = Callable[[int, float], np.ndarray]
"""Given (num_frames, fps) of a video, the source frame indices to decode."""


def decode_video(
    path: str | Path,
    select: FrameSelector | None = None,
    short_side: int | None = None,
    threads: int | None = None,
) -> DecodedVideo:
    """Decode the frames ``select`` asks for (all frames when None).

    ``short_side`` downscales during the colour conversion (swscale, area
    filter), which is cheaper than converting at full size and resizing after;
    videos already at or below it are left as they are. ``threads`` is the
    decoder's thread count: 0 lets FFmpeg choose, None means 0 for frames of
    ``THREADED_MIN_PIXELS`` or more and 1 below. Raises ``VideoDecodeError``
    for a missing, empty, truncated or corrupt file, a file with no video
    stream, or a codec this FFmpeg cannot decode.
    """
    path = Path(path)
    _check_file(path)
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as e:
        raise VideoDecodeError(path, f"not a readable video (truncated or not a video file): {e}") from e
    try:
        return _decode_open(path, container, select, short_side, threads)
    finally:
        container.close()


def _check_file(path: Path) -> None:
    if not path.exists():
        raise VideoDecodeError(path, "file not found")
    if not path.is_file():
        raise VideoDecodeError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise VideoDecodeError(path, "empty file (0 bytes)")


def _decode_open(path, container, select, short_side, threads) -> DecodedVideo:
    if not container.streams.video:
        raise VideoDecodeError(path, "no video stream in the file")
    stream = container.streams.video[0]
    codec = stream.codec_context
    if codec is None or codec.name in (None, "", "none"):
        raise VideoDecodeError(path, "unsupported codec: no decoder for this video stream")
    if threads is None:
        threads = 0 if codec.width * codec.height >= THREADED_MIN_PIXELS else 1
    codec.thread_count = threads
    stream.thread_type = "AUTO"

    fps = _frame_rate(stream)
    num_frames = _frame_count(container, stream, fps)
    if num_frames <= 0:
        raise VideoDecodeError(path, "the video stream declares no frames")
    wanted_array = np.arange(num_frames) if select is None else np.asarray(select(num_frames, fps), dtype=np.int64)
    wanted = set(np.clip(wanted_array, 0, num_frames - 1).tolist())
    if not wanted:
        raise ValueError(f"{path}: the frame selector chose no frames")
    first, last = min(wanted), max(wanted)

    index = _seek_before(container, stream, first, fps)
    frames, indices = [], []
    to_rgb = None
    try:
        for frame in container.decode(stream):
            if index == -1:  # after a seek, place the landing frame by its timestamp
                index = _index_from_pts(frame, stream, fps)
            if index > last:
                break
            if index in wanted:
                to_rgb = to_rgb or _rgb_converter(frame, short_side)
                frames.append(to_rgb(frame))
                indices.append(index)
            index += 1
    except av.error.FFmpegError as e:
        raise VideoDecodeError(path, f"corrupt video data near frame {index}: {e}") from e

    if not frames:
        raise VideoDecodeError(path, f"no decodable frames (stream ended before frame {first}; truncated?)")
    decoded_until = index - 1
    expected_until = min(last, num_frames - 1)
    if decoded_until < expected_until - max(2, _TRUNCATION_TOLERANCE * num_frames):
        raise VideoDecodeError(
            path, f"truncated: stream ended at frame {decoded_until} of {num_frames} declared frames"
        )
    if len({f.shape for f in frames}) > 1:
        raise VideoDecodeError(path, f"the frame size changes inside the stream: {sorted({f.shape[:2] for f in frames})}")
    return DecodedVideo(str(path), np.stack(frames), np.asarray(indices, dtype=np.int64), num_frames, fps)


def _frame_rate(stream) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 25.0


def _frame_count(container, stream, fps: float) -> int:
    if stream.frames:
        return int(stream.frames)
    if stream.duration and stream.time_base:
        return math.floor(float(stream.duration * stream.time_base) * fps + 0.5)
    if container.duration:
        return math.floor(container.duration / av.time_base * fps + 0.5)
    return 0


def _seek_before(container, stream, first: int, fps: float) -> int:
    """Seek to the keyframe before frame ``first`` when that saves decoding.

    Returns the source index of the next decoded frame, or -1 when it must be
    read from the frame's timestamp (after a seek).
    """
    seekable = any(name in SEEKABLE_FORMATS for name in container.format.name.split(","))
    if first / fps < SEEK_MIN_SECONDS or not stream.time_base or not seekable:
        return 0
    start = stream.start_time or 0
    container.seek(start + int(first / fps / stream.time_base), stream=stream, backward=True)
    return -1


def _index_from_pts(frame, stream, fps: float) -> int:
    if frame.pts is None:
        return 0
    seconds = float((frame.pts - (stream.start_time or 0)) * stream.time_base)
    return max(0, round(seconds * fps))


def _output_size(width: int, height: int, short_side: int | None) -> tuple[int, int] | None:
    if short_side is None or min(width, height) <= short_side:
        return None
    scale = short_side / min(width, height)
    return max(short_side, round(width * scale)), max(short_side, round(height * scale))


# Frame colour tags (FFmpeg's AVColorSpace / AVColorRange) under which a
# yuv420p frame is BT.601 limited range, which OpenCV's I420 conversion assumes.
_BT601_SPACES = (2, 5, 6)  # unspecified, BT.470BG, SMPTE 170M
_LIMITED_RANGES = (0, 1)  # unspecified, MPEG


def _rgb_converter(frame, short_side: int | None) -> Callable[[av.VideoFrame], np.ndarray]:
    """Frame -> RGB24 pixels, chosen once per video from its first frame.

    Full-size BT.601 yuv420p frames go through OpenCV, several times faster than
    swscale's per-call setup on small frames; resizing and other formats use
    one swscale context for the whole video (area filter when shrinking).
    """
    size = _output_size(frame.width, frame.height, short_side)
    if (
        size is None
        and frame.format.name == "yuv420p"
        and frame.width % 2 == 0
        and frame.height % 2 == 0
        and frame.colorspace in _BT601_SPACES
        and frame.color_range in _LIMITED_RANGES
    ):
        return lambda f: cv2.cvtColor(f.to_ndarray(), cv2.COLOR_YUV2RGB_I420)
    width, height = size if size is not None else (None, None)
    reformatter = VideoReformatter()
    return lambda f: reformatter.reformat(f, width=width, height=height, format="rgb24", interpolation="AREA").to_ndarray()
