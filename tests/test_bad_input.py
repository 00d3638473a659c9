"""Every bad input ends in one clear line on stderr and exit code 2 (never a traceback); finished frames are kept."""
import errno

import numpy as np
import pytest
import torch
from conftest import write_demo_clip
from PIL import Image

import dinotools.runs.writing
from dinotools.backbones.baseline import ColorStatsBackbone
from dinotools.commands.run import main
from dinotools.io.masks import read_mask, write_mask
from dinotools.registry import register_backbone, register_propagator

FAST = ["--backbone", "baseline", "--propagator", "torch", "--short-side", "48", "--no-progress"]


@pytest.fixture
def clip(tmp_path):
    """6 frames of 48x64 and their first mask; returns (frames dir, mask file, output dir)."""
    folder, gt = write_demo_clip(tmp_path, 6, (48, 64))
    gt[0][:4, :4] = 1  # make sure id 1 is there even at this size
    write_mask(tmp_path / "mask.png", gt[0])
    return folder, tmp_path / "mask.png", tmp_path / "out"


def _run(capsys, frames, mask, out, *extra, source="--frames"):
    code = main([source, str(frames), "--mask", str(mask), "--output", str(out), *FAST, *extra])
    err = capsys.readouterr().err
    return code, err


def _one_line(code, err, *words):
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, err


def test_missing_and_corrupt_video(clip, tmp_path, capsys):
    _, mask, out = clip
    _one_line(*_run(capsys, tmp_path / "nope.mp4", mask, out, source="--video"), "not found")
    (tmp_path / "bad.mp4").write_bytes(np.random.default_rng(0).bytes(5000))
    _one_line(*_run(capsys, tmp_path / "bad.mp4", mask, out, source="--video"), "bad.mp4")


def test_empty_folder_and_corrupt_frame(clip, tmp_path, capsys):
    frames, mask, out = clip
    (tmp_path / "empty").mkdir()
    _one_line(*_run(capsys, tmp_path / "empty", mask, out), "holds no images")
    (frames / "00003.png").write_bytes((frames / "00003.png").read_bytes()[:200])  # truncated file
    _one_line(*_run(capsys, frames, mask, out), "00003.png", "corrupt")
    assert sorted(p.name for p in out.glob("*.png")) == ["00000.png", "00001.png", "00002.png"]  # kept


def test_frames_of_different_sizes(clip, capsys):
    frames, mask, out = clip
    Image.new("RGB", (80, 48)).save(frames / "00004.png")
    _one_line(*_run(capsys, frames, mask, out), "00004.png", "same size")


def test_grey_and_rgba_frames_are_converted(clip, capsys, caplog):
    frames, mask, out = clip
    Image.open(frames / "00001.png").convert("L").save(frames / "00001.png")
    Image.open(frames / "00002.png").convert("RGBA").save(frames / "00002.png")
    code, err = _run(capsys, frames, mask, out)
    assert code == 0, err
    assert "greyscale; converted to RGB" in caplog.text and "RGBA; converted to RGB" in caplog.text
    assert len(list(out.glob("*.png"))) == 6


def test_bad_masks(clip, tmp_path, capsys):
    frames, _, out = clip
    write_mask(tmp_path / "square.png", np.ones((48, 48), np.uint8))
    _one_line(*_run(capsys, frames, tmp_path / "square.png", out), "48x48", "64x48", "aspect")
    write_mask(tmp_path / "empty.png", np.zeros((48, 64), np.uint8))
    _one_line(*_run(capsys, frames, tmp_path / "empty.png", out), "has no object")
    many = np.zeros((48, 64), np.int64)
    many[10:20, 10:20], many[30:40, 30:40] = 7, 300
    np.save(tmp_path / "many.npy", many)
    _one_line(*_run(capsys, frames, tmp_path / "many.npy", out), "300", "255")


def test_weights_of_another_variant(clip, tmp_path, capsys):
    from dinotools.registry import create_backbone

    frames, mask, out = clip
    small = create_backbone("vits16", weights="random")
    torch.save(small.model.state_dict(), tmp_path / "vits16.pth")
    code, err = _run(capsys, frames, mask, out, "--backbone", "vitl16", "--weights", str(tmp_path / "vits16.pth"))
    _one_line(code, err, "vits16.pth", "vitl16")


class _Failing(ColorStatsBackbone):
    """The baseline backbone, raising ``error`` from its ``after``-th call on."""

    def __init__(self, error, after=0, **kw):
        super().__init__(**kw)
        self.error, self.after, self.calls = error, after, 0

    def __call__(self, images):
        self.calls += 1
        if self.calls > self.after:
            raise self.error
        return super().__call__(images)


def test_out_of_gpu_memory_names_the_settings(clip, capsys):
    frames, mask, out = clip
    register_backbone("test-oom", override=True)(
        lambda **kw: _Failing(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB\nmore"), **kw))
    code, err = _run(capsys, frames, mask, out, "--backbone", "test-oom")
    _one_line(code, err, "out of GPU memory", "--short-side (now 48)", "--dtype bf16", "--max-context (now 7)")


def test_full_or_unwritable_disk(clip, tmp_path, capsys, monkeypatch):
    frames, mask, out = clip
    real, calls = dinotools.runs.writing.write_mask, []

    def full_disk(path, labels):
        calls.append(path)
        if len(calls) > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, labels)

    monkeypatch.setattr(dinotools.runs.writing, "write_mask", full_disk)
    _one_line(*_run(capsys, frames, mask, out), "No space left on device", "--resume")
    assert sorted(p.name for p in out.glob("*.png")) == ["00000.png", "00001.png", "00002.png"]
    assert all(read_mask(p).shape == (48, 64) for p in out.glob("*.png"))  # finished frames intact
    monkeypatch.setattr(dinotools.runs.writing, "write_mask", real)  # space freed: the run continues
    code, err = _run(capsys, frames, mask, out, "--resume")
    assert code == 0 and len(list(out.glob("*.png"))) == 6, err
    (tmp_path / "file").write_bytes(b"")
    _one_line(*_run(capsys, frames, mask, tmp_path / "file" / "out"), "cannot write into output folder")


def test_plugin_raising_at_build_and_while_tracking(clip, capsys):
    frames, mask, out = clip

    def broken(**kw):
        raise RuntimeError("cannot find my config\nsecond line")

    register_backbone("test-broken-build", override=True)(broken)
    _one_line(*_run(capsys, frames, mask, out, "--backbone", "test-broken-build"),
              "backbone 'test-broken-build' failed to build: RuntimeError: cannot find my config")
    register_backbone("test-broken-run", override=True)(lambda **kw: _Failing(RuntimeError("kernel crashed"), 3, **kw))
    _one_line(*_run(capsys, frames, mask, out, "--backbone", "test-broken-run"),
              "backbone 'test-broken-run' failed on frame 3: RuntimeError: kernel crashed")
    assert len(list(out.glob("*.png"))) == 3  # frames before the failure are written

    def bad_propagator(*args, **kw):
        raise ValueError("shape mismatch in my kernel")

    register_propagator("test-broken", override=True)(lambda: bad_propagator)
    _one_line(*_run(capsys, frames, mask, out, "--propagator", "test-broken", "--overwrite"),
              "propagator 'test-broken'", "frame 1", "shape mismatch in my kernel")
