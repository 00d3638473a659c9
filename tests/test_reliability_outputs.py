"""Issue 12, defects 2, 6, 7, 9, 10: outputs complete or an error, modes from the umask, every output path
checked before the backbone loads, one-line errors instead of tracebacks."""
import errno
import os
import resource
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import write_demo_clip

import dinotools.runs.writing
from dinotools.backbones.baseline import ColorStatsBackbone
from dinotools.commands.run import main
from dinotools.io.masks import read_mask, write_mask
from dinotools.registry import register_backbone

FAST = ["--backbone", "baseline", "--propagator", "torch", "--short-side", "48", "--no-progress"]
BUILT = []


@register_backbone("test-counting", override=True)
def _counting(**kw):
    """The baseline backbone, noting that it was built (a check made "before the backbone loads" must not)."""
    BUILT.append(kw)
    return ColorStatsBackbone(**kw)


@pytest.fixture
def clip(tmp_path):
    frames, gt = write_demo_clip(tmp_path, 6, (48, 64))
    gt[0][:4, :4] = 1
    write_mask(tmp_path / "mask.png", gt[0])
    BUILT.clear()
    return ["--frames", str(frames), "--mask", str(tmp_path / "mask.png"), "--output", str(tmp_path / "out"),
            *FAST, "--backbone", "test-counting"]


def _one_line(capsys, *words):
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, err
    return err


def _run_fsize_limited(argv, limit):
    """``python -m dinotools.run argv`` with a file size limit (``ulimit -f``): writes past it fail."""
    return subprocess.run([sys.executable, "-m", "dinotools.run", *argv], capture_output=True, text=True,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)))


def test_overlay_that_cannot_be_written_is_an_error(tmp_path):
    """Reproduction: the overlay on a full disk exited 0 with an unplayable mp4 (OpenCV fails silently)."""
    frames, gt = write_demo_clip(tmp_path, 24, (96, 128))
    write_mask(tmp_path / "mask.png", gt[0])
    argv = ["--frames", str(frames), "--mask", str(tmp_path / "mask.png"), "--output", str(tmp_path / "out"),
            *FAST, "--short-side", "96", "--overlay", str(tmp_path / "o.mp4")]
    proc = _run_fsize_limited(argv, 8192)  # the PNGs fit, the video does not
    assert proc.returncode == 2, proc.stderr
    assert "error: cannot write overlay video" in proc.stderr and "Traceback" not in proc.stderr
    assert not list(tmp_path.glob("*o.mp4*"))  # no unplayable file left, not even the temp one
    assert len(list((tmp_path / "out").glob("*.png"))) == 24  # the label PNGs are complete


@pytest.mark.parametrize("target", ["png", "probs", "report"])
def test_every_output_that_fails_is_an_error_and_finished_frames_stay(clip, tmp_path, capsys, monkeypatch, target):
    def full(*args, **kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    if target == "png":
        real, calls = dinotools.runs.writing.write_mask, []
        monkeypatch.setattr(dinotools.runs.writing, "write_mask",
                            lambda p, x: calls.append(p) or (full() if len(calls) > 2 else real(p, x)))
    elif target == "probs":
        monkeypatch.setattr(dinotools.runs.writing, "write_probs", full)
    else:
        monkeypatch.setattr("dinotools.io.masks.atomic_save", full)  # what RunReport.save writes through
        monkeypatch.setattr(dinotools.runs.writing, "write_mask", lambda p, x: np.save(str(p) + ".npy", x) or
                            os.replace(str(p) + ".npy", p))
    extra = {"png": [], "probs": ["--save-probs"], "report": ["--report", str(tmp_path / "r.json")]}[target]
    assert main(clip + extra) == 2
    _one_line(capsys, "No space left on device")
    assert not (tmp_path / "r.json").exists()


def test_outputs_get_the_mode_open_would_give(clip, tmp_path):
    """Reproduction: outputs were mode 0600 whatever the umask (temp files were never chmod-ed)."""
    old = os.umask(0o027)
    try:
        assert main(clip + ["--save-probs", "--report", str(tmp_path / "r.json"),
                            "--overlay", str(tmp_path / "o.mp4")]) == 0
    finally:
        os.umask(old)
    out = tmp_path / "out"
    for p in [out / "00003.png", out / "probs" / "00003.npz", tmp_path / "r.json", tmp_path / "o.mp4"]:
        assert p.stat().st_mode & 0o777 == 0o640, p


@pytest.mark.parametrize("extra,words", [
    (["--report", "{t}/missing/r.json"], ["--report", "missing", "does not exist"]),
    (["--report", "{t}"], ["--report", "is a folder"]),
    (["--save-probs", "{t}/mask.png"], ["--save-probs", "is an input"]),
    (["--overlay", "{t}/o.avi2"], ["--overlay", "unknown video type"]),
    (["--output", "{t}/" + "o" * 300], ["bytes long"]),
    (["--report", "{t}/mask.png"], ["is an input"]),
    (["--output", "{t}/frames", "--overwrite"], ["--output", "is an input"]),
    (["--output", ""], ["--output needs a path"]),
    (["--short-side", "7"], ["--short-side 7", "32..4096"]),
    (["--temperature", "inf"], ["--temperature", "finite"]),
    (["--topk", "100000"], ["--topk 100000", "use at most"]),
    (["--backbone", "baseline", "--weights", "x.pth"], ["--weights", "'baseline'", "no parameter 'weights'"]),
])
def test_bad_outputs_and_values_fail_before_the_backbone_loads(clip, tmp_path, capsys, extra, words):
    """Reproduction: --report into a missing folder or onto a folder failed after the whole run."""
    assert main(clip + [e.format(t=tmp_path) for e in extra]) == 2
    _one_line(capsys, *words)
    assert BUILT == [] and not (tmp_path / "out").exists()  # nothing built, nothing created


def test_read_only_disk_is_refused_before_tracking(clip, tmp_path, capsys):
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"]).returncode != 0:
        pytest.skip("needs unshare -rm (a private mount namespace) to mount a read-only file system")
    script = (f"mkdir -p {tmp_path}/ro && mount -t tmpfs -o ro tmpfs {tmp_path}/ro && "
              f"{sys.executable} -m dinotools.run {' '.join(clip[:-2])} --report {tmp_path}/ro/r.json")
    proc = subprocess.run(["unshare", "-rm", "bash", "-c", script], capture_output=True, text=True)
    assert proc.returncode == 2 and "Read-only file system" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_mask_past_the_end_is_refused_before_tracking(clip, tmp_path, capsys):
    """Reproduction: a mask for a frame past the end was reported only after tracking the whole video."""
    (tmp_path / "masks").mkdir()
    shutil.copy(tmp_path / "mask.png", tmp_path / "masks" / "00000.png")
    shutil.copy(tmp_path / "mask.png", tmp_path / "masks" / "00009.png")
    argv = [str(tmp_path / "masks") if a == str(tmp_path / "mask.png") else a for a in clip]
    assert main(argv) == 2
    _one_line(capsys, "00009.png is for frame 9", "holds 6 frames (0-5)")
    assert BUILT == []


def test_overwrite_over_a_longer_run_removes_its_outputs(clip, tmp_path, caplog):
    """Reproduction: --overwrite over a longer earlier run left stale PNGs."""
    assert main(clip) == 0
    for p in sorted((tmp_path / "frames").glob("*.png"))[3:]:
        p.unlink()
    assert main(clip + ["--overwrite"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["00000.png", "00001.png", "00002.png"]
    assert "--overwrite: removed 6 file(s) of an earlier run (00000.png ... 00005.png)" in caplog.text


def test_resized_mask_is_warned_once(clip, tmp_path, capsys):
    write_mask(tmp_path / "mask.png", np.kron(read_mask(tmp_path / "mask.png")[::2, ::2], np.ones((1, 1), int)))
    assert main(clip) == 0
    proc = subprocess.run([sys.executable, "-m", "dinotools.run", *clip[:-2], "--output", str(tmp_path / "o2")],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr.count("resized with nearest-neighbour") == 1, proc.stderr


@pytest.mark.parametrize("error,where", [
    (MemoryError(), "memory (RAM)"),
    (RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: you tried to "
                  "allocate 34359738368 bytes"), "memory (RAM)"),
])
def test_out_of_memory_names_the_settings_to_lower(clip, capsys, error, where):
    class Failing(ColorStatsBackbone):
        def __call__(self, images):
            raise error

    register_backbone("test-cpu-oom", override=True)(lambda **kw: Failing(**kw))
    assert main(clip[:-2] + ["--backbone", "test-cpu-oom"]) == 2
    _one_line(capsys, f"out of {where}", "--short-side (now 48)", "--max-context (now 7)")


def test_malicious_pickle_is_refused_for_safety(clip, tmp_path, capsys):
    """Reproduction: a malicious pickle given as weights was refused as "corrupt or truncated?"."""
    import torch

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    torch.save({"model": Evil()}, tmp_path / "evil.pth")
    assert main(clip[:-2] + ["--backbone", "vits16", "--weights", str(tmp_path / "evil.pth")]) == 2
    err = _one_line(capsys, "evil.pth was not loaded, for safety", "not only tensors", "GLOBAL posix.system")
    assert "corrupt" not in err and not (tmp_path / "pwned").exists()
