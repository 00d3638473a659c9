"""Audit cases (``benchmarks/audit.py``): outputs, weights, resume, interruptions, disks, evaluation."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script or imported by asv's discovery
from audit import BASE, PY, SIZE, N, Result, cli, inspect, make_clip, ns, verdict  # noqa: E402
from audit_inputs import (  # noqa: E402
    TRACK,
    _arguments,
    _frames,
    _masks,
    _modes,
    _videos,
    record_kept,
    simple,
)


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
    t0, first = time.time(), None
    while p.poll() is None and time.time() - t0 < 300:
        if first is None and any((d / "out").glob("*.png")):
            first = time.time()  # delays count from the first output: startup time varies with the load
        if after_s is not None and first is not None and time.time() - first >= after_s:
            break
        if after_pngs is not None and len(list((d / "out").glob("*.png"))) >= after_pngs:
            break
        time.sleep(0.005)
    p.send_signal(sig)
    err = p.communicate()[1]
    first = Result(p.returncode, err)
    first.outputs, _ = inspect(d / "out", n, (96, 128))
    broken = "BROKEN" in first.outputs  # a temp file is expected after SIGKILL: --resume removes it
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
        delay = round(rng.uniform(0.0, 0.8), 3)
        a.add(f"SIGKILL {delay:.3f}s after the 1st PNG, --resume",
              lambda d, t=delay: _killed(d, signal.SIGKILL, after_s=t))
    a.add("SIGKILL midway with --save-probs, resume", lambda d: _killed(d, signal.SIGKILL, after_pngs=10,
                                                                         extra=("--save-probs",)))

    def overlay_term(d):
        make_clip(d, n=40, size=(96, 128))
        p = subprocess.Popen([PY, "-m", "dinotools.run", *BASE, *TRACK, "--short-side", "96", "--overlay", "o.mp4"],
                             cwd=d, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        while p.poll() is None and len(list((d / "out").glob("*.png"))) < 8:
            time.sleep(0.005)
        p.send_signal(signal.SIGTERM)
        err = p.communicate()[1]
        res = Result(p.returncode, err)
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

    def flow(name, steps, n=N, planted=False):
        """``steps``: (extra args, prep, expected exit) of successive --resume runs; ``planted``: a step
        puts a foreign file among the outputs on purpose (not counted as a broken output)."""
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
            res = verdict(res, {res.rc}, d / "out", n)
            if planted and res.problem == "broken output":
                res.problem = None if (d / "out/.dinotools-run.json").exists() else "record lost"
            return res
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
    flow("resume: a foreign PNG size", [([], lambda d: Image.new("P", (8, 8)).save(d / "out/00007.png"), 2)],
         planted=True)
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
    def tmpfs(name, script, expect, want=None, n=N, out="out", check=None, size=SIZE):
        def run(d):
            make_clip(d, n=n or N, size=size)  # n: the PNGs expected (0: none), not the clip's length
            res = ns(d, script)
            return verdict(res, expect, d / out if out else None, n, want, check and (lambda: check(d, res)),
                           size=size)
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
mkdir -p v && mount -t tmpfs -o size=16k tmpfs v
{cmd} --output out --overlay v/o.mp4 --short-side 96; r=$?; ls -a v; exit $r""", 2, want="overlay video",
          check=lambda d, r: "partial overlay left" if ".mp4" in r.out else None, n=24, size=(96, 128))
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

        make_clip(d, n=4, size=(240, 320))
        res = cli(d, *TRACK, "--short-side", "4096", "--batch-size", "4", "--prefetch", "0",
                  preexec=lambda: resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30)))
        return verdict(res, 2, d / "out", 4, want="--short-side (now 4096)", size=(240, 320))
    a.add("out of memory (3 GB address space, short side 4096)", oom)

    def tenk(d):
        make_clip(d, n=10_000, size=(32, 32))
        res = cli(d, *TRACK, "--short-side", "32", timeout=3000)
        return verdict(res, 0, d / "out", 10_000, size=(32, 32))
    a.add("10,000 frames", tenk, heavy=True)


def _davis(d: Path) -> None:
    from dinotools.eval.synthetic_clip import make_clip as clip
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
