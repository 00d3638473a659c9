"""``--resume``: same frames in the context, probabilities one-hot from the written PNGs; SIGKILL-safe outputs."""
import os
import shutil
import signal
import subprocess
import sys
import time

import gated_backbone
import numpy as np
import pytest
from PIL import Image

from dinotools import create_tracker
from dinotools.commands.run import build_parser, main, settings_from_args
from dinotools.eval.synthetic_clip import make_clip
from dinotools.io.masks import read_mask, write_mask
from dinotools.runs import record as resume

TRACKER = dict(backbone="baseline", propagator="torch", max_context=3)


def _args(frames, masks, out, short_side):
    return ["--frames", str(frames), "--mask", str(masks), "--output", str(out), "--backbone", "baseline",
            "--propagator", "torch", "--max-context", "3", "--short-side", str(short_side), "--no-progress"]


def _clip(tmp_path, n, size, late_object=True):
    """Demo clip frames on disk; masks folder: frame 0 (ids 1-3) and, optionally, frame 6 adding id 4."""
    frames, gt = make_clip(n, size)
    (tmp_path / "frames").mkdir()
    (tmp_path / "masks").mkdir()
    for i, f in enumerate(frames):
        Image.fromarray(f).save(tmp_path / "frames" / f"{i:05d}.png", compress_level=1)
    masks = {0: gt[0]}
    if late_object:
        m = np.zeros_like(gt[0])
        m[-24:-4, 4:28] = 4  # a fourth object, introduced on frame 6
        masks[6] = m
    for i, m in masks.items():
        write_mask(tmp_path / "masks" / f"{i:05d}.png", m)
    return frames, masks


def _oracle(frames, masks, k, short_side):
    """An uninterrupted run in which, at frame ``k``, the probabilities of every context frame except
    the first mask frame become one-hot of that frame's labels: the semantics ``resume`` documents."""
    tracker = create_tracker("label-propagation", short_side=short_side, **TRACKER)
    state, made, labels = tracker.new_state(), [], []
    for i, frame in enumerate(frames):
        if i == k:
            for cf in list(state.anchors)[1:] + list(state.recent):
                j = next(j for c, j in made if c is cf)
                cf.probs = tracker.mask_probs(state, labels[j])
        res = tracker.step(state, tracker.encode([frame])[0], frame.shape[:2], masks.get(i))
        made += [(cf, i) for cf in list(state.anchors) + list(state.recent) if not any(c is cf for c, _ in made)]
        labels.append(res.labels)
    return labels


def _interrupt(out, k, argv):
    """What a run killed after writing frames 0..k-1 leaves: those PNGs, a temp file, the run record."""
    for p in out.glob("*.png"):
        if int(p.stem) >= k:
            p.unlink()
    (out / f".{k:05d}.png.x1y2.tmp").write_bytes(b"\x89PNG half")
    args = build_parser().parse_args(argv)
    n = len(list(out.parent.glob("frames/*")))
    resume.write_manifest(out, resume.run_record(settings_from_args(args), args.frames, args.mask, n, None))


@pytest.mark.parametrize("k", [4, 11])  # before and after the second mask frame (6)
def test_resume_follows_documented_semantics(tmp_path, k):
    frames, masks = _clip(tmp_path, 18, (96, 128))
    out = tmp_path / "out"
    argv = _args(tmp_path / "frames", tmp_path / "masks", out, 96)
    assert main(argv) == 0
    full = [read_mask(out / f"{i:05d}.png") for i in range(len(frames))]
    _interrupt(out, k, argv)
    assert main(argv + ["--resume"]) == 0
    expected = _oracle(frames, masks, k, 96)
    for i in range(len(frames)):  # exact, frame by frame
        np.testing.assert_array_equal(read_mask(out / f"{i:05d}.png"), expected[i], err_msg=f"frame {i}")
    assert not list(out.glob(".*"))  # temp file removed, run record removed at the end
    changed = sum(int((full[i] != expected[i]).any()) for i in range(k, len(frames)))
    print(f"k={k}: {changed} of {len(frames) - k} resumed frames differ from the uninterrupted run")


def test_resume_refusals(tmp_path, capsys):
    _clip(tmp_path, 8, (64, 96), late_object=False)
    out = tmp_path / "out"
    argv = _args(tmp_path / "frames", tmp_path / "masks", out, 64)
    assert main(argv) == 0
    assert main(argv + ["--resume"]) == 0
    assert "nothing to resume" in capsys.readouterr().out
    (out / "00005.png").unlink()
    assert main(argv + ["--resume"]) == 2  # finished runs leave no run record: unknown settings
    assert "no record of an unfinished run" in capsys.readouterr().err
    _interrupt(out, 5, argv)
    assert main(_args(tmp_path / "frames", tmp_path / "masks", out, 96) + ["--resume"]) == 2
    err = capsys.readouterr().err
    assert "short_side 64 -> 96" in err and err.count("\n") == 1
    assert main(argv + ["--resume", "--overwrite"]) == 2
    assert main(argv + ["--resume", "--overlay", str(tmp_path / "o.mp4")]) == 2
    assert not (out / "00005.png").exists()  # none of the refusals wrote anything


def test_sigkill_midway_then_resume(tmp_path):
    """The backbone holds the run before frame 12 (tests/gated_backbone.py: the gate never opens), so
    the kill finds it midway however loaded the machine is (waiting for 8 PNGs used to race the run)."""
    frames, masks = _clip(tmp_path, 48, (160, 224), late_object=False)
    out = tmp_path / "out"
    argv = [a if a != "baseline" else gated_backbone.NAME
            for a in _args(tmp_path / "frames", tmp_path / "masks", out, 160)]
    env = dict(os.environ, PYTHONUNBUFFERED="1", DINOTOOLS_TEST_GATE=str(tmp_path / "never"),
               DINOTOOLS_TEST_GATE_AFTER="12")
    proc = subprocess.Popen([sys.executable, gated_backbone.__file__, *argv], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300  # only a guard against a hang
    while len(list(out.glob("*.png"))) < 8 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, proc.stderr.read()[-500:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    k = len(list(out.glob("*.png")))
    assert 8 <= k <= 12, f"the run was not killed midway ({k} outputs): {proc.stderr.read()[-500:]}"
    for p in out.glob("*.png"):  # never a truncated PNG: all complete, all a prefix of the frames
        assert read_mask(p).shape == (160, 224) and int(p.stem) < k
    gated_backbone.register()
    assert main(argv + ["--resume"]) == 0
    expected = _oracle(frames, masks, k, 160)
    for i in range(len(frames)):  # frames < k: the uninterrupted masks; frames >= k: the documented semantics
        np.testing.assert_array_equal(read_mask(out / f"{i:05d}.png"), expected[i], err_msg=f"frame {i}, k={k}")


# Issue 20, item 2: a run that exits 0 (first run or --resume) leaves every export complete and
# describing exactly the PNGs, whatever phase a kill interrupted.
EXPORTS = ["--format", "coco", "--format", "objects", "--format", "youtube-vos"]


def _exports_of(out, check, frames_dir, formats):
    """The exports an uninterrupted writer makes of the PNGs in ``out``, into ``check``: ``{path: bytes}``."""
    from dinotools.io.export_common import video_name
    from dinotools.io.exports import Exports

    names = sorted(p.stem for p in out.glob("*.png"))
    files = sorted(p.name for p in frames_dir.iterdir())
    check.mkdir()
    exports = Exports(formats, check, video_name(frames_dir), names, files)
    exports.start(0)
    for i, n in enumerate(names):
        exports.add(i, read_mask(out / f"{n}.png"))
    exports.finish()
    return {p.relative_to(check): p.read_bytes() for p in sorted(check.rglob("*")) if p.is_file()}


def _assert_finished(out, tmp_path, formats):
    """Every export there and equal to one made from the PNGs; no spool, temp file or run record anywhere."""
    want = _exports_of(out, tmp_path / "check", tmp_path / "frames", formats)
    exported = [p for p in sorted(out.rglob("*")) if p.is_file() and p.parent != out / "probs"
                and not (p.parent == out and p.suffix == ".png")]  # all but the label PNGs and probabilities
    got = {p.relative_to(out): p.read_bytes() for p in exported}
    assert got == want
    assert not [p for p in out.rglob(".*")], "spool, temp files or run record left behind"
    n = len(list(out.glob("*.png")))
    assert n == len(list((tmp_path / "frames").iterdir())) and len(list((out / "probs").glob("*.npz"))) == n


def test_resume_finishes_the_exports_when_every_png_is_written(tmp_path):
    """Reproduction: a run stopped between its last PNG and its exports was "nothing to resume" for good."""
    _clip(tmp_path, 6, (64, 96), late_object=False)
    out = tmp_path / "out"
    argv = _args(tmp_path / "frames", tmp_path / "masks", out, 64) + EXPORTS + ["--save-probs"]
    assert main(argv) == 0
    for p in out.glob("*.json"):  # what the kill left: every PNG, no export, the spool, the run record
        p.unlink()
    shutil.rmtree(out / "youtube-vos")
    (out / ".dinotools-export").mkdir()
    (out / ".dinotools-export" / "coco").write_text("{}\n")
    args = build_parser().parse_args(argv)
    resume.write_manifest(out, resume.run_record(settings_from_args(args), args.frames, args.mask, 6, out / "probs"))
    assert main(argv + ["--resume"]) == 0
    _assert_finished(out, tmp_path, ["coco", "objects", "youtube-vos"])


@pytest.mark.parametrize("phase,formats", [
    ("save:00007.png", ["coco", "objects"]),  # during the last label PNG (its temp file written, not renamed)
    ("save:00007.png", ["youtube-vos"]),  # during the last frame's youtube-vos PNG (before its label PNG)
    ("exports", ["coco", "objects", "youtube-vos"]),  # between the last PNG and the exports
    ("save:{video}.coco.json", ["coco", "objects", "youtube-vos"]),  # while an export is written
    ("save:meta.json", ["coco", "objects", "youtube-vos"]),
    ("finish", ["coco", "objects", "youtube-vos"]),  # every output written, the run record not yet removed
])
def test_sigkill_at_each_phase_then_resume(tmp_path, phase, formats):
    """The test hook DINOTOOLS_TEST_KILL_AT stops the run with SIGKILL at a named phase (deterministic)."""
    from dinotools.io.export_common import video_name

    _clip(tmp_path, 8, (64, 96), late_object=False)
    out = tmp_path / "out"
    fmt = [a for f in formats for a in ("--format", f)]
    argv = _args(tmp_path / "frames", tmp_path / "masks", out, 64) + fmt + ["--save-probs", "--report",
                                                                           str(tmp_path / "r.json")]
    env = dict(os.environ, DINOTOOLS_TEST_KILL_AT=phase.format(video=video_name(tmp_path / "frames")))
    proc = subprocess.run([sys.executable, "-m", "dinotools.run", *argv], env=env, capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-500:]
    assert (out / resume.MANIFEST).is_file()  # killed before it finished: a run to resume
    assert main(argv + ["--resume"]) == 0
    _assert_finished(out, tmp_path, formats)
    assert (tmp_path / "r.json").is_file()


def test_eval_track_resume_is_accepted(tmp_path, capsys):
    """Reproduction: the batch record held repr() of a functools.partial (a memory address): always refused."""
    from conftest import shared_path

    from dinotools.commands.eval import main as eval_main

    root = shared_path("data", "davis2016-mini")
    args = ["--davis", str(root), "--track", "--backbone", "baseline", "--short-side", "48", "--sequences",
            "blackswan", "--max-frames", "3", "--out", str(tmp_path)]
    # In another process, as a user reruns: a partial's repr holds its function's address, the same
    # within one process.
    first = subprocess.run([sys.executable, "-m", "dinotools.eval", *args], capture_output=True, text=True)
    assert first.returncode == 0, first.stderr[-500:]
    assert eval_main(args + ["--resume"]) == 0, capsys.readouterr().err
    assert eval_main(args + ["--resume", "--topk", "3"]) == 2  # other settings are still refused
    assert "other settings" in capsys.readouterr().err
    from dinotools.eval.track import EvalTrackerFactory

    factory = EvalTrackerFactory("label-propagation", "baseline", {}, {"device": "cpu", "topk": 3})
    assert "0x" not in repr(factory) and factory.record()["tracker_kwargs"] == {"device": "cpu", "topk": 3}
