"""Progress bars of a batch (tqdm): videos, and frames over the videos being tracked; silent off a terminal."""
from __future__ import annotations

import sys
from typing import Dict, Optional


class BatchBars:
    """Two tqdm bars on stderr: videos finished (``initial`` = skipped ones) and frames written.

    ``total_frames`` is what is known up front (frame folders are counted; a video file's count
    arrives with its first progress report). Both bars are disabled when ``enabled`` is False or
    stderr is not a terminal (tqdm's ``disable=None``), so logs and CI output stay clean.
    """

    def __init__(self, videos: int, skipped: int, frames: Dict[str, Optional[int]], enabled: bool = True) -> None:
        from tqdm import tqdm

        disable = None if enabled else True
        self.known = {name: n for name, n in frames.items() if n}
        self.done: Dict[str, int] = {}
        self.videos = tqdm(total=videos, initial=skipped, desc="videos", unit="video", position=0,
                           file=sys.stderr, disable=disable, dynamic_ncols=True)
        self.frames = tqdm(total=sum(self.known.values()), desc="frames", unit="frame", position=1,
                           file=sys.stderr, disable=disable, dynamic_ncols=True, smoothing=0.05)

    def frame(self, name: str, done: int, total: Optional[int]) -> None:
        """``name`` has ``done`` of ``total`` frames written (absolute: a resumed video starts at k)."""
        if total and self.known.get(name) != total:
            self.frames.total = (self.frames.total or 0) + total - self.known.get(name, 0)
            self.known[name] = total
            self.frames.refresh()
        step = done - self.done.get(name, 0)
        if step > 0:
            self.done[name] = done
            self.frames.update(step)

    def video(self, name: str, status: str, frames: Optional[int] = None) -> None:
        if frames:
            self.frame(name, frames, frames)
        self.videos.update(1)
        self.videos.set_postfix_str(f"last: {name} {status}", refresh=True)

    def close(self) -> None:
        self.frames.close()
        self.videos.close()
