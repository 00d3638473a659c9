"""Pipelined engine: bounded background stages, same results as the plain loop, report, probabilities, memory."""
import json
import threading
import time

import numpy as np
import pytest
from conftest import write_demo_clip
from PIL import Image

from dinotools.cli import main
from dinotools.engine import Prefetch, Writer
from dinotools.io.masks import read_mask, write_mask
from dinotools.io.probs import read_probs, stretch

FAST = ["--backbone", "baseline", "--propagator", "torch", "--no-progress"]


@pytest.fixture
def clip(tmp_path):
    """24 frames of the demo clip at 96x128 with its 3-object first mask: (frames dir, mask file)."""
    folder, gt = write_demo_clip(tmp_path, 24, (96, 128))
    write_mask(tmp_path / "mask.png", gt[0])
    return folder, tmp_path / "mask.png"


def test_prefetch_is_bounded_and_reraises():
    produced = []

    def source():
        for i in range(100):
            produced.append(i)
            if i == 50:
                raise ValueError("bad item 50")
            yield i

    it = Prefetch(source(), depth=3, name="test")
    assert next(it) == 0
    time.sleep(0.3)  # give the producer every chance to run ahead
    assert len(produced) <= 1 + 3 + 1  # consumed + queued + the one waiting to be put
    got = [0]
    with pytest.raises(ValueError, match="bad item 50"):
        for x in it:
            got.append(x)
    assert got == list(range(50))  # in order, nothing lost before the error


def test_prefetch_close_stops_the_producer():
    it = Prefetch(iter(range(10**9)), depth=2, name="test")
    next(it)
    it.close()
    assert not any(t.name == "test" and t.is_alive() for t in threading.enumerate())


def test_writer_keeps_order_and_stops_at_the_first_error():
    done = []

    def write(i):
        if i == 5:
            raise OSError(28, "No space left on device")
        done.append(i)

    w = Writer(depth=2)
    with pytest.raises(OSError, match="No space"):
        for i in range(20):
            w.submit(write, i)
        w.close()
    w.close()
    assert done == [0, 1, 2, 3, 4]  # everything before the failure, nothing after it


@pytest.mark.parametrize("batch", [1, 3])
def test_pipelined_equals_plain(clip, tmp_path, batch):
    frames, mask = clip
    out = {}
    for prefetch in (0, 2):
        out[prefetch] = tmp_path / f"out{prefetch}"
        args = ["--frames", str(frames), "--mask", str(mask), "--output", str(out[prefetch]), "--short-side", "96",
                "--prefetch", str(prefetch), "--batch-size", str(batch), *FAST]
        assert main(args) == 0
    names = sorted(p.name for p in frames.iterdir())
    for name in names:  # exact: the engine changes where stages run, never what they compute
        a = read_mask(out[0] / name)
        np.testing.assert_array_equal(a, read_mask(out[2] / name))
    assert not list(out[2].glob(".*"))  # the run record is removed when a run completes


def test_report_and_probs(clip, tmp_path, capsys):
    frames, mask = clip
    out, report = tmp_path / "out", tmp_path / "report.json"
    assert main(["--frames", str(frames), "--mask", str(mask), "--output", str(out), "--short-side", "96",
                 "--save-probs", "--report", str(report), *FAST]) == 0
    line = capsys.readouterr().out
    for word in ("24 frames", "fps", "decode", "backbone", "propagate", "write", "peak RAM"):
        assert word in line, line
    rep = json.loads(report.read_text())
    assert rep["frames"] == 24 and rep["fps"] > 0 and rep["engine"] == "pipelined"
    assert set(rep["stage_seconds"]) == {"decode", "backbone", "propagate", "write"}
    assert rep["peak_ram_mb"] > 0 and "peak_gpu_mb" in rep and "20" in rep["rss_mb"]
    probs_dir = out / "probs"
    assert sorted(p.stem for p in probs_dir.glob("*.npz")) == sorted(p.stem for p in frames.iterdir())
    for name in ("00005", "00023"):
        d = read_probs(probs_dir / f"{name}.npz")
        assert d["ids"] == (1, 2, 3) and d["frame_size"] == (96, 128) and d["probs"].shape[0] == 4
        np.testing.assert_allclose(d["probs"].sum(0), 1.0, atol=2e-3)  # float16 raw weights sum to 1
        labels = np.array([0, *d["ids"]])[stretch(d["probs"], d["frame_size"]).argmax(0)]
        agree = (labels == read_mask(out / f"{name}.png")).mean()
        assert agree > 0.995, agree  # equal but where float16 rounding flips a near-tie


def test_flat_memory_600_frames(tmp_path):
    """600 frames through the CLI path (pipelined): resident memory at frame 600 vs frame 100.

    The benchmark ``benchmarks/flat_memory.py`` runs the 10,000-frame version.
    """
    folder = tmp_path / "frames"
    folder.mkdir()
    img = np.zeros((64, 96, 3), np.uint8)
    img[:, :, 1] = 90
    for i in range(600):
        frame = img.copy()
        x = 10 + (i % 50)
        frame[20:44, x:x + 24] = (200, 40, 40)
        Image.fromarray(frame).save(folder / f"{i:05d}.png", compress_level=1)
    mask = np.zeros((64, 96), np.uint8)
    mask[20:44, 10:34] = 1
    write_mask(tmp_path / "mask.png", mask)
    report = tmp_path / "r.json"
    assert main(["--frames", str(folder), "--mask", str(tmp_path / "mask.png"), "--output", str(tmp_path / "out"),
                 "--short-side", "64", "--report", str(report), *FAST]) == 0
    rss = json.loads(report.read_text())["rss_mb"]
    growth = rss["600"] - rss["100"]
    print(f"RSS at frame 100: {rss['100']} MiB, at 600: {rss['600']} MiB")
    assert growth < 15, f"resident memory grew {growth:.1f} MiB between frames 100 and 600"
    assert len(list((tmp_path / "out").glob("*.png"))) == 600
