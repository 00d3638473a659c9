"""dinotools-sam2's initializer: a fake generator, install hints, and loading through a stand-in sam2 package."""
from __future__ import annotations

import importlib
import inspect
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

from dinotools.errors import InputError, UserError, WeightsError
from dinotools.interfaces import MaskInitializer

try:
    import dinotools_sam2  # noqa: F401  (installed plugin)
except ImportError:  # not installed: test the source tree
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins" / "dinotools-sam2" / "src"))
from dinotools_sam2 import (  # noqa: E402
    Sam2AutomaticInitializer,
    Sam2Unavailable,
    loading,  # noqa: E402
)


def scene(h=72, w=96):
    """A frame with a person-like box + head, a disc and a speck, and SAM-style records for it.

    Like SAM 2's output the records overlap: a whole object and its part, a near-duplicate of
    the disc with a lower score, and a speck below the minimum area.
    """
    frame = np.full((h, w, 3), 90, np.uint8)
    body = np.zeros((h, w), np.uint8)
    cv2.rectangle(body, (10, 25), (30, 65), 1, -1)
    head = np.zeros((h, w), np.uint8)
    cv2.circle(head, (20, 16), 8, 1, -1)
    disc = np.zeros((h, w), np.uint8)
    cv2.circle(disc, (65, 40), 14, 1, -1)
    disc[40, 65] = 0  # a 1-px hole, as SAM masks have
    speck = np.zeros((h, w), np.uint8)
    speck[5:9, 85:89] = 1
    frame[body > 0] = (200, 40, 40)
    frame[head > 0] = (230, 190, 160)
    frame[disc > 0] = (40, 60, 210)
    person = (body | head).astype(bool)
    dup_disc = disc.astype(bool).copy()
    dup_disc[40, 65] = True  # a near-duplicate of the disc without its hole
    specs = [(person, 0.93, 0.97), (head.astype(bool), 0.88, 0.96), (disc.astype(bool), 0.96, 0.98),
             (dup_disc, 0.90, 0.95), (speck.astype(bool), 0.99, 0.99)]
    records = []
    for mask, iou, stab in specs:
        ys, xs = np.nonzero(mask)
        records.append({
            "segmentation": mask, "area": int(mask.sum()),
            "bbox": [float(xs.min()), float(ys.min()), float(np.ptp(xs) + 1), float(np.ptp(ys) + 1)],
            "predicted_iou": iou, "point_coords": [[float(xs.mean()), float(ys.mean())]],
            "stability_score": stab, "crop_box": [0.0, 0.0, float(w), float(h)],
        })
    return frame, records, {"person": person, "disc": disc.astype(bool), "head": head.astype(bool)}


class FakeGenerator:
    """Stands in for SAM2AutomaticMaskGenerator: returns fixed records and remembers its input."""

    def __init__(self, records):
        self.records, self.seen = records, []

    def generate(self, image):
        self.seen.append(image)
        return self.records


def test_fake_generator_records_become_one_id_map():
    frame, records, truth = scene()
    gen = FakeGenerator(records)
    init = Sam2AutomaticInitializer(generator=gen, min_area=50, max_hole_area=20)
    assert isinstance(init, MaskInitializer)
    out = init(0, frame)
    assert len(gen.seen) == 1 and gen.seen[0].shape == frame.shape and gen.seen[0].dtype == np.uint8
    np.testing.assert_array_equal(gen.seen[0], frame)
    # rank: speck (0.980) > disc (0.941) > person (0.902) > duplicate disc (0.855) > head (0.845)
    filled = truth["disc"].copy()
    filled[40, 65] = True
    np.testing.assert_array_equal(out == 1, filled)  # the 1-px hole is filled (max_hole_area=20)
    np.testing.assert_array_equal(out == 2, truth["person"])  # the head lies inside the better person mask
    # the speck has 16 px < min_area; the duplicate keeps only the hole pixel; the head keeps nothing
    assert set(np.unique(out)) == {0, 1, 2}
    assert out.shape == frame.shape[:2] and out.dtype == np.int32


def test_frames_restrict_which_calls_are_answered():
    frame, records, _ = scene()
    gen = FakeGenerator(records)
    init = Sam2AutomaticInitializer(generator=gen, frames=[0, 10])
    assert init(3, frame) is None and gen.seen == []
    assert init.init(10, frame).max() >= 1 and len(gen.seen) == 1
    assert Sam2AutomaticInitializer(generator=gen)(7, frame) is not None  # frames=None answers every call


def test_bad_arguments_and_frames_are_clear_errors():
    frame, records, _ = scene()
    with pytest.raises(TypeError, match="generate"):
        Sam2AutomaticInitializer(generator=object())
    with pytest.raises(ValueError, match="not both"):
        Sam2AutomaticInitializer(model="facebook/sam2.1-hiera-tiny", generator=FakeGenerator(records))
    with pytest.raises(ValueError, match="rank_by"):
        Sam2AutomaticInitializer(generator=FakeGenerator(records), rank_by="size")
    with pytest.raises(ValueError, match="max_objects"):
        Sam2AutomaticInitializer(generator=FakeGenerator(records), max_objects=0)
    init = Sam2AutomaticInitializer(generator=FakeGenerator(records))
    with pytest.raises(InputError, match="uint8"):
        init(0, frame.astype(np.float32))
    with pytest.raises(InputError, match=r"\(72, 96\)"):  # records of another size than the frame
        init(0, np.zeros((40, 50, 3), np.uint8))


def test_missing_weights_are_weights_errors():
    with pytest.raises(WeightsError, match="facebook/sam2.1-hiera-large"):
        Sam2AutomaticInitializer()
    with pytest.raises(WeightsError, match="nowhere.pt"):
        Sam2AutomaticInitializer(checkpoint="/nowhere.pt")
    with pytest.raises(WeightsError, match="nowhere.pt"):
        Sam2AutomaticInitializer(model="/nowhere.pt")  # a path given as model=


def test_missing_packages_name_the_extra_to_install(monkeypatch):
    monkeypatch.setattr(loading, "_has_module", lambda name: False)
    with pytest.raises(Sam2Unavailable) as err:
        Sam2AutomaticInitializer(model="facebook/sam2.1-hiera-tiny")
    assert isinstance(err.value, UserError) and isinstance(err.value, ImportError)
    msg = str(err.value)  # everything missing is named at once, with both extras
    for needed in ("sam2", "torchvision", "hydra-core", "huggingface_hub", "dinotools-sam2[sam2]",
                   "dinotools-sam2[hf]", "github.com/facebookresearch/sam2", "third-party"):
        assert needed in msg, (needed, msg)
    monkeypatch.setattr(loading, "_has_module", lambda name: name != "huggingface_hub")
    with pytest.raises(Sam2Unavailable, match=r"needs huggingface_hub: not installed; install huggingface_hub"):
        Sam2AutomaticInitializer(model="facebook/sam2.1-hiera-tiny")
    monkeypatch.setattr(loading, "_has_module", lambda name: name != "sam2")
    with pytest.raises(Sam2Unavailable, match=r"needs sam2 \(SAM-2 \(Meta\)\): not installed; install them") as err:
        Sam2AutomaticInitializer(model="facebook/sam2.1-hiera-tiny")
    assert "[hf]" not in str(err.value)


# A stand-in for Meta's sam2 package: same module names, the documented signatures, no model.
FAKE_SAM2 = {
    "sam2/__init__.py": "",
    "sam2/build_sam.py": '''
        HF_MODEL_ID_TO_FILENAMES = {
            "facebook/sam2.1-hiera-tiny": ("configs/sam2.1/sam2.1_hiera_t.yaml", "sam2.1_hiera_tiny.pt"),
        }
        calls = []
        def build_sam2(config_file, ckpt_path=None, device="cuda", **kwargs):
            if ckpt_path is not None and open(ckpt_path, "rb").read() == b"wrong":
                raise RuntimeError("Error(s) in loading state_dict for SAM2Base: Missing key(s)")
            calls.append(("build_sam2", config_file, ckpt_path, device))
            return "model"
        def build_sam2_hf(model_id, **kwargs):
            calls.append(("build_sam2_hf", model_id, kwargs))
            return "model"
    ''',
    "sam2/automatic_mask_generator.py": '''
        import torchvision
        class SAM2AutomaticMaskGenerator:
            def __init__(self, model, points_per_side=32, points_per_batch=64, pred_iou_thresh=0.8,
                         stability_score_thresh=0.95, stability_score_offset=1.0, mask_threshold=0.0,
                         box_nms_thresh=0.7, crop_n_layers=0, crop_nms_thresh=0.7,
                         crop_overlap_ratio=512 / 1500, crop_n_points_downscale_factor=1, point_grids=None,
                         min_mask_region_area=0, output_mode="binary_mask", use_m2m=False,
                         multimask_output=True):
                self.args = {k: v for k, v in locals().items() if k != "self"}
            def generate(self, image):
                return []
    ''',
    "torchvision/__init__.py": "",
    "hydra/__init__.py": "",
    "huggingface_hub/__init__.py": "",
}


@pytest.fixture
def fake_sam2(tmp_path, monkeypatch):
    """Puts the stand-in packages first on sys.path; yields the folder; unimports them afterwards."""
    for rel, text in FAKE_SAM2.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path))
    roots = ("sam2", "torchvision", "hydra", "huggingface_hub")
    before = {k: v for k, v in sys.modules.items() if k.split(".")[0] in roots}
    for k in before:
        monkeypatch.delitem(sys.modules, k)
    yield tmp_path
    for k in [k for k in sys.modules if k.split(".")[0] in roots]:
        del sys.modules[k]
    sys.modules.update(before)


def test_checkpoint_build_passes_sam2_defaults_and_infers_the_config(fake_sam2):
    ckpt = fake_sam2 / "sam2.1_hiera_tiny.pt"
    ckpt.write_bytes(b"weights")
    init = Sam2AutomaticInitializer(checkpoint=str(ckpt), device="cpu", points_per_side=16)
    build = importlib.import_module("sam2.build_sam")
    assert build.calls == [("build_sam2", "configs/sam2.1/sam2.1_hiera_t.yaml", str(ckpt), "cpu")]
    amg = importlib.import_module("sam2.automatic_mask_generator").SAM2AutomaticMaskGenerator
    defaults = {k: p.default for k, p in inspect.signature(amg).parameters.items() if k != "model"}
    assert init.generator.args == {**defaults, "model": "model", "points_per_side": 16}
    # bool settings as the CLI's --init-arg KEY=VALUE passes them (strings)
    init = Sam2AutomaticInitializer(checkpoint=str(ckpt), device="cpu", use_m2m="true", multimask_output="False")
    assert init.generator.args["use_m2m"] is True and init.generator.args["multimask_output"] is False
    with pytest.raises(ValueError, match="use_m2m"):
        Sam2AutomaticInitializer(checkpoint=str(ckpt), device="cpu", use_m2m="maybe")


def test_hf_id_build_and_unknown_ids(fake_sam2):
    Sam2AutomaticInitializer(model="facebook/sam2.1-hiera-tiny", device="cpu")
    calls = importlib.import_module("sam2.build_sam").calls
    assert calls == [("build_sam2_hf", "facebook/sam2.1-hiera-tiny", {"device": "cpu"})]
    with pytest.raises(WeightsError, match="known ids: facebook/sam2.1-hiera-tiny"):
        Sam2AutomaticInitializer(model="facebook/sam2.1-hiera-huge", device="cpu")


def test_random_weights_build_the_config_without_a_checkpoint(fake_sam2):
    config = "configs/sam2.1/sam2.1_hiera_t.yaml"
    init = Sam2AutomaticInitializer(config=config, random_weights="true", device="cpu", points_per_side=4)
    assert importlib.import_module("sam2.build_sam").calls == [("build_sam2", config, None, "cpu")]
    assert init.generator.args["points_per_side"] == 4 and init.generator.args["output_mode"] == "binary_mask"
    with pytest.raises(UserError, match="config="):
        Sam2AutomaticInitializer(random_weights=True, device="cpu")
    with pytest.raises(UserError, match="no model= or checkpoint="):
        Sam2AutomaticInitializer(random_weights=True, config=config, model="facebook/sam2.1-hiera-tiny")


def test_checkpoint_problems_are_weights_errors(fake_sam2):
    odd = fake_sam2 / "my_finetune.pt"
    odd.write_bytes(b"weights")
    with pytest.raises(UserError, match="config="):
        Sam2AutomaticInitializer(checkpoint=str(odd), device="cpu")
    odd.write_bytes(b"wrong")
    with pytest.raises(WeightsError, match="does not fit config"):
        Sam2AutomaticInitializer(checkpoint=str(odd), config="configs/sam2.1/sam2.1_hiera_l.yaml", device="cpu")


def test_missing_or_broken_torchvision_is_named(fake_sam2, monkeypatch):
    ckpt = fake_sam2 / "sam2.1_hiera_tiny.pt"
    ckpt.write_bytes(b"weights")
    monkeypatch.setitem(sys.modules, "torchvision", None)  # as if not installed
    with pytest.raises(Sam2Unavailable, match="needs torchvision: not installed"):
        Sam2AutomaticInitializer(checkpoint=str(ckpt), device="cpu")
    monkeypatch.delitem(sys.modules, "torchvision")
    (fake_sam2 / "torchvision" / "__init__.py").write_text("raise ImportError('undefined symbol: _ZN3c10')\n")
    with pytest.raises(Sam2Unavailable, match="undefined symbol.*reinstall"):
        Sam2AutomaticInitializer(checkpoint=str(ckpt), device="cpu")
