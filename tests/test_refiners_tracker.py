"""Refiners as components: registry, the tracker's refiner=/upsample=, frames through the loop, CLI and exports."""
import json

import numpy as np
import pytest
import torch
from conftest import write_demo_clip

import dinotools
from dinotools.commands.run import main
from dinotools.errors import ConfigError
from dinotools.eval.synthetic_clip import make_clip
from dinotools.interfaces import Refiner
from dinotools.io.exports import video_name
from dinotools.io.masks import read_mask, write_mask
from dinotools.pipeline import track_video
from dinotools.refiners import BilinearRefiner, NearestRefiner

TRACKER = dict(backbone="baseline", propagator="torch", short_side=64)


def test_builtins_are_listed_and_satisfy_the_protocol():
    listed = {c.name: c for c in dinotools.list_components("refiner")}
    assert {"nearest", "bilinear", "guided"} <= set(listed)
    for name in ("nearest", "bilinear", "guided"):
        assert listed[name].source == "built-in" and listed[name].ok
        assert isinstance(dinotools.create_refiner(name), Refiner)


def test_upsample_maps_to_the_refiner_of_that_name_and_conflicts_are_errors():
    assert isinstance(dinotools.create_tracker("label-propagation", **TRACKER).refiner, NearestRefiner)
    t = dinotools.create_tracker("label-propagation", upsample="bilinear", **TRACKER)
    assert isinstance(t.refiner, BilinearRefiner)
    t = dinotools.create_tracker("label-propagation", refiner="guided", refiner_kwargs={"eps": 0.01}, **TRACKER)
    assert t.refiner.eps == 0.01 and t.takes_frames
    with pytest.raises(ConfigError, match="either upsample"):
        dinotools.create_tracker("label-propagation", upsample="bilinear", refiner="guided", **TRACKER)
    with pytest.raises(ConfigError, match="refiner_kwargs"):
        dinotools.create_tracker("label-propagation", refiner=NearestRefiner(), refiner_kwargs={"x": 1}, **TRACKER)
    with pytest.raises(dinotools.ComponentError, match="unknown refiner 'gided'.*guided"):
        dinotools.create_tracker("label-propagation", refiner="gided", **TRACKER)


def test_a_registered_refiner_gets_the_frame_and_a_bad_one_is_named():
    seen = []

    @dinotools.register_refiner("test-record", override=True)
    class Record:
        def __call__(self, frame, raw):
            seen.append(frame.shape)
            return BilinearRefiner()(frame, raw)

    frames, gt = make_clip(n_frames=3, size=(64, 96))
    tracker = dinotools.create_tracker("label-propagation", refiner="test-record", **TRACKER)
    assert tracker.takes_frames  # no needs_frame attribute: it gets the pixels
    list(track_video(tracker, frames, gt[0]))
    assert seen == [(64, 96, 3), (64, 96, 3)]

    class Wrong:
        name = "wrong"

        def __call__(self, frame, raw):
            return raw  # [h,w,M]: not scores

    tracker = dinotools.create_tracker("label-propagation", refiner=Wrong(), **TRACKER)
    with pytest.raises(ConfigError, match=r"refiner 'wrong' returned .* scores \[M,H,W\]"):
        list(track_video(tracker, frames, gt[0]))


@pytest.mark.parametrize("name", ["nearest", "bilinear", "guided"])
def test_labels_do_not_depend_on_asking_for_probabilities(name):
    """The patch-grid / band label paths against the argmax of the full-resolution scores."""
    frames, gt = make_clip(n_frames=6, size=(72, 100))  # 72x100 frames: not a multiple of the grid
    tracker = dinotools.create_tracker("label-propagation", refiner=name, **TRACKER)
    plain = list(track_video(tracker, frames, gt[0]))
    with_probs = list(track_video(tracker, frames, gt[0], return_probs=True))
    for a, b in zip(plain, with_probs):
        np.testing.assert_array_equal(a.labels, b.labels)
        if b.index:
            lut = np.array([0, *b.ids])
            np.testing.assert_array_equal(lut[b.probs.argmax(0).numpy()], b.labels)


def test_step_without_the_frame_is_a_clear_error_for_a_pixel_refiner():
    frames, gt = make_clip(n_frames=2, size=(64, 96))
    tracker = dinotools.create_tracker("label-propagation", refiner="guided", **TRACKER)
    state = tracker.new_state()
    feats = tracker.encode(frames)
    tracker.step(state, feats[0], (64, 96), gt[0])
    with pytest.raises(ConfigError, match="reads the frame's pixels: pass frame="):
        tracker.step(state, feats[1], (64, 96))
    assert tracker.step(state, feats[1], (64, 96), frame=frames[1]).labels.shape == (64, 96)


def _clip(tmp_path, n=6):
    folder, gt = write_demo_clip(tmp_path, n, (48, 64))
    write_mask(tmp_path / "mask.png", gt[0])
    return folder, ["--frames", str(folder), "--mask", str(tmp_path / "mask.png"), "--backbone", "baseline",
                    "--propagator", "torch", "--short-side", "48", "--max-context", "3", "--no-progress"]


def test_cli_refine_and_formats(tmp_path, capsys):
    pytest.importorskip("pycocotools", reason="the coco format needs pycocotools")
    folder, args = _clip(tmp_path)
    out = tmp_path / "out"
    assert main(args + ["--output", str(out), "--refine", "guided", "--refine-arg", "eps=0.01",
                        "--format", "coco", "--format", "objects", "--format", "youtube-vos"]) == 0
    video = video_name(folder)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{i:05d}.png" for i in range(6)] + [f"{video}.coco.json", f"{video}.objects.json", "youtube-vos"])
    coco = json.loads((out / f"{video}.coco.json").read_text())
    assert [im["file_name"] for im in coco["images"]] == [f"{i:05d}.png" for i in range(6)]
    for i in range(6):
        np.testing.assert_array_equal(read_mask(out / "youtube-vos" / "Annotations" / video / f"{i:05d}.png"),
                                      read_mask(out / f"{i:05d}.png"))
    assert main(args + ["--output", str(tmp_path / "x"), "--refine-arg", "eps=1"]) == 2
    assert "--refine-arg needs --refine" in capsys.readouterr().err
    assert main(args + ["--output", str(tmp_path / "y"), "--upsample", "bilinear", "--refine", "guided"]) == 2
    err = capsys.readouterr().err
    assert "either upsample='bilinear' or refiner='guided'" in err and err.count("\n") == 1
    assert main(args + ["--output", str(tmp_path / "z"), "--refine", "guided", "--refine-arg", "radius=0"]) == 2
    assert "radius of refiner guided must be an integer >= 1" in capsys.readouterr().err


def test_resumed_exports_equal_those_of_its_pngs_and_of_an_uninterrupted_run(tmp_path):
    pytest.importorskip("pycocotools", reason="the coco format needs pycocotools")
    from dinotools.commands.run import build_parser, settings_from_args
    from dinotools.io.format_convert import convert
    from dinotools.runs import record as resume

    folder, args = _clip(tmp_path, n=10)
    fmt = ["--format", "coco", "--format", "objects"]
    full, part = tmp_path / "full", tmp_path / "part"
    assert main(args + ["--output", str(full)] + fmt) == 0
    assert main(args + ["--output", str(part)] + fmt) == 0
    video = video_name(folder)
    # what a run killed after frame 6 leaves: PNGs 0-6, a half-written spool, no final exports
    for i in range(7, 10):
        (part / f"{i:05d}.png").unlink()
    for name in (f"{video}.coco.json", f"{video}.objects.json"):
        (part / name).unlink()
    (part / ".dinotools-export").mkdir()
    (part / ".dinotools-export" / "coco").write_text('{"half": ')
    parsed = build_parser().parse_args(args + ["--output", str(part)])
    resume.write_manifest(part, resume.run_record(settings_from_args(parsed), folder, tmp_path / "mask.png", 10,
                                                  None))
    assert main(args + ["--output", str(part), "--resume"] + fmt) == 0
    assert not (part / ".dinotools-export").exists()
    for out in (full, part):  # each run's exports are exactly those of its PNGs
        convert(out, tmp_path / f"{out.name}.coco.json", "coco", video=video)
        convert(out, tmp_path / f"{out.name}.objects.json", "objects", video=video)
        coco = json.loads((out / f"{video}.coco.json").read_text())
        ref = json.loads((tmp_path / f"{out.name}.coco.json").read_text())
        assert coco["annotations"] == ref["annotations"] and len(coco["images"]) == 10
        assert (out / f"{video}.objects.json").read_bytes() == (tmp_path / f"{out.name}.objects.json").read_bytes()
    same = all((read_mask(full / f"{i:05d}.png") == read_mask(part / f"{i:05d}.png")).all() for i in range(10))
    if same:  # the resumed PNGs equal the uninterrupted ones: so must the exports
        assert (part / f"{video}.coco.json").read_bytes() == (full / f"{video}.coco.json").read_bytes()
        assert (part / f"{video}.objects.json").read_bytes() == (full / f"{video}.objects.json").read_bytes()


def test_guided_runs_on_the_device_of_the_inputs(device):
    frames, gt = make_clip(n_frames=3, size=(64, 96))
    tracker = dinotools.create_tracker("label-propagation", refiner="guided", device=device, **TRACKER)
    results = list(track_video(tracker, frames, gt[0], return_probs=True))
    assert results[1].probs.device.type == torch.device(device).type
