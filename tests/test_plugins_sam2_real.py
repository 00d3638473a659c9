"""Real SAM 2 (PyPI sam2, tiny config, random weights, CPU) through dinotools-sam2: records -> id map ->
tracker with discovery -> the command line. Skips without sam2, fails instead under DINOTOOLS_REQUIRE_SAM2=1."""
from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import dinotools
from dinotools._env import REQUIRE_SAM2, env_flag
from dinotools.commands.run import main
from dinotools.io.masks import read_mask

try:
    import dinotools_sam2  # noqa: F401  (installed plugin)
except ImportError:  # not installed: test the source tree
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins" / "dinotools-sam2" / "src"))
from dinotools_sam2 import Sam2AutomaticInitializer, records_to_id_map  # noqa: E402
from test_plugins_sam2_tracking import entering_scene  # noqa: E402

from dinotools.pipeline import track_video

TINY = "configs/sam2.1/sam2.1_hiera_t.yaml"
# Few prompts keep a CPU run to seconds; thresholds 0 keep the masks a random model predicts.
SETTINGS = dict(points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=0.0, min_area=20)
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sam2():
    """``(SAM2AutomaticMaskGenerator, sam2.build_sam)``; skip (fail under DINOTOOLS_REQUIRE_SAM2=1) without sam2."""
    try:
        from sam2 import build_sam
        from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator
    except Exception as exc:  # noqa: BLE001 - missing, or installed for another torch
        why = f"sam2 not importable ({type(exc).__name__}: {exc}); pip install sam2==1.1.0 hydra-core iopath"
        if env_flag(REQUIRE_SAM2):
            pytest.fail(f"{why} ({REQUIRE_SAM2}=1: this environment must run real SAM 2)")
        pytest.skip(why)
    return SAM2AutomaticMaskGenerator, build_sam


def random_initializer():
    """The plugin's initializer on a seeded random-weight tiny SAM 2 (same seed, same weights)."""
    torch.manual_seed(0)
    return Sam2AutomaticInitializer(config=TINY, random_weights=True, device="cpu", **SETTINGS)


# A 1024x1024 image encoder on the CPU costs seconds per call: each test asks for as few frames as it can.
FRAMES = [entering_scene(t)[0] for t in range(3)]


@pytest.fixture(scope="module")
def first(sam2):
    """``(records, id map)`` of the random model on frame 0, through the plugin's own generator."""
    init = random_initializer()
    records = init.generator.generate(FRAMES[0])
    return records, records_to_id_map(records, FRAMES[0].shape[:2], min_area=SETTINGS["min_area"])


def test_real_records_become_one_id_map(first):
    records, id_map = first
    frame = FRAMES[0]
    assert records, "random-weight SAM 2 with thresholds 0 proposed no mask"
    for r in records:  # the record format the id map reads
        assert r["segmentation"].dtype == bool and r["segmentation"].shape == frame.shape[:2]
        assert r["area"] == int(r["segmentation"].sum())
        assert 0 <= float(r["stability_score"]) <= 1 and np.isfinite(float(r["predicted_iou"]))
    assert id_map.dtype == np.int32 and id_map.shape == frame.shape[:2] and id_map.max() >= 1
    ids = records_to_id_map(records, frame.shape[:2], min_area=1, max_hole_area=0)
    labels = np.unique(ids[ids > 0]).tolist()
    assert labels == list(range(1, len(labels) + 1)) and 1 <= len(labels) <= len(records)
    covered = np.any([r["segmentation"] for r in records], axis=0)
    assert not (ids > 0)[~covered].any()  # hole filling off: every labelled pixel comes from a record
    # id 1 is the best-ranked mask (quality = iou x stability, then area), whole: nothing outranks it.
    best = min(range(len(records)), key=lambda i: (-records[i]["predicted_iou"] * records[i]["stability_score"],
                                                   -records[i]["area"], i))
    np.testing.assert_array_equal(ids == 1, records[best]["segmentation"])


class Recording:
    """A ``MaskInitializer`` that records the frame indices it is asked about."""

    def __init__(self, init):
        self.init, self.asked = init, []

    def __call__(self, frame_index, frame):
        self.asked.append(frame_index)
        return self.init(frame_index, frame)


def test_real_sam2_drives_the_tracker_with_discovery(first):
    init = Recording(random_initializer())
    tracker = dinotools.create_tracker("label-propagation", backbone="baseline", propagator="torch",
                                       short_side=None, size=4)
    results = list(track_video(tracker, FRAMES, initializer=init, discover_every=2))
    assert [r.index for r in results] == [0, 1, 2]
    assert init.asked == [0, 2]  # objects exist from frame 0, then discovery every 2 frames
    np.testing.assert_array_equal(results[0].labels, first[1])  # the first map is the first output, exactly
    known = set(np.unique(first[1]).tolist()) - {0}
    for r in results[1:]:
        ids = set(np.unique(r.labels).tolist()) - {0}
        new = ids - known
        assert not new or (r.index == 2 and min(new) > max(known)), (r.index, known, ids)  # ids never reused
        known |= new


def test_real_sam2_through_the_command_line(first, tmp_path):
    (tmp_path / "frames").mkdir()
    for t, frame in enumerate(FRAMES):
        cv2.imwrite(str(tmp_path / "frames" / f"{t:05d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    init_args = [f"config={TINY}", "random_weights=true", "device=cpu"] + [f"{k}={v}" for k, v in SETTINGS.items()]
    torch.manual_seed(0)  # the weights random_initializer() draws
    code = main(["--frames", str(tmp_path / "frames"), "--output", str(tmp_path / "out"), "--backbone", "baseline",
                 "--propagator", "torch", "--short-side", "96", "--size", "4", "--device", "cpu", "--no-progress",
                 "--init", "sam2", *[a for arg in init_args for a in ("--init-arg", arg)], "--discover-every", "2"])
    assert code == 0
    outputs = sorted((tmp_path / "out").glob("*.png"))
    assert [p.stem for p in outputs] == ["00000", "00001", "00002"]
    np.testing.assert_array_equal(read_mask(outputs[0]), first[1])  # the CLI passed every setting through
