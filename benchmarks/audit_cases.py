"""The cases of ``benchmarks/audit.py``: the issue-12 audit's bad inputs, interruptions and disks, and more."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
from PIL import Image

from audit import BASE, N, PY, SIZE, Result, cli, inspect, make_clip, ns, verdict  # noqa: E402

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


def build(audit) -> None:
    _arguments(audit)
    _frames(audit)
    _modes(audit)
    _videos(audit)
    _masks(audit)
    _outputs(audit)
    _weights(audit)
    _resume(audit)
    _interruptions(audit)
    _disks(audit)
    _evaluation(audit)


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

    from dinotools.demo import make_clip as clip
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


def _outputs(a) -> None:
    simple(a, "output is a file", [*TRACK[:4], "--output", "f"], out=None, prep=lambda d: (d / "f").write_text("x"),
           want="not a folder")
    simple(a, "output not empty", TRACK, out=None, prep=lambda d: ((d / "out").mkdir(), (d / "out/keep.png").write_bytes(
        b"x")), want="--overwrite", check=lambda d, r: None if (d / "out/keep.png").read_bytes() == b"x" else "lost")
    simple(a, "output is the frames folder", [*TRACK[:4], "--output", "frames", "--overwrite"], out=None,
           want="is an input", check=lambda d, r: None if len(list((d / "frames").glob("*.png"))) == N else "lost")
    simple(a, "output under a file", [*TRACK[:4], "--output", "f/out"], out=None,
           prep=lambda d: (d / "f").write_text("x"), want="not a folder")
    simple(a, "output name of 300 bytes", [*TRACK[:4], "--output", "o" * 300], out=None, want="bytes")
    simple(a, "frames path component of 300 bytes", ["--frames", "x" * 300, "--mask", "mask.png", "--output", "out"],
           want="too long")
    simple(a, "--report into a missing folder", [*TRACK, "--report", "nodir/r.json"], want="does not exist",
           check=lambda d, r: "output created" if (d / "out").exists() else None)
    simple(a, "--report onto a folder", [*TRACK, "--report", "rdir"], prep=lambda d: (d / "rdir").mkdir(),
           want="is a folder")
    simple(a, "--report is the mask", [*TRACK, "--report", "mask.png"], want="is an input")
    simple(a, "--report same as --overlay", [*TRACK, "--report", "o.mp4", "--overlay", "o.mp4"], want="same file")
    simple(a, "--report ok", [*TRACK, "--report", "r.json"], rc=0,
           check=lambda d, r: None if '"frames": 12' in (d / "r.json").read_text() else "bad report")
    simple(a, "--save-probs onto a file", [*TRACK, "--save-probs", "pf"], prep=lambda d: (d / "pf").write_text("x"),
           want="not a folder")
    simple(a, "--save-probs ok", [*TRACK, "--save-probs"], rc=0,
           check=lambda d, r: None if len(list((d / "out/probs").glob("*.npz"))) == N else "probs missing")
    simple(a, "--overlay unknown type", [*TRACK, "--overlay", "o.xyz"], want="unknown video type")
    simple(a, "--overlay into a missing folder", [*TRACK, "--overlay", "nodir/o.mp4"], want="does not exist")
    simple(a, "--overlay onto a folder", [*TRACK, "--overlay", "od.mp4"], prep=lambda d: (d / "od.mp4").mkdir(),
           want="is a folder")
    simple(a, "--overlay ok", [*TRACK, "--overlay", "o.mp4"], rc=0, check=_overlay_frames(N))

    def longer(d):
        assert cli(d, *TRACK).rc == 0
        for p in sorted((d / "frames").glob("*.png"))[6:]:
            p.unlink()
    simple(a, "--overwrite over a longer run", [*TRACK, "--overwrite"], rc=0, n=6, prep=longer,
           want="removed 12 file(s)", check=lambda d, r: None if len(list((d / "out").glob("*.png"))) == 6
           else "stale PNGs left")

    def modes(d, r):
        mode = (d / "out/00003.png").stat().st_mode & 0o777
        return None if mode == 0o640 else f"mode {oct(mode)} under umask 027"
    a.add("output modes follow the umask", lambda d: _umask(d, modes))


def _umask(d: Path, check) -> Result:
    make_clip(d)
    res = cli(d, *TRACK, preexec=lambda: os.umask(0o027))
    return verdict(res, 0, d / "out", N, check=lambda: check(d, res))


def _overlay_frames(n):
    def check(d, r):
        import cv2

        cap = cv2.VideoCapture(str(d / "o.mp4"))
        got = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
        return None if got == n else f"overlay holds {got} frames"
    return check


def _weights(a) -> None:
    W = [*TRACK, "--backbone", "vits16", "--weights"]

    def evil(d):
        import torch

        class Evil:
            def __reduce__(self):
                return (os.system, (f"touch {d / 'pwned'}",))
        torch.save({"model": Evil()}, d / "evil.pth")
    simple(a, "malicious pickle weights", [*W, "evil.pth"], prep=evil, want="for safety",
           check=lambda d, r: "CODE RAN" if (d / "pwned").exists() else None)
    simple(a, "weights: HTML page", [*W, "w.pth"], prep=lambda d: (d / "w.pth").write_text("<!doctype html>"),
           want="HTML")
    simple(a, "weights: empty file", [*W, "w.pth"], prep=lambda d: (d / "w.pth").write_bytes(b""), want="empty")
    simple(a, "weights: missing", [*W, "w.pth"], want="do not exist")
    simple(a, "weights: empty folder", [*W, "wd"], prep=lambda d: (d / "wd").mkdir(), want="wd")

    def truncated(d):
        import torch

        torch.save({"cls_token": torch.zeros(1, 1, 384)}, d / "full.pth")
        (d / "w.pth").write_bytes((d / "full.pth").read_bytes()[:300])
    simple(a, "weights: truncated zip", [*W, "w.pth"], prep=truncated, want="truncated")
    simple(a, "weights random, seeded run", [*TRACK, "--backbone", "vits16", "--weights", "random"], rc=0)


def _killed(d: Path, sig, after_pngs=None, after_s=None, n=40, extra=()) -> Result:
    """Start a run, send ``sig`` after ``after_pngs`` outputs or ``after_s`` seconds, then ``--resume``."""
    make_clip(d, n=n, size=(96, 128))
    args = [PY, "-m", "dinotools.run", *BASE, *TRACK, "--short-side", "96", *extra]
    p = subprocess.Popen(args, cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while p.poll() is None and time.time() - t0 < 300:
        if after_s is not None and time.time() - t0 >= after_s:
            break
        if after_pngs is not None and len(list((d / "out").glob("*.png"))) >= after_pngs:
            break
        time.sleep(0.005)
    p.send_signal(sig)
    err = p.communicate()[1]
    first = Result(p.returncode, err)
    first.outputs, broken = inspect(d / "out", n, (96, 128))
    resumed = cli(d, *TRACK, "--short-side", "96", "--resume", *extra)
    res = Result(f"{p.returncode}>{resumed.rc}", err + resumed.err)
    res = verdict(res, {f"{p.returncode}>0"}, d / "out", n, size=(96, 128))
    res.outputs = f"killed: {first.outputs}; resumed: {res.outputs}"
    if broken:
        res.problem = "broken output after the kill"
    return res


def _interruptions(a) -> None:
    for sig, code in ((signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGHUP, 129)):
        def run(d, sig=sig, code=code):
            res = _killed(d, sig, after_pngs=8)
            if not str(res.rc).startswith(f"{code}>") and res.problem is None:
                res.problem = f"exit {res.rc}, expected {code} then 0"
            if res.problem is None and "--resume" not in res.err:
                res.problem = "no resume hint"
            return res
        a.add(f"{signal.Signals(sig).name} midway, then --resume", run)
    rng = random.Random(12)
    for i in range(8):
        delay = round(rng.uniform(0.0, 6.0), 2)
        a.add(f"SIGKILL at {delay:.2f}s, then --resume", lambda d, t=delay: _killed(d, signal.SIGKILL, after_s=t))
    a.add("SIGKILL midway with --save-probs, resume", lambda d: _killed(d, signal.SIGKILL, after_pngs=10,
                                                                         extra=("--save-probs",)))

    def overlay_term(d):
        make_clip(d, n=40, size=(96, 128))
        p = subprocess.Popen([PY, "-m", "dinotools.run", *BASE, *TRACK, "--short-side", "96", "--overlay", "o.mp4"],
                             cwd=d, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        while p.poll() is None and len(list((d / "out").glob("*.png"))) < 8:
            time.sleep(0.005)
        p.send_signal(signal.SIGTERM)
        res = Result(p.returncode, p.communicate()[1])
        left = [x.name for x in d.glob("*.mp4*")] + [x.name for x in d.glob(".o.mp4*")]
        return verdict(res, 143, d / "out", 40, want="without --overlay", size=(96, 128),
                       check=lambda: f"overlay left: {left}" if left else None)
    a.add("SIGTERM with --overlay", overlay_term)


def _resume(a) -> None:
    def interrupted(d, n=12, bad=8):
        """A run that stopped at frame ``bad`` (a corrupt frame): outputs 0..bad-1 and its record."""
        make_clip(d, n=n)
        good = (d / "frames" / f"{bad:05d}.png").read_bytes()
        (d / "frames" / f"{bad:05d}.png").write_bytes(good[:100])
        assert cli(d, *TRACK).rc == 2
        (d / "frames" / f"{bad:05d}.png").write_bytes(good)

    def flow(name, steps, n=N):
        def run(d):
            interrupted(d)
            results = []
            for args, prep, expect in steps:
                if prep:
                    prep(d)
                r = cli(d, *TRACK, "--resume", *args)
                results.append(r)
                if r.rc != expect or "Traceback" in r.err:
                    res = Result(">".join(str(x.rc) for x in results), r.err)
                    return verdict(res, "never", d / "out", n)
            res = Result(">".join(str(x.rc) for x in results), results[0].err + results[-1].err)
            return verdict(res, {res.rc}, d / "out", n)
        a.add(name, run)

    def move_tail(d):
        (d / "later").mkdir()
        for p in sorted((d / "frames").glob("*.png"))[8:]:
            p.rename(d / "later" / p.name)

    def move_back(d):
        for p in (d / "later").glob("*.png"):
            p.rename(d / "frames" / p.name)
    flow("resume: source no longer than written (issue)", [([], move_tail, 2), ([], move_back, 0)])
    flow("resume: --topk changed on the all-written path", [(["--topk", "3"], move_tail, 2), ([], move_back, 0)])
    flow("resume: --short-side changed", [(["--short-side", "64"], None, 2), ([], None, 0)])
    flow("resume: mask edited", [([], lambda d: _flip_mask(d), 2), ([], lambda d: _flip_mask(d), 0)])
    for what, content in (("garbage", "{not json"), ("empty", ""), ("[]", "[]"), ("no frames key", '{"a": 1}')):
        flow(f"resume: run record {what}", [([], lambda d, c=content: (d / "out/.dinotools-run.json").write_text(c), 2)])
    flow("resume: gap in outputs", [([], lambda d: (d / "out/00003.png").unlink(), 2)])
    flow("resume: a foreign PNG size", [([], lambda d: Image.new("P", (8, 8)).save(d / "out/00007.png"), 2)])
    flow("resume: twice", [([], None, 0), ([], None, 0)])

    def seeds(d):
        make_clip(d)
        args = [*TRACK, "--backbone", "vits16", "--weights", "random", "--short-side", "32"]
        (d / "frames/00008.png").write_bytes(b"corrupt")
        first = cli(d, *args, "--seed", "1")
        make_clip(d)
        other = cli(d, *args, "--seed", "2", "--resume")
        same = cli(d, *args, "--seed", "1", "--resume")
        res = Result(f"{first.rc}>{other.rc}>{same.rc}", other.err)
        return verdict(res, "2>2>0", d / "out", N, want="seed")
    a.add("resume: --weights random with another seed", seeds)
    simple(a, "resume: nothing to resume", [*TRACK, "--resume"], rc=0, prep=lambda d: cli(d, *TRACK),
           want="nothing to resume")
    simple(a, "resume: fresh folder", [*TRACK, "--resume"], rc=0)


def _flip_mask(d: Path) -> None:
    """Edit the mask in place (flipped upside down; twice gives the original back)."""
    from dinotools.io.masks import read_mask, write_mask

    write_mask(d / "mask.png", np.flipud(read_mask(d / "mask.png")))


def _disks(a) -> None:
    def tmpfs(name, script, expect, want=None, n=N, out="out", check=None):
        def run(d):
            make_clip(d)
            res = ns(d, script)
            return verdict(res, expect, d / out if out else None, n, want, check and (lambda: check(d, res)))
        a.add(name, run, needs_ns=True)
    cmd = '$PY -m dinotools.run $BASE --frames frames --mask mask.png'
    tmpfs("full disk: PNGs, then resume after freeing", f"""
mkdir -p out && mount -t tmpfs -o size=20k tmpfs out
{cmd} --output out; a=$?; ls out | wc -l >&2
mount -o remount,size=1m out; {cmd} --output out --resume; b=$?
mkdir -p copy && cp -a out/. copy/; exit $(( a * 10 + b ))""", 20, out="copy", want="No space left")
    tmpfs("full disk: --save-probs", f"""
mkdir -p p && mount -t tmpfs -o size=12k tmpfs p
{cmd} --output out --save-probs p""", 2, want="No space left")
    tmpfs("full disk: overlay", f"""
mkdir -p v && mount -t tmpfs -o size=8k tmpfs v
{cmd} --output out --overlay v/o.mp4 --short-side 48; r=$?; ls -a v; exit $r""", 2, want="overlay video",
          check=lambda d, r: "partial overlay left" if ".mp4" in r.out else None)
    tmpfs("full disk: report", f"""
mkdir -p r && mount -t tmpfs -o size=4k tmpfs r && head -c 4096 /dev/zero > r/fill
{cmd} --output out --report r/report.json""", 2, want="cannot write the report")
    tmpfs("read-only disk: output", f"""
mkdir -p ro && mount -t tmpfs -o ro tmpfs ro
{cmd} --output ro/out""", 2, out=None, want="Read-only")
    tmpfs("read-only disk: --report", f"""
mkdir -p ro && mount -t tmpfs -o ro tmpfs ro
{cmd} --output out --report ro/r.json""", 2, n=0, want="Read-only",
          check=lambda d, r: "output created" if (d / "out").exists() else None)
    tmpfs("read-only disk: --save-probs", f"""
mkdir -p ro && mount -t tmpfs -o ro tmpfs ro
{cmd} --output out --save-probs ro/p""", 2, n=0, want="Read-only")
    tmpfs("read-only output folder, --resume", f"""
cp frames/00008.png good.png && head -c 100 good.png > frames/00008.png
{cmd} --output out 2>/dev/null; cp good.png frames/00008.png
mount --bind out out && mount -o remount,ro,bind out && {cmd} --output out --resume""", 2, want="Read-only",
          check=record_kept)

    def fsize(d):
        make_clip(d, n=24, size=(96, 128))
        import resource

        res = cli(d, *TRACK, "--short-side", "96", "--overlay", "o.mp4",
                  preexec=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (16384, 16384)))
        return verdict(res, 2, d / "out", 24, want="overlay", size=(96, 128))
    a.add("file size limit (ulimit -f 16) on the overlay", fsize)

    def oom(d):
        import resource

        make_clip(d, n=3, size=(480, 640))
        res = cli(d, *TRACK, "--backbone", "vits16", "--weights", "random", "--short-side", "2048",
                  preexec=lambda: resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30)))
        return verdict(res, 2, d / "out", 3, want="--short-side (now 2048)", size=(480, 640))
    a.add("out of memory (8 GB address space, short side 2048)", oom)

    def tenk(d):
        make_clip(d, n=10_000, size=(32, 32))
        res = cli(d, *TRACK, "--short-side", "32", timeout=3000)
        return verdict(res, 0, d / "out", 10_000, size=(32, 32))
    a.add("10,000 frames", tenk, heavy=True)


def _davis(d: Path) -> None:
    from dinotools.demo import make_clip as clip
    from dinotools.io.masks import write_mask

    for seq in ("a", "b"):
        frames, gt = clip(5, SIZE, seed=ord(seq))
        (d / "D/JPEGImages/480p" / seq).mkdir(parents=True)
        (d / "D/Annotations/480p" / seq).mkdir(parents=True)
        for i, (f, m) in enumerate(zip(frames, gt)):
            Image.fromarray(f).save(d / "D/JPEGImages/480p" / seq / f"{i:05d}.jpg")
            write_mask(d / "D/Annotations/480p" / seq / f"{i:05d}.png", m)


def _evaluation(a) -> None:
    E = ["--davis", "D", "--track", "--backbone", "baseline", "--short-side", "48", "--out", "ev"]
    for name, extra, rc, want in [
        ("eval ok", [], 0, "J&F"), ("eval --grid topkk=3,5", ["--grid", "topkk=3,5"], 2, "did you mean 'topk'"),
        ("eval --tracker-arg foo=1", ["--tracker-arg", "foo=1"], 2, "no parameter 'foo'"),
        ("eval --backbone-arg foo=1", ["--backbone-arg", "foo=1"], 2, "no parameter 'foo'"),
        ("eval --set NAME without its file", ["--set", "test-dev"], 2, "not found"),
        ("eval --temperature inf", ["--temperature", "inf"], 2, "finite"),
        ("eval --grid topk=0,5", ["--grid", "topk=0,5"], 2, ">= 1"),
        ("eval --device cuda:3", ["--device", "cuda:3"], 2, "cuda"),
        ("eval --max-frames 1", ["--max-frames", "1"], 2, ">= 3"),
        ("eval --sequences nope", ["--sequences", "nope"], 2, "not found"),
    ]:
        simple(a, name, [*E, *extra], rc=rc, want=want, module="dinotools.eval", clip=False, out=None, prep=_davis)
    simple(a, "eval --davis missing", ["--davis", "nope", "--results", "r"], module="dinotools.eval", clip=False,
           out=None, want="not found")
    simple(a, "eval --results missing", ["--davis", "D", "--results", "nope"], module="dinotools.eval", clip=False,
           out=None, prep=_davis, want="nope")
