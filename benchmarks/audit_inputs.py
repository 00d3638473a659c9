"""Audit cases (``benchmarks/audit.py``): arguments, frames and their modes, videos, masks."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script or imported by asv's discovery
from audit import SIZE, N, Result, cli, make_clip, verdict  # noqa: E402

TRACK = ["--frames", "frames", "--mask", "mask.png", "--output", "out"]


def simple(audit, name, args, rc=2, want=None, prep=None, n=N, out="out", check=None, module="dinotools.run",
           clip=True, **kw):
    """A case: the clip, ``prep(d)``, one command, the verdict (``check(d, res)`` -> problem or None)."""
    def run(d: Path) -> Result:
        if clip:
            make_clip(d)
        if prep is not None:
            prep(d)
        res = cli(d, *args, module=module)
        return verdict(res, rc, d / out if out else None, n, want, check and (lambda: check(d, res)))
    audit.add(name, run, **kw)


def frames_edit(fn):
    """A ``prep`` that calls ``fn(frames folder)``."""
    return lambda d: fn(d / "frames")


def save_mode(index, mode, arr=None, ext=".png", **save):
    """Replace frame ``index`` with one of PIL ``mode`` (same size), saved as ``ext``."""
    def prep(d):
        folder = d / "frames"
        src = folder / f"{index:05d}.png"
        rgb = Image.open(src).convert("RGB")
        src.unlink()
        img = rgb.convert(mode) if arr is None else Image.fromarray(arr(np.asarray(rgb)), mode)
        img.save(folder / f"{index:05d}{ext}", **save)
    return prep


def all_frames(mode_fn, ext=".png"):
    """Every frame converted by ``mode_fn(rgb PIL image) -> image``, saved as ``ext``."""
    def prep(d):
        for p in sorted((d / "frames").glob("*.png")):
            img = mode_fn(Image.open(p).convert("RGB"))
            p.unlink()
            img.save(p.with_suffix(ext))
    return prep


def no_record(d, res):
    return "run record left behind" if (d / "out" / ".dinotools-run.json").exists() else None


def record_kept(d, res):
    return None if (d / "out" / ".dinotools-run.json").exists() else "run record lost"


def _arguments(a) -> None:
    simple(a, "help", ["--help"], rc=0, out=None)
    simple(a, "info", ["--info"], rc=0, out=None, want="device 'auto'")
    simple(a, "list", ["--list"], rc=0, out=None, want="baseline")
    simple(a, "no source", ["--mask", "mask.png", "--output", "out"], want="exactly one of")
    simple(a, "frames and video", [*TRACK, "--video", "x.mp4"], want="exactly one of")
    simple(a, "no output", ["--frames", "frames", "--mask", "mask.png"], out=None, want="--output")
    simple(a, "empty --output", ["--frames", "frames", "--mask", "mask.png", "--output", ""], out=None, want="''")
    simple(a, "empty --frames", ["--frames", "", "--mask", "mask.png", "--output", "out"], want="''")
    simple(a, "empty --report", [*TRACK, "--report", ""], want="--report")
    simple(a, "no --mask", ["--frames", "frames", "--output", "out"], want="--mask")
    for opt, val, want in [("--short-side", "7", "32..4096"), ("--short-side", "100000", "32..4096"),
                           ("--temperature", "inf", "finite"), ("--temperature", "nan", "finite"),
                           ("--temperature", "0", "> 0"), ("--topk", "100000", "at most"), ("--topk", "0", ">= 1"),
                           ("--size", "-1", ">= 0"), ("--size", "inf", "finite"), ("--max-context", "-1", ">= 0"),
                           ("--batch-size", "0", "--batch-size"), ("--prefetch", "-1", "--prefetch"),
                           ("--backbone-workers", "0", "--backbone-workers"), ("--device", "cuda:7", "cuda"),
                           ("--device", "gpu", "not a device")]:
        simple(a, f"{opt} {val}", [*TRACK, opt, val], want=want, check=lambda d, r: (
            "output folder created" if (d / "out").exists() else None))
    simple(a, "--dtype int8 (argparse)", [*TRACK, "--dtype", "int8"], want="invalid choice")
    simple(a, "unknown backbone", [*TRACK, "--backbone", "vitl61"], want="unknown backbone")
    simple(a, "propagator typo", [*TRACK, "--propagator", "fuzed"], want="Did you mean 'fused'")
    simple(a, "unknown tracker", [*TRACK, "--tracker", "nope"], want="unknown tracker")
    simple(a, "unknown --init", ["--frames", "frames", "--output", "out", "--init", "nope"], want="unknown initializer")
    simple(a, "--init-arg without =", [*TRACK, "--init-arg", "frame"], want="KEY=VALUE")
    simple(a, "--discover-every with --init file", [*TRACK, "--discover-every", "5"], want="automatic initializer")
    simple(a, "--resume with --overwrite", [*TRACK, "--resume", "--overwrite"], want="give one of them")
    simple(a, "--resume with --overlay", [*TRACK, "--resume", "--overlay", "o.mp4"], want="--overlay")
    simple(a, "baseline with --weights", [*TRACK, "--weights", "w.pth"], want="no parameter 'weights'")
    simple(a, "good run", TRACK, rc=0, check=no_record)
    simple(a, "good run, pipelined off", [*TRACK, "--prefetch", "0", "--batch-size", "3"], rc=0)


def _frames(a) -> None:
    simple(a, "frames folder missing", ["--frames", "nope", "--mask", "mask.png", "--output", "out"], want="not found")
    simple(a, "frames folder empty", ["--frames", "empty", "--mask", "mask.png", "--output", "out"],
           prep=lambda d: (d / "empty").mkdir(), want="holds no images")
    simple(a, "frames folder of text files", ["--frames", "txt", "--mask", "mask.png", "--output", "out"],
           prep=lambda d: [(d / "txt").mkdir()] + [(d / "txt" / f"{i}.txt").write_text("x") for i in range(5)],
           want="holds no images")
    simple(a, "truncated frame 5", TRACK, prep=frames_edit(
        lambda f: (f / "00005.png").write_bytes((f / "00005.png").read_bytes()[:150])), want="00005.png")
    simple(a, "zero-byte frame 5", TRACK, prep=frames_edit(lambda f: (f / "00005.png").write_bytes(b"")),
           want="00005.png")
    simple(a, "frame 5 of another size", TRACK, prep=frames_edit(
        lambda f: Image.new("RGB", (80, 48)).save(f / "00005.png")), want="same size")
    simple(a, "dangling symlink frame", TRACK, prep=frames_edit(
        lambda f: ((f / "00005.png").unlink(), os.symlink(f / "gone.png", f / "00005.png"))), want="00005.png")
    simple(a, "folder named like a frame", TRACK, prep=frames_edit(lambda f: (f / "00012.png").mkdir()),
           want="not a regular file")
    simple(a, "fifo named like a frame", TRACK, prep=frames_edit(lambda f: os.mkfifo(f / "00012.png")),
           want="not a regular file")
    simple(a, "hidden ._ copy among frames", TRACK, rc=0, prep=frames_edit(
        lambda f: (f / "._00003.png").write_bytes(b"\x00\x05junk")), want="skipped 1 hidden")
    simple(a, "same stem .png and .jpg", TRACK, prep=frames_edit(
        lambda f: Image.open(f / "00003.png").convert("RGB").save(f / "00003.jpg")), want="same name")
    simple(a, "jpeg frames", TRACK, rc=0, clip=False, prep=lambda d: make_clip(d, ext=".jpg"))
    simple(a, "unicode and spaces in names", ["--frames", "fr été", "--mask", "mask.png", "--output", "out ü"],
           rc=0, out="out ü", prep=lambda d: (d / "frames").rename(d / "fr été"))
    simple(a, "10,000 non-image files + frames", TRACK, rc=0, prep=frames_edit(
        lambda f: [(f / f"note{i}.txt").write_text("") for i in range(10_000)]))

    def long_names(d):
        for p in sorted((d / "frames").glob("*.png")):
            p.rename(p.with_name("f" * 246 + p.name))  # 255-byte names: outputs fit, their temp files must too
    simple(a, "frame names of 255 bytes", TRACK, rc=0, prep=long_names)
    simple(a, "--video on a PNG file", ["--video", "frames/00000.png", "--mask", "mask.png", "--output", "out"],
           rc=(0, 2), n=1)


def _modes(a) -> None:
    simple(a, "16-bit grey PNG frames (I;16)", TRACK, rc=0, want="16-bit greyscale; scaled", prep=all_frames(
        lambda im: Image.fromarray((np.asarray(im.convert("L")).astype(np.uint16) * 257))))
    simple(a, "16-bit RGB PNG frame", TRACK, rc=0, want="16-bit RGB", prep=lambda d: _rgb16(d / "frames"))
    simple(a, "32-bit int TIFF frames in 0..65535", TRACK, rc=0, want="32-bit integer", prep=all_frames(
        lambda im: Image.fromarray(np.asarray(im.convert("L")).astype(np.int32) * 257), ext=".tif"))
    simple(a, "32-bit int TIFF frame out of range", TRACK, want="32-bit integer", prep=save_mode(
        3, "I", lambda x: np.full(x.shape[:2], -5, np.int32), ext=".tif"))
    simple(a, "float TIFF frame", TRACK, want="32-bit float", prep=save_mode(
        3, "F", lambda x: x[:, :, 0].astype(np.float32) / 255, ext=".tif"))
    simple(a, "LA frames", TRACK, rc=0, want="alpha channel is dropped", prep=all_frames(lambda im: im.convert("LA")))
    simple(a, "palette with transparency", TRACK, rc=0, want="palette with transparency",
           prep=save_mode(2, "P", transparency=0))
    simple(a, "palette frames", TRACK, rc=0, prep=all_frames(lambda im: im.convert("P")))
    simple(a, "CMYK JPEG frames", TRACK, rc=0, want="CMYK", prep=all_frames(lambda im: im.convert("CMYK"), ".jpg"))
    simple(a, "1-bit frames", TRACK, rc=0, want="bilevel", prep=all_frames(lambda im: im.convert("1")))
    simple(a, "YCbCr TIFF frames", TRACK, rc=0, want="YCbCr", prep=all_frames(lambda im: im.convert("YCbCr"), ".tif"))
    simple(a, "LAB TIFF frames", TRACK, rc=0, want="CIELAB", prep=all_frames(lambda im: im.convert("LAB"), ".tif"))
    simple(a, "RGBA WebP frames", TRACK, rc=0, prep=all_frames(lambda im: _with_alpha(im), ".webp"))
    simple(a, "multi-page TIFF frame", TRACK, rc=0, want="first is used", prep=lambda d: _multipage(d / "frames"))


def _with_alpha(im):
    im = im.convert("RGBA")
    im.putalpha(Image.fromarray(np.random.default_rng(0).integers(0, 256, im.size[::-1], dtype=np.uint8)))
    return im


def _rgb16(folder: Path) -> None:
    import cv2

    p = folder / "00004.png"
    arr = cv2.imread(str(p)).astype(np.uint16) * 257
    cv2.imwrite(str(p), arr)


def _multipage(folder: Path) -> None:
    p = folder / "00004.png"
    img = Image.open(p).convert("RGB")
    p.unlink()
    img.save(folder / "00004.tif", save_all=True, append_images=[img, img])


def _video(d: Path, n=30, cut=None, ext=".avi", fourcc="MJPG") -> None:
    import cv2

    from dinotools.eval.synthetic_clip import make_clip as clip
    from dinotools.io.masks import write_mask

    frames, gt = clip(n, SIZE)
    path = d / f"v{ext}"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 24, (SIZE[1], SIZE[0]))
    for f in frames:
        w.write(np.ascontiguousarray(f[:, :, ::-1]))
    w.release()
    if cut:
        path.write_bytes(path.read_bytes()[: int(path.stat().st_size * cut)])
    m = gt[0].copy()
    m[:4, :4] = 1
    write_mask(d / "mask.png", m)


def _videos(a) -> None:
    V = ["--video", "v.avi", "--mask", "mask.png", "--output", "out"]
    simple(a, "video ok", V, rc=0, n=30, clip=False, prep=lambda d: _video(d))
    simple(a, "video cut mid-file", [*V, "--report", "r.json"], rc=0, n=None, clip=False, want="of the 30 frames",
           prep=lambda d: _video(d, cut=0.5), check=lambda d, r: None if '"frames_decoded"' in
           (d / "r.json").read_text() else "report lacks the counts")
    simple(a, "video cut mid-file --strict", [*V, "--strict"], rc=2, n=None, clip=False, want="--strict",
           prep=lambda d: _video(d, cut=0.5))
    simple(a, "video missing", V, clip=False, prep=lambda d: make_clip(d), want="not found")
    simple(a, "video of random bytes", V, clip=False,
           prep=lambda d: (make_clip(d), (d / "v.avi").write_bytes(os.urandom(5000))), want="v.avi")
    simple(a, "video empty file", V, clip=False, prep=lambda d: (make_clip(d), (d / "v.avi").write_bytes(b"")),
           want="v.avi")
    simple(a, "video mp4 without index", ["--video", "v.mp4", "--mask", "mask.png", "--output", "out"], clip=False,
           prep=lambda d: _video(d, cut=0.5, ext=".mp4", fourcc="mp4v"), want="v.mp4")
    simple(a, "video mask past the announced end", ["--video", "v.avi", "--mask", "masks", "--output", "out"],
           clip=False, n=None, want="for frame 40", prep=lambda d: (_video(d), (d / "masks").mkdir(),
                                                                    os.replace(d / "mask.png", d / "masks/00000.png"),
                                                                    _copy(d / "masks/00000.png", d / "masks/00040.png")))


def _copy(src: Path, dst: Path) -> None:
    dst.write_bytes(src.read_bytes())


def _masks(a) -> None:
    from dinotools.io.masks import write_mask

    def mask(fn):
        return lambda d: fn(d)

    simple(a, "mask missing", ["--frames", "frames", "--mask", "nope.png", "--output", "out"], want="nope.png")
    simple(a, "mask RGB colour", TRACK, prep=lambda d: Image.new("RGB", (64, 48), (255, 0, 0)).save(d / "mask.png"),
           want="colour")
    simple(a, "mask empty", TRACK, prep=lambda d: write_mask(d / "mask.png", np.zeros(SIZE, np.uint8)),
           want="has no object")
    simple(a, "mask other aspect", TRACK, prep=lambda d: write_mask(d / "mask.png", np.ones((48, 48), np.uint8)),
           want="aspect")
    simple(a, "mask half size (warned once)", TRACK, rc=0, want="resized", prep=lambda d: write_mask(
        d / "mask.png", np.ones((24, 32), np.uint8)), check=lambda d, r: None if r.err.count("resized") == 1
        else f"warned {r.err.count('resized')} times")
    simple(a, "mask id 300 (.npy)", ["--frames", "frames", "--mask", "m.npy", "--output", "out"], want="300",
           prep=lambda d: np.save(d / "m.npy", np.full(SIZE, 300)))
    simple(a, "mask .npy of objects (pickle)", ["--frames", "frames", "--mask", "m.npy", "--output", "out"],
           want="m.npy", prep=lambda d: np.save(d / "m.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True))
    simple(a, "mask .npy float", ["--frames", "frames", "--mask", "m.npy", "--output", "out"], want="integer",
           prep=lambda d: np.save(d / "m.npy", np.ones(SIZE, np.float32)))
    simple(a, "mask .npy negative", ["--frames", "frames", "--mask", "m.npy", "--output", "out"], want="negative",
           prep=lambda d: np.save(d / "m.npy", np.full(SIZE, -1)))
    M = ["--frames", "frames", "--mask", "masks", "--output", "out"]

    def folder(*extra):
        def prep(d):
            (d / "masks").mkdir()
            _copy(d / "mask.png", d / "masks/00000.png")
            for name in extra:
                _copy(d / "mask.png", d / "masks" / name)
        return prep
    simple(a, "mask folder, later object", M, rc=0, prep=folder("00006.png"))
    simple(a, "mask for frame 99 of 12 (before tracking)", M, prep=folder("00099.png"), want="holds 12 frames",
           check=lambda d, r: "tracked first" if (d / "out").exists() and any((d / "out").glob("*.png")) else None)
    simple(a, "mask named like no frame", M, prep=folder("cat.png"), want="matches no frame")
    simple(a, "mask folder empty", M, prep=lambda d: (d / "masks").mkdir(), want="holds no")
    simple(a, "mask folder dangling symlink", M, prep=lambda d: (folder()(d), os.symlink(
        d / "gone.png", d / "masks" / "00004.png")), want="00004.png")
    simple(a, "10,000-file mask folder (past the end)", M, want="holds 12 frames", prep=lambda d: (
        folder()(d), [_copy(d / "mask.png", d / "masks" / f"{i:05d}.png") for i in range(1, 10_000)]))


