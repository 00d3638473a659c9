"""The frame loops: decode -> backbone -> tracker step, one loop for masks and one for points.

``track_video(tracker, frames, masks)`` and ``track_points(tracker, frames, queries)`` are the
Python entry points for whole videos (trackers only step one frame; they never loop).
"""
from dinotools.pipeline.mask_loop import track_video
from dinotools.pipeline.point_loop import track_points

__all__ = ["track_video", "track_points"]
