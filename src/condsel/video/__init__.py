"""Video input: decode a file once, then sample each model's clips from it."""

from condsel.video.decode import DecodedVideo, VideoDecodeError, decode_video
from condsel.video.sampling import ClipSpec, frames_needed, test_views, to_model_input

__all__ = ["ClipSpec", "DecodedVideo", "VideoDecodeError", "decode_video", "frames_needed", "test_views", "to_model_input"]
