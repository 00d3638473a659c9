"""dinotools-sam2 driving the tracker: first masks and --discover-every with a fake SAM 2 generator."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import dinotools

try:
    import dinotools_sam2  # noqa: F401  (installed plugin)
except ImportError:  # not installed: test the source tree
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins" / "dinotools-sam2" / "src"))
from dinotools_sam2 import Sam2AutomaticInitializer  # noqa: E402

from dinotools.pipeline import track_video

COLOURS = {"A": (220, 40, 40), "B": (40, 60, 220), "C": (230, 210, 40)}


def entering_scene(t, h=96, w=160):
    """Frame t of a video where A (moving) is there from the start, B enters at 4 and C at 7.

    Boxes are aligned to 16-px patches so the weight-free baseline backbone tracks them exactly.
    """
    frame = np.full((h, w, 3), (60, 110, 60), np.uint8)
    boxes = {"A": (16, 48, 16 * (t // 2), 32 + 16 * (t // 2))}
    boxes.update({"B": (48, 80, 96, 128)} if t >= 4 else {})
    boxes.update({"C": (0, 32, 128, 160)} if t >= 7 else {})
    truth = {}
    for name, (y0, y1, x0, x1) in boxes.items():
        frame[y0:y1, x0:x1] = COLOURS[name]
        truth[name] = np.zeros((h, w), bool)
        truth[name][y0:y1, x0:x1] = True
    return frame, truth


class ColourGenerator:
    """A fake SAM 2 that segments each known colour, and the left half of it as a worse-scored part.

    (A near-duplicate with box IoU > 0.7 would not be realistic: SAM 2's box NMS removes it.)
    """

    def generate(self, image):
        records = []
        for colour in COLOURS.values():
            mask = (image == colour).all(-1)
            if mask.any():
                part = mask.copy()
                xs = np.nonzero(mask.any(0))[0]
                part[:, (xs.min() + xs.max() + 1) // 2:] = False
                for seg, iou, stab in [(part, 0.85, 0.93), (mask, 0.9, 0.96)]:
                    records.append({"segmentation": seg, "area": int(seg.sum()), "predicted_iou": iou,
                                    "stability_score": stab})
        return records


def test_discovery_gives_each_entering_object_one_id_for_good():
    """The adapter driving the tracker's --discover-every: one new id per entering object, kept."""
    init = Sam2AutomaticInitializer(generator=ColourGenerator())
    tracker = dinotools.create_tracker("label-propagation", backbone="baseline", propagator="torch",
                                       short_side=None, size=4)
    frames = [entering_scene(t)[0] for t in range(10)]
    first_seen = {"A": 0, "B": 4, "C": 8}  # discovery runs on frames 2, 4, 6, 8: C (from 7) is found at 8
    given = {}
    for r in track_video(tracker, frames, initializer=init, discover_every=2):
        _, truth = entering_scene(r.index)
        for name, mask in truth.items():
            ids, counts = np.unique(r.labels[mask], return_counts=True)
            if r.index < first_seen[name]:
                assert name not in given
                continue
            top = int(ids[np.argmax(counts)])
            # patch-aligned, distinctly coloured boxes: >= 90% of the object carries its one id
            assert top != 0 and counts.max() >= 0.9 * mask.sum(), (r.index, name, ids, counts)
            assert given.setdefault(name, top) == top, (r.index, name, given)
        assert set(np.unique(r.labels)) - {0} <= set(given.values()), (r.index, given)
    assert sorted(given.values()) == [1, 2, 3] and given["A"] == 1  # ids in order of appearance, never reused
