"""Streaming: tracking 500 frames keeps the context bounded and resident memory flat."""
import numpy as np

import dinotools
from dinotools.runs.report import current_rss_mb


def test_500_frames_flat_memory():
    rng = np.random.default_rng(0)
    mask = np.zeros((64, 96), np.uint8)
    mask[16:48, 20:60] = 1
    tracker = dinotools.create_tracker("label-propagation", backbone="baseline", short_side=64, max_context=7)
    state = tracker.new_state()
    rss = {}
    for i in range(500):
        frame = rng.integers(0, 255, size=(64, 96, 3), dtype=np.uint8)
        feats = tracker.encode([frame])[0]
        tracker.step(state, feats, frame.shape[:2], mask if i == 0 else None)
        # The only per-video state is the context: one anchor + at most max_context recent frames.
        assert len(state.anchors) == 1 and len(state.recent) <= 7
        if i in (100, 499):
            rss[i] = current_rss_mb()
    growth = rss[499] - rss[100]
    print(f"RSS at frame 100: {rss[100]:.1f} MiB, at 499: {rss[499]:.1f} MiB, growth {growth:.1f} MiB")
    assert growth < 20, f"resident memory grew {growth:.1f} MiB between frames 100 and 499"
