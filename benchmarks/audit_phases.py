"""Audit cases (``benchmarks/audit.py``) of issue 20: inputs inside the output folder, ``--overwrite`` that
removes only (and all) an earlier run's outputs, a SIGKILL at every phase boundary followed by ``--resume``.

The kills are deterministic: the test hook ``DINOTOOLS_TEST_KILL_AT=<phase>`` (``dinotools._env``)
makes the process SIGKILL itself when it reaches the phase: ``save:<file>`` while that file is
written (temp file complete, not renamed), ``exports`` between the last label PNG and the exports,
``finish`` after every output, before the run record is removed. Run only these cases with
``python benchmarks/audit.py --only phases``.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import List, Optional

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script or imported by audit.py
from audit import N, Result, cli, make_clip, verdict  # noqa: E402
from audit_inputs import TRACK, simple  # noqa: E402

DAVIS = Path(os.environ.get("DINOTOOLS_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "data" / \
    "davis2016-mini"
ALL = ["coco", "objects", "youtube-vos"]


def build(audit) -> None:
    _inputs_in_output(audit)
    _overwrite(audit)
    _kills(audit)
    _other_commands(audit)


def _kept(path: str, content: Optional[bytes] = None):
    def check(d, res):
        p = d / path
        return None if p.is_file() and (content is None or p.read_bytes() == content) else f"{path} lost"
    return check


def _inputs_in_output(a) -> None:
    def mask_in(d):
        (d / "out").mkdir()
        shutil.copy(d / "mask.png", d / "out" / "00000.png")
    inside = ["--frames", "frames", "--mask", "out/00000.png", "--output", "out"]
    for flags in ([], ["--overwrite"], ["--resume"]):
        simple(a, f"phases: mask inside --output {' '.join(flags) or '(no flag)'}", [*inside, *flags], out=None,
               prep=mask_in, want="holds the input", check=_kept("out/00000.png"))
    simple(a, "phases: mask deep inside --output --overwrite", ["--frames", "frames", "--mask", "out/a/m.png",
           "--output", "out", "--overwrite"], out=None, want="holds the input", check=_kept("out/a/m.png"),
           prep=lambda d: ((d / "out/a").mkdir(parents=True), shutil.copy(d / "mask.png", d / "out/a/m.png")))
    simple(a, "phases: --output inside the frames folder", [*TRACK[:4], "--output", "frames/out", "--overwrite"],
           out=None, want="inside the input folder")
    simple(a, "phases: --output a symlink to the mask's folder", ["--frames", "frames", "--mask", "m/mask.png",
           "--output", "link", "--overwrite"], out=None, want="holds the input", check=_kept("m/mask.png"),
           prep=lambda d: ((d / "m").mkdir(), shutil.copy(d / "mask.png", d / "m"), os.symlink(d / "m", d / "link")))
    simple(a, "phases: --save-probs folder holds the mask", [*TRACK, "--save-probs", "."], out=None,
           want="holds the input")


def _overwrite(a) -> None:
    def foreign(d):
        (d / "out").mkdir()
        Image.fromarray(np.zeros((48, 64), np.uint8)).save(d / "out" / "00003.png")
    simple(a, "phases: --overwrite, a foreign PNG, no earlier run", [*TRACK, "--overwrite"], out=None, prep=foreign,
           want="not written by dinotools", check=_kept("out/00003.png"))

    def earlier_then_foreign(d):
        assert cli(d, *TRACK).rc == 0
        Image.fromarray(np.zeros((48, 64), np.uint8)).save(d / "out" / "x.png")
    simple(a, "phases: --overwrite, a foreign PNG beside a run", [*TRACK, "--overwrite"], out=None,
           prep=earlier_then_foreign, want="not written by dinotools", check=_kept("out/x.png"))

    def stale(d):
        assert cli(d, *TRACK, "--save-probs", *_formats(ALL)).rc == 0
        (d / "out" / "notes.txt").write_text("mine")

    def nothing_stale(d, res):
        names = sorted(p.name for p in (d / "out").iterdir())
        want = [f"{i:05d}.png" for i in range(N)] + ["notes.txt"]
        return None if names == want else f"left {sorted(set(names) - set(want))} lost {sorted(set(want) - set(names))}"
    simple(a, "phases: --overwrite removes earlier exports and probs", [*TRACK, "--overwrite"], rc=0, prep=stale,
           check=nothing_stale)


def _formats(formats: List[str]) -> List[str]:
    return [a for f in formats for a in ("--format", f)]


def exports_problem(out: Path, frames: Path, formats: List[str]) -> Optional[str]:
    """None when every export in ``out`` is what a writer makes of the PNGs there, with no spool, temp file
    or run record anywhere; else what is wrong."""
    from dinotools.io.export_common import video_name
    from dinotools.io.exports import Exports
    from dinotools.io.masks import read_mask

    left = [str(p.relative_to(out)) for p in out.rglob(".*")]
    if left:
        return f"left behind: {left[0]}"
    names = sorted(p.stem for p in out.glob("*.png"))
    check = out.parent / "check"
    shutil.rmtree(check, ignore_errors=True)
    check.mkdir()
    exports = Exports(formats, check, video_name(frames), names, sorted(p.name for p in frames.iterdir()))
    exports.start(0)
    for i, n in enumerate(names):
        exports.add(i, read_mask(out / f"{n}.png"))
    exports.finish()
    for want in sorted(p for p in check.rglob("*") if p.is_file()):
        got = out / want.relative_to(check)
        if not got.is_file() or got.read_bytes() != want.read_bytes():
            return f"export {got.relative_to(out)} {'differs from the PNGs' if got.is_file() else 'missing'}"
    return None


def _kills(a) -> None:
    def kill_then_resume(phase: str, formats: List[str]):
        def run(d: Path) -> Result:
            from dinotools.io.export_common import video_name

            make_clip(d)
            args = [*TRACK, "--save-probs", "--report", "r.json", *_formats(formats)]
            env = dict(os.environ, DINOTOOLS_TEST_KILL_AT=phase.format(video=video_name(d / "frames")))
            first = cli(d, *args, env=env)
            if first.rc != -9:
                return Result(first.rc, first.err, problem=f"not killed at {phase} (exit {first.rc})")
            second = cli(d, *args, "--resume")
            res = verdict(Result(f"-9>{second.rc}", second.err, second.out), {"-9>0"}, d / "out", N)
            if res.problem is None:
                res.problem = exports_problem(d / "out", d / "frames", formats) or (
                    None if (d / "r.json").is_file() else "no report")
            return res
        return run

    last = f"{N - 1:05d}.png"
    for phase, formats in [("save:00005.png", ALL), (f"save:{last}", ["coco", "objects"]), (f"save:{last}", ALL),
                           ("exports", ALL), ("save:{video}.coco.json", ALL), ("save:{video}.objects.json", ALL),
                           ("save:meta.json", ALL), ("save:r.json", ALL), ("finish", ALL)]:
        a.add(f"phases: run killed at {phase} ({'+'.join(formats)}), --resume", kill_then_resume(phase, formats))


def _other_commands(a) -> None:
    """``--resume`` for the other commands that write: batch (a rerun resumes) and eval --track."""
    def batch(phase: str):
        def run(d: Path) -> Result:
            if not DAVIS.is_dir():
                return Result("skip", f"no DAVIS data at {DAVIS}")
            args = ["--davis", DAVIS, "--sequences", "blackswan", "--max-frames", "6", "--output", "b", "--backbone",
                    "baseline", "--propagator", "torch", "--short-side", "48", "--format", "coco", "--no-progress"]
            first = cli(d, *args, module="dinotools.batch", env=dict(os.environ, DINOTOOLS_TEST_KILL_AT=phase))
            second = cli(d, *args, module="dinotools.batch")
            res = verdict(Result(f"{first.rc}>{second.rc}", second.err, second.out), {"-9>0"}, d / "b/blackswan", 6,
                          size=(480, 854))
            if res.problem is None:
                res.problem = exports_problem(d / "b/blackswan", DAVIS / "JPEGImages/480p/blackswan", ["coco"])
            if res.problem is None and "1 done" not in second.out:
                res.problem = f"rerun did not report the video done: {second.out.strip()[-120:]}"
            return res
        return run

    for phase in ("save:00003.png", "exports", "finish"):
        a.add(f"phases: batch killed at {phase}, rerun", batch(phase))

    def evaluation(phase: str):
        def run(d: Path) -> Result:
            if not DAVIS.is_dir():
                return Result("skip", f"no DAVIS data at {DAVIS}")
            args = ["--davis", DAVIS, "--track", "--backbone", "baseline", "--short-side", "48", "--sequences",
                    "blackswan", "--max-frames", "4", "--out", "e"]
            first = cli(d, *args, module="dinotools.eval", env=dict(os.environ, DINOTOOLS_TEST_KILL_AT=phase))
            second = cli(d, *args, "--resume", module="dinotools.eval")
            return verdict(Result(f"{first.rc}>{second.rc}", second.err, second.out), {"-9>0"}, d / "e/blackswan", 4,
                           size=(480, 854))
        return run
    for phase in ("save:00002.png", "finish"):
        a.add(f"phases: eval --track killed at {phase}, --resume", evaluation(phase))
