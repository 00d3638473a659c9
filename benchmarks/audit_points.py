"""Audit cases of ``python -m dinotools.points`` (issues 19 and 20): a kill while the tracks are
written then ``--resume``, ``--resume`` of finished tracks or with other settings, and a full disk
(the tracks kept elsewhere, and said where). Registered in ``audit.py``."""
from __future__ import annotations

import os
from pathlib import Path

from audit import N, Result, cli, first_err, make_clip, ns

POINTS = ["--frames", "frames", "--grid", "3", "--backbone", "baseline", "--short-side", "48", "--radius", "4",
          "--no-progress"]


def build(audit) -> None:
    audit.add("points: killed while the tracks are written, then --resume", _killed_then_resume)
    audit.add("points: --resume of finished tracks", _resume_finished)
    audit.add("points: --resume with other settings", _resume_other_settings)
    audit.add("points: disk full before the first frame: one line, nothing lost", _full_from_start, needs_ns=True)
    audit.add("points: disk full at the end keeps the tracks and says where", _full_disk, needs_ns=True)


def _tracks_problem(path: Path, complete: bool = True):
    """None when ``path`` holds ``N`` frames of tracks, complete as asked, and nothing was left beside it."""
    from dinotools.io.tracks import read_tracks

    if not path.is_file():
        return f"no {path.name}"
    t = read_tracks(path)
    if len(t.frame_names) != N or bool(t.complete) != complete:
        return f"{path.name}: {len(t.frame_names)} frames, complete={t.complete}"
    left = [p.name for p in path.parent.glob(f".{path.name}*")]
    return f"left beside it: {left}" if left else None


def _one(res: Result, expect: str, want: str = None) -> Result:
    res.outputs = first_err(res.err) or res.out.strip()[:100]
    if "Traceback" in res.err:
        res.problem = "traceback"
    elif str(res.rc) != expect:
        res.problem = f"exit {res.rc}, expected {expect}"
    elif want and want not in res.err + res.out:
        res.problem = f"message lacks {want!r}"
    return res


def _killed_then_resume(d: Path) -> Result:
    make_clip(d)
    first = cli(d, *POINTS, "--output", "t.npz", module="dinotools.points",
                env=dict(os.environ, DINOTOOLS_TEST_KILL_AT="save:t.npz"))
    second = cli(d, *POINTS, "--output", "t.npz", "--resume", module="dinotools.points")
    res = _one(Result(f"{first.rc}>{second.rc}", second.err, second.out), "-9>0")
    res.problem = res.problem or _tracks_problem(d / "t.npz")
    return res


def _resume_finished(d: Path) -> Result:
    make_clip(d)
    cli(d, *POINTS, "--output", "t.npz", module="dinotools.points")
    res = _one(cli(d, *POINTS, "--output", "t.npz", "--resume", module="dinotools.points"), "0", "nothing to resume")
    res.problem = res.problem or _tracks_problem(d / "t.npz")
    return res


def _resume_other_settings(d: Path) -> Result:
    make_clip(d)
    first = cli(d, *POINTS, "--output", "t.npz", module="dinotools.points",
                env=dict(os.environ, DINOTOOLS_TEST_KILL_AT="save:t.npz"))
    res = _one(cli(d, *POINTS, "--output", "t.npz", "--resume", "--topk", "3", module="dinotools.points"), "2")
    res.rc = f"{first.rc}>{res.rc}"
    if res.problem is None and len([ln for ln in res.err.splitlines() if ln.startswith("error:")]) != 1:
        res.problem = "not exactly one error line"
    return res


def _full_from_start(d: Path) -> Result:
    make_clip(d)
    script = (f"mkdir -p full && mount -t tmpfs -o size=8k tmpfs full && "
              f"head -c 8192 /dev/zero > full/filler 2>/dev/null; "
              f"$PY -m dinotools.points {' '.join(POINTS)} --output full/t.npz")
    res = _one(ns(d, script), "2", "No space left")
    if res.problem is None and len([ln for ln in res.err.splitlines() if ln.startswith("error:")]) != 1:
        res.problem = "not exactly one error line"
    return res


def _full_disk(d: Path) -> Result:
    make_clip(d)
    (d / "rescue").mkdir()
    # room for the run record (one 4 KiB page), not for 900 points' tracks
    many = [a if a != "3" else "30" for a in POINTS]
    script = (f"mkdir -p full && mount -t tmpfs -o size=64k tmpfs full && "
              f"head -c 57344 /dev/zero > full/filler 2>/dev/null; "
              f"TMPDIR={d / 'rescue'} $PY -m dinotools.points {' '.join(many)} --output full/t.npz")
    res = _one(ns(d, script), "2", "kept in")
    rescued = list((d / "rescue").glob("t.rescued-*.npz"))
    if res.problem is None:
        res.problem = None if rescued else "no rescued tracks in $TMPDIR"
    if res.problem is None:
        res.problem = _tracks_problem(rescued[0])
    return res
