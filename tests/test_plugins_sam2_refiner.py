"""dinotools-sam2's refiner: the merge rules, a stand-in predictor, the tracker, and a random-weight SAM 2.

The random-weight test needs SAM 2 (PyPI ``sam2==1.1.0`` with hydra-core, iopath and torchvision, which
needs a matching torch); it skips without them, except when CI=true and DINOTOOLS_REQUIRE_SAM2=1:
then it fails, so a CI job that installs SAM 2 proves the real model runs through the refiner.
"""
from __future__ import annotations

import importlib
import os
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import dinotools
from dinotools._env import REQUIRE_SAM2, env_flag
from dinotools.errors import ConfigError, WeightsError
from dinotools.interfaces import Refiner

try:
    import dinotools_sam2  # noqa: F401  (installed plugin)
except ImportError:  # not installed: test the source tree
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins" / "dinotools-sam2" / "src"))
from dinotools_sam2 import Sam2Refiner, merge  # noqa: E402
from dinotools_sam2.refiner import LOW_RES, box_of  # noqa: E402

from dinotools.pipeline import track_video


def test_merge_keeps_every_id_and_resolves_overlaps_deterministically():
    prop = np.zeros((6, 8), np.int64)
    prop[1:4, 1:4] = 1
    prop[1:4, 4:7] = 2
    prop[5, 0] = 3
    r1 = np.zeros((6, 8), bool)
    r1[0:5, 0:6] = True  # grows into object 2's pixels and into the background
    r2 = np.zeros((6, 8), bool)
    r2[1:4, 4:8] = True
    l1, l2 = np.where(r1, 2.0, -5.0), np.where(r2, 1.0, -5.0)
    l1[0, 5], l2[0, 5] = 1.0, 3.0  # (0,5): claimed by both, propagated background -> higher logit (2)
    r2[0, 5] = True
    out = merge(prop, [r1, r2, np.zeros((6, 8), bool)], [l1, l2, np.full((6, 8), -1.0)], [1, 2, 3])
    assert out[2, 5] == 2  # the tracker put 2 there and 2 claims it: 1's higher logit does not take it
    assert out[0, 5] == 2  # neither propagated there: the higher logit wins
    assert out[0, 0] == 1 and out[4, 2] == 1  # 1's refined pixels on background
    assert out[5, 0] == 3  # empty refined mask: the propagated mask stays
    assert out[2, 7] == 2 and out[5, 7] == 0
    assert set(np.unique(out)) == {0, 1, 2, 3}


def test_merge_gives_an_object_outbid_everywhere_its_propagated_mask_back():
    prop = np.zeros((4, 4), np.int64)
    prop[0, 0], prop[3, 3] = 1, 2
    r1 = np.zeros((4, 4), bool)
    r1[2:, 2:] = True  # object 1's refined mask lies on object 2's propagated pixel and beside it
    r2 = np.ones((4, 4), bool)  # object 2 claims everything with high logits
    out = merge(prop, [r1, r2], [np.full((4, 4), 1.0), np.full((4, 4), 5.0)], [1, 2])
    assert out[0, 0] == 1 and (out == 1).sum() == 1  # restored: its propagated mask
    assert (out == 2).sum() == 15


def test_merge_ties_go_to_the_lower_channel():
    prop = np.zeros((2, 2), np.int64)
    prop[0, 0], prop[1, 1] = 1, 2
    both = np.ones((2, 2), bool)
    out = merge(prop, [both, both], [np.ones((2, 2)), np.ones((2, 2))], [1, 2])
    np.testing.assert_array_equal(out, [[1, 1], [1, 2]])


class ColourPredictor:
    """Stands in for SAM2ImagePredictor: near the box (16 px around it, as SAM sees past a loose box),
    the pixels whose colour is the box's median colour."""

    def __init__(self):
        self.images, self.prompts = [], []

    def set_image(self, image):
        assert image.dtype == np.uint8 and image.ndim == 3 and image.flags.c_contiguous
        self.images.append(image)

    def predict(self, point_coords=None, point_labels=None, box=None, mask_input=None, multimask_output=True,
                return_logits=False, normalize_coords=True):
        assert multimask_output is False and return_logits is True
        self.prompts.append((box, mask_input))
        image = self.images[-1]
        x0, y0, x1, y1 = (int(v) for v in box)
        colour = np.median(image[y0:y1 + 1, x0:x1 + 1].reshape(-1, 3), axis=0)
        x0, y0, x1, y1 = max(x0 - 16, 0), max(y0 - 16, 0), x1 + 16, y1 + 16
        logits = np.full(image.shape[:2], -8.0, np.float32)
        inside = np.abs(image.astype(np.int64) - colour).sum(-1) < 30
        logits[y0:y1 + 1, x0:x1 + 1][inside[y0:y1 + 1, x0:x1 + 1]] = 8.0
        return logits[None], np.array([0.9], np.float32), np.zeros((1, LOW_RES, LOW_RES), np.float32)


def discs(h=96, w=128):
    """Two colour discs (off the patch grid) on grey: frame and ground truth ids 1, 2."""
    frame = np.full((h, w, 3), 120, np.uint8)
    yy, xx = np.mgrid[:h, :w]
    truth = np.zeros((h, w), np.int64)
    truth[(yy - 37) ** 2 + (xx - 35) ** 2 < 22 ** 2] = 1
    truth[(yy - 55) ** 2 + (xx - 92) ** 2 < 19 ** 2] = 2
    frame[truth == 1] = (220, 40, 40)
    frame[truth == 2] = (40, 60, 220)
    return frame, truth


def grid_onehot(truth, grid, m):
    cells = F.interpolate(torch.from_numpy(truth)[None, None].float(), size=grid, mode="nearest-exact")[0, 0]
    return F.one_hot(cells.long(), m).float()


def test_stand_in_predictor_refines_blocky_masks_onto_the_discs():
    frame, truth = discs()
    raw = grid_onehot(truth, (6, 8), 3)  # 16 px cells: very blocky
    predictor = ColourPredictor()
    refiner = Sam2Refiner(predictor=predictor)
    assert isinstance(refiner, Refiner) and refiner.needs_frame
    labels = refiner.channels(frame, raw).numpy()
    assert len(predictor.images) == 1 and len(predictor.prompts) == 2  # one embedding, one prompt per object
    base = dinotools.create_refiner("nearest").channels(frame.shape[:2], raw).long().numpy()
    for k, (box, mask_input) in zip((1, 2), predictor.prompts):
        np.testing.assert_array_equal(box, box_of(base == k))
        assert mask_input.shape == (1, LOW_RES, LOW_RES) and mask_input.max() == 10.0
    for k in (1, 2):
        iou = lambda x: ((x == k) & (truth == k)).sum() / ((x == k) | (truth == k)).sum()  # noqa: E731
        assert iou(labels) > 0.97 and iou(labels) > iou(base)
    scores = refiner(frame, raw)
    assert scores.shape == (3, 96, 128)
    np.testing.assert_array_equal(scores.argmax(0).numpy(), labels)


def test_absent_objects_are_not_prompted_and_stay_absent():
    frame, truth = discs()
    raw = grid_onehot(np.where(truth == 2, 0, truth), (6, 8), 3)  # object 2 lost by the propagation
    predictor = ColourPredictor()
    labels = Sam2Refiner(predictor=predictor).channels(frame, raw).numpy()
    assert len(predictor.prompts) == 1 and not (labels == 2).any()


def test_prompt_choices_and_bad_arguments():
    frame, truth = discs()
    raw = grid_onehot(truth, (6, 8), 3)
    predictor = ColourPredictor()
    Sam2Refiner(predictor=predictor, use_mask=False).channels(frame, raw)
    assert all(mask is None for _, mask in predictor.prompts)
    with pytest.raises(ConfigError, match="needs a prompt"):
        Sam2Refiner(predictor=predictor, use_box=False, use_mask=False)
    with pytest.raises(ConfigError, match="set_image"):
        Sam2Refiner(predictor=object())
    with pytest.raises(WeightsError, match="needs SAM 2 weights"):
        Sam2Refiner()


def test_sam2_refiner_through_the_tracker_keeps_ids():
    from dinotools.eval.synthetic_clip import make_clip

    frames, gt = make_clip(n_frames=4, size=(64, 96))
    refiner = Sam2Refiner(predictor=ColourPredictor())
    tracker = dinotools.create_tracker("label-propagation", backbone="baseline", propagator="torch", short_side=64,
                                       refiner=refiner)
    assert tracker.takes_frames
    results = list(track_video(tracker, frames, gt[0]))
    for r in results[1:]:
        assert set(np.unique(r.labels)) <= {0, 1, 2, 3} and r.ids == (1, 2, 3)


# The stand-in sam2 package of test_plugins_sam2, plus the image predictor module.
PREDICTOR = '''
    class SAM2ImagePredictor:
        def __init__(self, sam_model, **kwargs):
            self.model = sam_model
        def set_image(self, image):
            pass
        def predict(self, **kwargs):
            raise NotImplementedError
'''


def test_weights_build_a_predictor_through_the_sam2_package(tmp_path, monkeypatch):
    from test_plugins_sam2 import FAKE_SAM2

    files = dict(FAKE_SAM2, **{"sam2/sam2_image_predictor.py": PREDICTOR})
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path))
    roots = ("sam2", "torchvision", "hydra", "huggingface_hub")
    saved = {k: v for k, v in sys.modules.items() if k.split(".")[0] in roots}
    for k in saved:
        monkeypatch.delitem(sys.modules, k)
    try:
        ckpt = tmp_path / "sam2.1_hiera_tiny.pt"
        ckpt.write_bytes(b"weights")
        refiner = Sam2Refiner(checkpoint=str(ckpt), device="cpu")
        assert refiner.predictor.model == "model"
        assert importlib.import_module("sam2.build_sam").calls == [
            ("build_sam2", "configs/sam2.1/sam2.1_hiera_t.yaml", str(ckpt), "cpu")]
    finally:
        for k in [k for k in sys.modules if k.split(".")[0] in roots]:
            del sys.modules[k]
        sys.modules.update(saved)


def _real_sam2():
    """SAM 2's builder and predictor, or skip (fail under CI=true with DINOTOOLS_REQUIRE_SAM2=1)."""
    try:
        from sam2.build_sam import build_sam2
        from sam2.sam2_image_predictor import SAM2ImagePredictor
    except Exception as exc:  # noqa: BLE001 - missing, or a torchvision built for another torch
        why = f"SAM 2 is not usable here ({type(exc).__name__}: {exc}); see this module's docstring"
        if os.environ.get("CI") == "true" and env_flag(REQUIRE_SAM2):
            pytest.fail(f"{why} (CI=true and {REQUIRE_SAM2}=1: the CI job must install SAM 2)")
        pytest.skip(why)
    return build_sam2, SAM2ImagePredictor


def test_random_weight_sam2_through_the_refiner():
    """The real SAM 2.1 tiny (random weights, CPU): shapes, prompts accepted, ids kept, deterministic."""
    build_sam2, SAM2ImagePredictor = _real_sam2()
    torch.manual_seed(0)
    model = build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", None, device="cpu")
    refiner = Sam2Refiner(predictor=SAM2ImagePredictor(model))
    frame, truth = discs(64, 96)
    raw = grid_onehot(truth, (4, 6), 3)
    first = refiner.channels(frame, raw).numpy()
    assert first.shape == (64, 96)
    assert set(np.unique(first)) - {0} == {1, 2}  # random weights may move the masks, never drop an id
    np.testing.assert_array_equal(refiner.channels(frame, raw).numpy(), first)
    tracker = dinotools.create_tracker("label-propagation", backbone="baseline", propagator="torch", short_side=64,
                                       refiner=refiner)
    results = list(track_video(tracker, [frame, frame], truth))
    assert set(np.unique(results[1].labels)) - {0} == {1, 2}
