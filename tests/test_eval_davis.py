"""Dataset conventions, clear errors, and the official davis2017-evaluation figures (fixtures)."""
import json

import numpy as np
import pytest
from conftest import shared_path
from PIL import Image

from dinotools.errors import InputError
from dinotools.eval import DavisDataset, evaluate_results
from dinotools.io.masks import PALETTE

H, W = 24, 32


def save_png(path, ids, mode="P"):
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(np.asarray(ids, dtype=np.uint8), mode="L")
    if mode == "P":
        img = img.convert("P")
        img.putpalette(PALETTE)
    img.save(path)


def make_dataset(root, frames, name="seq", mode="P"):
    for t, ids in enumerate(frames):
        save_png(root / "Annotations" / "480p" / name / f"{t:05d}.png", ids, mode)
    return root


def two_objects(t):
    m = np.zeros((H, W), np.uint8)
    m[4:12, 2 + t : 10 + t] = 1
    m[14:20, 20:28] = 2
    return m


@pytest.mark.parametrize("result_set", ["shift", "erode", "mixed"])
def test_matches_official_fixture(result_set):
    root = shared_path("fixtures", "davis_eval")
    expected = json.loads((root / "expected.json").read_text())[result_set]
    ev = evaluate_results(root, root / "results" / result_set)
    got = ev.global_metrics()
    for key in ("J&F-Mean", "J-Mean", "F-Mean", "J-Recall", "F-Recall", "J-Decay", "F-Decay"):
        assert got[key] == pytest.approx(expected[key], abs=1e-6), key  # acceptance: within 1e-6
    per_object = ev.per_object()
    assert set(per_object) == set(expected["per_object"])
    for name, (j, f) in expected["per_object"].items():
        assert per_object[name] == pytest.approx([j, f], abs=1e-6), name


def test_conventions_first_last_void_and_later_ids(tmp_path):
    gt = [two_objects(t) for t in range(5)]
    gt[2][0:2, :] = 255  # void: counted as background in semi-supervised mode
    gt[3][22:24, 0:2] = 3  # id 3 appears only later: not an object (K comes from frame 0)
    root = make_dataset(tmp_path / "davis", gt)
    res = tmp_path / "res"
    for t in range(1, 4):  # no 00000.png and no 00004.png: first and last are never read
        pred = two_objects(t)
        if t == 2:
            pred[0:2, :] = 1  # predicting object 1 on void pixels costs J on frame 2
        save_png(res / "seq" / f"{t:05d}.png", pred)
    ev = evaluate_results(root, res)
    assert [o.name for o in ev.objects] == ["seq_1", "seq_2"]
    j1 = ev.objects[0].J
    assert j1[0] == 1.0 and j1[2] == 1.0
    assert j1[1] == pytest.approx(64 / (64 + 2 * W))  # void pixels were background
    np.testing.assert_array_equal(ev.objects[1].J, [1.0, 1.0, 1.0])


def test_missing_objects_score_zero_and_binary_2016_annotations(tmp_path):
    gt = [np.where(two_objects(t) > 0, 255, 0) for t in range(4)]  # DAVIS-2016: 0/255 greyscale
    root = make_dataset(tmp_path / "davis", gt, mode="L")
    res = tmp_path / "res"
    save_png(res / "seq" / "00001.png", np.where(gt[1] == 255, 1, 0))  # palette, id 1
    save_png(res / "seq" / "00002.png", gt[2], mode="L")  # binary 0/255 result also reads as id 1
    ev = evaluate_results(root, res)
    assert [o.name for o in ev.objects] == ["seq_1"]
    np.testing.assert_array_equal(ev.objects[0].J, [1.0, 1.0])
    assert DavisDataset(root).load("seq").binary
    # a palette GT with 2 objects and a prediction holding only object 1: object 2 scores 0
    root2 = make_dataset(tmp_path / "d2", [two_objects(t) for t in range(3)])
    save_png(tmp_path / "r2" / "seq" / "00001.png", np.where(two_objects(1) == 1, 1, 0))
    ev2 = evaluate_results(root2, tmp_path / "r2")
    assert ev2.objects[0].j.mean == 1.0 and ev2.objects[1].j.mean == 0.0 and ev2.objects[1].f.mean == 0.0


@pytest.fixture
def small(tmp_path):
    root = make_dataset(tmp_path / "davis", [two_objects(t) for t in range(4)])
    res = tmp_path / "res"
    for t in range(4):
        save_png(res / "seq" / f"{t:05d}.png", two_objects(t))
    return root, res


def test_error_missing_sequence_and_frame(small):
    root, res = small
    with pytest.raises(InputError, match="sequence.*nope.*not found"):
        evaluate_results(root, res, sequences=["nope"])
    (res / "seq" / "00002.png").unlink()
    with pytest.raises(InputError, match=r"00002\.png is missing"):
        evaluate_results(root, res)
    with pytest.raises(InputError, match="results for sequence seq not found"):
        evaluate_results(root, res.parent / "elsewhere")


def test_error_size_mismatch(small):
    root, res = small
    save_png(res / "seq" / "00001.png", np.zeros((H, W + 2), np.uint8))
    with pytest.raises(InputError, match=r"00001\.png is 34x24 but the ground truth is 32x24"):
        evaluate_results(root, res)


def test_error_id_above_object_count(small):
    root, res = small
    bad = two_objects(2)
    bad[0, 0] = 5
    save_png(res / "seq" / "00002.png", bad)
    with pytest.raises(InputError, match=r"00002\.png holds id 5 but sequence seq has 2 object"):
        evaluate_results(root, res)


def test_error_too_few_frames_and_no_annotations(tmp_path):
    root = make_dataset(tmp_path / "davis", [two_objects(0), two_objects(1)])
    with pytest.raises(InputError, match="at least 3"):
        evaluate_results(root, tmp_path)
    with pytest.raises(InputError, match="Annotations/480p"):
        evaluate_results(tmp_path / "missing", tmp_path)


def test_imageset_lists_sequences(small):
    root, res = small
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("seq\nghost\n")
    with pytest.raises(InputError, match="ghost"):
        DavisDataset(root)
    (root / "ImageSets" / "2017" / "val.txt").write_text("seq\n")
    assert DavisDataset(root).sequences == ["seq"]


def test_davis2016_ground_truth_scores_itself_perfectly():
    root = shared_path("data", "davis2016-mini")
    ev = evaluate_results(root, root / "Annotations" / "480p", sequences=["car-shadow"])
    g = ev.global_metrics()
    assert [o.name for o in ev.objects] == ["car-shadow_1"]
    assert g["J-Mean"] == 1.0 and g["F-Mean"] == 1.0 and g["J-Decay"] == 0.0
