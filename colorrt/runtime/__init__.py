"""Runtime: colorize images, frame streams and video files with any engine."""

from colorrt.runtime.options import DEFAULT_TEMPORAL, StreamOptions, VideoOptions
from colorrt.runtime.runtime import BatchReport, Runtime

__all__ = ["DEFAULT_TEMPORAL", "BatchReport", "Runtime", "StreamOptions", "VideoOptions"]
