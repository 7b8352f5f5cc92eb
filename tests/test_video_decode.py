"""Decoding real files: frame counts, seeking, partial decoding, resizing, and every kind of bad file.

The files are packet-exact cuts of two published clips (tests/data/ATTRIBUTION.md).
"""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from conftest import FIXTURES, shared_data

from condsel.video.decode import VideoDecodeError, decode_video

KINETICS = FIXTURES / "videos" / "arm_wrestling_cut.mp4"  # frames 187..279 of a Kinetics clip, keyframes at 0, 43, 81
AVI = FIXTURES / "videos" / "unlabelled_test_cut.avi"  # MPEG-4 with packed B-frames, one keyframe


def _opencv_frames(path: Path) -> np.ndarray:
    """An independent decoder (OpenCV's own FFmpeg build) as the reference, in RGB."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    cap.release()
    return np.stack(frames)


@pytest.fixture(scope="module")
def kinetics_full():
    return decode_video(KINETICS)


@pytest.mark.slow
def test_kinetics_clip_decodes_to_every_frame_like_opencv(kinetics_full):
    ref = _opencv_frames(KINETICS)
    assert kinetics_full.num_frames == 93 and kinetics_full.fps == pytest.approx(28.0)  # 3.3 s at 28 fps, 340x256
    assert kinetics_full.frames.shape == (93, 256, 340, 3) == ref.shape
    np.testing.assert_array_equal(kinetics_full.indices, np.arange(93))
    # same pixels up to the YUV->RGB conversion's rounding
    assert np.abs(kinetics_full.frames.astype(int) - ref.astype(int)).mean() < 3.0


def test_avi_decodes_like_opencv():
    video = decode_video(AVI)
    ref = _opencv_frames(AVI)
    assert video.frames.shape == ref.shape == (52, 240, 320, 3)
    assert np.abs(video.frames.astype(int) - ref.astype(int)).mean() < 3.0


@pytest.mark.parametrize("wanted", [[0, 5, 9], [84, 88, 92], [60, 82], [30, 70]])
def test_partial_decode_returns_exactly_the_frames_of_a_full_decode(kinetics_full, wanted):
    # [84, ...] and [60, ...] start past the 2 s seek threshold: the decoder seeks to the keyframe
    # before (81 or 43) instead of decoding from 0
    part = decode_video(KINETICS, lambda n, fps: np.array(wanted))
    np.testing.assert_array_equal(part.indices, wanted)
    np.testing.assert_array_equal(part.frames, kinetics_full.frames[wanted])


def test_partial_decode_of_an_avi_matches_a_full_decode():
    full = decode_video(AVI)
    wanted = [20, 40, 51]
    part = decode_video(AVI, lambda n, fps: np.array(wanted))
    np.testing.assert_array_equal(part.frames, full.frames[wanted])


def test_take_maps_source_indices_to_the_nearest_decoded_frame_before(kinetics_full):
    part = decode_video(KINETICS, lambda n, fps: np.array([10, 20]))
    np.testing.assert_array_equal(part.take(np.array([10, 15, 20, 500])), kinetics_full.frames[[10, 10, 20, 20]])


def test_short_side_resizes_in_the_conversion_and_keeps_the_aspect():
    video = decode_video(KINETICS, lambda n, fps: np.array([0]), short_side=64)
    assert video.frames.shape == (1, 64, 85, 3)  # 340x256 -> round(340 * 64 / 256) = 85
    small = cv2.resize(decode_video(KINETICS, lambda n, fps: np.array([0])).frames[0], (85, 64), interpolation=cv2.INTER_AREA)
    assert np.abs(video.frames[0].astype(int) - small.astype(int)).mean() < 4.0
    assert decode_video(KINETICS, lambda n, fps: np.array([0]), short_side=512).frames.shape == (1, 256, 340, 3)


def _faststart_copy(src: Path, dst: Path) -> bytes:
    """The same stream with the index (moov) before the data, so a cut file still opens."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp4", options={"movflags": "faststart"}) as out:
        stream = out.add_stream_from_template(inp.streams.video[0])
        for packet in inp.demux(inp.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    return dst.read_bytes()


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    root = tmp_path_factory.mktemp("bad")
    data = KINETICS.read_bytes()
    faststart = _faststart_copy(KINETICS, root / "faststart.mp4")
    files = {
        "empty.mp4": (b"", "empty file (0 bytes)"),
        "cut_before_index.mp4": (data[: len(data) // 2], "not a readable video"),
        "cut_after_index.mp4": (faststart[: len(faststart) * 6 // 10], "truncated: stream ended at frame"),
        "text.mp4": (b"this is not a video\n" * 100, "not a readable video"),
        "unknown_codec.mp4": (data.replace(b"avc1", b"zzzz"), "unsupported codec"),
    }
    out = {}
    for name, (content, reason) in files.items():
        (root / name).write_bytes(content)
        out[name] = (root / name, reason)
    out["missing.mp4"] = (root / "missing.mp4", "file not found")
    (root / "a_directory.mp4").mkdir()
    out["a_directory.mp4"] = (root / "a_directory.mp4", "not a regular file")
    return out


@pytest.mark.parametrize(
    "name", ["empty.mp4", "cut_before_index.mp4", "cut_after_index.mp4", "text.mp4", "unknown_codec.mp4", "missing.mp4", "a_directory.mp4"]
)
def test_bad_files_raise_an_error_naming_the_file_and_the_cause(bad_files, name):
    path, reason = bad_files[name]
    with pytest.raises(VideoDecodeError) as info:
        decode_video(path)
    assert str(path) in str(info.value) and reason in str(info.value)
    assert info.value.path == str(path)


def test_a_cut_file_still_gives_the_frames_before_the_cut(bad_files):
    path, _ = bad_files["cut_after_index.mp4"]
    video = decode_video(path, lambda n, fps: np.array([0, 30]))
    np.testing.assert_array_equal(video.frames, decode_video(KINETICS, lambda n, fps: np.array([0, 30])).frames)


def test_the_fixtures_are_exact_cuts_of_the_published_clips(kinetics_full):
    whole = decode_video(shared_data("videos/kinetics_arm_wrestling.mp4"))
    assert whole.num_frames == 280
    np.testing.assert_array_equal(kinetics_full.frames, whole.frames[187:])
    np.testing.assert_array_equal(decode_video(AVI).frames, decode_video(shared_data("videos/unlabelled_test.avi")).frames[:52])
