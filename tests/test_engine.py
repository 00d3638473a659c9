"""Pipelined engine: bounded background stages, same results as the plain loop, report, probabilities, memory."""
import json
import threading
import time

import numpy as np
import pytest
import torch
from conftest import write_demo_clip
from PIL import Image

from dinotools.commands.run import main
from dinotools.io.masks import read_mask, write_mask
from dinotools.io.probs import read_probs, stretch
from dinotools.pipeline.engine import Prefetch, feature_batches
from dinotools.pipeline.stages import StageError
from dinotools.pipeline.writer import Writer

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


class _SlowEncoder:
    """A tracker stand-in: ``encode`` returns each frame's value (so order can be checked), records the
    intra-op thread count it ran with, sleeps longer on early batches (so workers finish out of
    order), and raises on frame ``bad``."""

    device = "cpu"

    def __init__(self, bad=None):
        self.bad, self.threads = bad, set()

    def encode(self, batch):
        self.threads.add(torch.get_num_threads())
        values = [int(f[0, 0, 0]) for f in batch]
        if self.bad in values:
            raise RuntimeError(f"backbone exploded on {self.bad}")
        time.sleep(0.02 * (values[0] % 3 == 0))
        return torch.tensor(values, dtype=torch.float32)[:, None, None, None]  # [B,1,1,1]


class _Stats:
    def add(self, stage, seconds):
        pass


def _frames(n, corrupt_at=None):
    for i in range(n):
        if i == corrupt_at:
            raise ValueError(f"frame {i} is corrupt")
        yield np.full((2, 2, 3), i, np.uint8)


@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("prefetch", [0, 1, 4])
def test_feature_batches_keep_frame_order(workers, prefetch):
    tracker, before = _SlowEncoder(), torch.get_num_threads()
    batches, close = feature_batches(tracker, _frames(23), 3, _Stats(), prefetch=prefetch, workers=workers)
    got = [(int(f[0, 0, 0]), int(v)) for batch, feats in batches for f, v in zip(batch, feats.flatten())]
    close()
    assert got == [(i, i) for i in range(23)]  # every frame once, in order, with its own features
    assert torch.get_num_threads() == before  # the consumer's thread count is given back
    if prefetch and workers > 1 and before > 1:
        assert tracker.threads == {max(1, before // workers)}  # the cores are shared out, not oversubscribed


def _read_until(error, match, batches, close):
    """The frame values ``batches`` yielded before raising ``error``."""
    seen = []
    with pytest.raises(error, match=match):
        for batch, _ in batches:
            seen += [int(f[0, 0, 0]) for f in batch]
    close()
    return seen


@pytest.mark.parametrize("prefetch", [0, 2])
def test_feature_batches_errors_come_after_the_frames_before_them(prefetch):
    """A corrupt frame in the middle of a batch: the frames before it are still encoded and yielded."""
    run = dict(prefetch=prefetch, workers=2)
    corrupt = feature_batches(_SlowEncoder(), _frames(20, corrupt_at=10), 4, _Stats(), **run)
    assert _read_until(ValueError, "frame 10 is corrupt", *corrupt) == list(range(10))
    failing = feature_batches(_SlowEncoder(bad=13), _frames(20), 4, _Stats(), **run)
    assert _read_until(StageError, "frames 12-15", *failing) == list(range(12))


def test_feature_batches_close_early_stops_the_workers():
    before = torch.get_num_threads()
    batches, close = feature_batches(_SlowEncoder(), _frames(10**6), 2, _Stats(), prefetch=2, workers=2)
    next(batches)
    close()
    close()  # idempotent
    time.sleep(0.1)
    assert not any(t.name.startswith(("dinotools-backbone", "dinotools-decode")) and t.is_alive()
                   for t in threading.enumerate())
    assert torch.get_num_threads() == before


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


@pytest.mark.parametrize("batch, workers", [(1, 1), (3, 2)])
def test_pipelined_equals_plain(clip, tmp_path, batch, workers):
    frames, mask = clip
    out = {}
    for prefetch in (0, 2):
        out[prefetch] = tmp_path / f"out{prefetch}"
        args = ["--frames", str(frames), "--mask", str(mask), "--output", str(out[prefetch]), "--short-side", "96",
                "--prefetch", str(prefetch), "--batch-size", str(batch), "--backbone-workers", str(workers), *FAST]
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


def test_writer_close_recovers_a_lost_end_marker():
    """A Ctrl-C/SIGTERM raised in the main thread inside close()'s put() can leave the writer thread
    without its end marker (or its wake-up): close() then waited forever (a SIGHUP'd run hung).
    Here the first end marker is dropped, as such an interrupted put() drops it."""
    writer, done = Writer(2), []
    writer.submit(done.append, 1)
    real_put, calls = writer._queue.put, []

    def lossy_put(item, *args, **kwargs):
        calls.append(item)
        if len(calls) > 1:
            return real_put(item, *args, **kwargs)

    writer._queue.put = lossy_put
    closing = threading.Thread(target=writer.close, daemon=True)
    closing.start()
    closing.join(timeout=120)  # a guard against the hang this is about, not a timing assumption
    assert not closing.is_alive(), "close() waits forever for a writer thread that never got its end marker"
    assert done == [1]
