"""track_dataset with a stand-in tracker: result files, timing fields, naming checks, ImageSets."""
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from test_eval_davis import make_dataset, two_objects

from dinotools.errors import InputError
from dinotools.eval import DavisDataset, evaluate_results
from dinotools.eval.track import describe, track_dataset


class CopyFirstMask:
    """A plugin-style tracker following the ``Tracker`` protocol with nothing but its methods:
    predicts the first mask on every frame."""

    def new_state(self):
        return SimpleNamespace(next_index=0, started=False, first=None)

    def encode(self, frames):
        return [None] * len(frames)

    def step(self, state, features, frame_size, mask=None, *, return_probs=False, frame=None):
        if mask is not None and state.first is None:
            state.first, state.started = mask.copy(), True
        index, state.next_index = state.next_index, state.next_index + 1
        ids = tuple(int(i) for i in np.unique(state.first) if i)
        return SimpleNamespace(index=index, labels=state.first.copy(), ids=ids, probs=None)

    def amend(self, state, result, mask, *, return_probs=False, frame=None):
        return result


def add_frames(root, seq, n, start=0):
    folder = root / "JPEGImages" / "480p" / seq
    folder.mkdir(parents=True, exist_ok=True)
    for t in range(start, start + n):
        Image.fromarray(np.full((24, 32, 3), 10 * t, np.uint8)).save(folder / f"{t:05d}.jpg")


def test_track_dataset_writes_and_scores(tmp_path):
    gt = [two_objects(0)] * 5  # static objects: copying the first mask is perfect
    root = make_dataset(tmp_path / "davis", gt)
    add_frames(root, "seq", 5)
    dataset = DavisDataset(root)
    run = track_dataset(CopyFirstMask(), dataset, tmp_path / "out")
    assert run.frames == 5 and run.fps > 0 and run.peak_rss_mb > 0 and run.peak_gpu_mb is None
    assert run.per_sequence["seq"]["frames"] == 5
    assert sorted(p.name for p in (tmp_path / "out" / "seq").iterdir()) == [f"{t:05d}.png" for t in range(5)]
    ev = evaluate_results(None, tmp_path / "out", dataset=dataset)
    assert ev.global_metrics()["J&F-Mean"] == 1.0
    assert any("fps" in line for line in describe(run))


def test_track_dataset_max_frames_and_naming(tmp_path):
    root = make_dataset(tmp_path / "davis", [two_objects(t) for t in range(6)])
    add_frames(root, "seq", 6)
    run = track_dataset(CopyFirstMask(), DavisDataset(root, max_frames=4), tmp_path / "out")
    assert run.frames == 4
    shifted = make_dataset(tmp_path / "d2", [two_objects(t) for t in range(3)])
    add_frames(shifted, "seq", 3, start=1)  # frames 00001.. but the first annotation is 00000
    with pytest.raises(InputError, match="first frame is 00001 but the first annotation is 00000"):
        track_dataset(CopyFirstMask(), DavisDataset(shifted), tmp_path / "out2")
    with pytest.raises(InputError, match="frames of sequence seq not found"):
        track_dataset(CopyFirstMask(), DavisDataset(make_dataset(tmp_path / "d3", [two_objects(0)] * 3)),
                      tmp_path / "out3")


def test_empty_first_annotation_is_skipped(tmp_path):
    root = make_dataset(tmp_path / "davis", [np.zeros((24, 32), np.uint8)] * 3)
    add_frames(root, "seq", 3)
    with pytest.raises(InputError, match="no sequence was tracked"):
        track_dataset(CopyFirstMask(), DavisDataset(root), tmp_path / "out")


def test_davis2016_imageset_format(tmp_path):
    root = make_dataset(tmp_path / "davis", [two_objects(0)] * 3, name="bear")
    make_dataset(root, [two_objects(0)] * 3, name="other")
    sets = root / "ImageSets" / "480p"
    sets.mkdir(parents=True)
    (sets / "val.txt").write_text("/JPEGImages/480p/bear/00000.jpg /Annotations/480p/bear/00000.png\n"
                                  "/JPEGImages/480p/bear/00001.jpg /Annotations/480p/bear/00001.png\n")
    assert DavisDataset(root).sequences == ["bear"]
    assert DavisDataset(root, split="train").sequences == ["bear", "other"]  # no list: every folder
