"""asv: end-to-end tracking of small synthetic frames, plain loop vs pipelined engine (baseline backbone)."""
import tempfile
from pathlib import Path

from dinotools import create_tracker
from dinotools.pipeline import mask_loop as loop  # not `import track_video`: asv would collect a track_* name
from dinotools.eval.synthetic_clip import make_clip
from dinotools.runs.job import run_job


def _tracker():
    # "torch" rather than "auto": the figures then do not move when the compiled operator is (re)built.
    return create_tracker("label-propagation", backbone="baseline", propagator="torch", short_side=64)


class TrackVideo:
    """``track_video`` over 32 frames of 64x96 (no writing): per-frame cost of the loop and its engine."""

    params = ([0, 2], [1, 4])
    param_names = ["prefetch", "batch"]
    timeout = 120

    def setup(self, prefetch, batch):
        self.frames, gt = make_clip(32, (64, 96))
        self.mask = gt[0]
        self.tracker = _tracker()
        self._run(prefetch, batch)  # warm-up

    def _run(self, prefetch, batch):
        for _ in loop.track_video(self.tracker, self.frames, {0: self.mask}, batch_size=batch, prefetch=prefetch):
            pass

    def time_track(self, prefetch, batch):
        self._run(prefetch, batch)

    def peakmem_track(self, prefetch, batch):
        self._run(prefetch, batch)


class TrackJob:
    """``run_job``: 32 frames in memory to 32 indexed PNGs on disk (write stage included)."""

    params = [0, 2]
    param_names = ["prefetch"]
    timeout = 120

    def setup(self, prefetch):
        frames, gt = make_clip(32, (64, 96))
        self.source = _Frames(frames)
        self.mask = gt[0]
        self.tracker = _tracker()
        self.tmp = tempfile.TemporaryDirectory(prefix="dinotools-asv-")

    def teardown(self, prefetch):
        self.tmp.cleanup()

    def time_run_job(self, prefetch):
        run_job(self.tracker, self.source, {0: self.mask}, Path(self.tmp.name), progress=False, prefetch=prefetch)


class _Frames(list):
    """A list of frames with the ``names`` a ``FrameSource`` has."""

    @property
    def names(self):
        return [f"{i:05d}" for i in range(len(self))]


def _check() -> None:
    """``python benchmarks/bench_tracking.py``: run each benchmark once (no asv needed)."""
    for prefetch in (0, 2):
        b = TrackVideo()
        b.setup(prefetch, 4)
        b.time_track(prefetch, 4)
        j = TrackJob()
        j.setup(prefetch)
        j.time_run_job(prefetch)
        assert len(list(Path(j.tmp.name).glob("*.png"))) == 32
        j.teardown(prefetch)
    print("ok: every benchmark ran once")


if __name__ == "__main__":
    _check()
