"""The reliability audit of issue 12: ~130 bad inputs, interruptions and full/read-only disks, one line each.

Rerun with one command (about 10 minutes on 2 busy cores):

    python benchmarks/audit.py [--only SUBSTRING] [--jobs 2] [--heavy] [--keep]

Every case runs the real command line (``python -m dinotools.run`` / ``dinotools.eval``) in a
subprocess and prints ``case | exit code | first line of stderr | outputs | verdict``. A case is
``ok`` when nothing printed a traceback, the exit code is the one expected, and the outputs are
complete (exit 0) or hold only complete frames with nothing finished lost (any other exit).
Full and read-only disks are small tmpfs mounts in a private mount namespace (``unshare -rm``);
those cases are skipped, and said so, where unshare is not allowed. ``--heavy`` adds a
10,000-frame run. The exit status is the number of cases that are not ok (0: all ok).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
PY = sys.executable
BASE = ["--backbone", "baseline", "--propagator", "torch", "--short-side", "48", "--no-progress"]
N, SIZE = 12, (48, 64)  # the clip every case starts from: 12 frames of 64x48


@dataclass
class Result:
    rc: object
    err: str
    out: str = ""
    outputs: str = ""
    problem: Optional[str] = None  # why the case is not ok (None: ok)


@dataclass
class Case:
    name: str
    run: Callable[[Path], Result]
    heavy: bool = False
    needs_ns: bool = False


@dataclass
class Audit:
    cases: List[Case] = field(default_factory=list)

    def add(self, name, run, **kw):
        self.cases.append(Case(name, run, **kw))


def make_clip(d: Path, n: int = N, size=SIZE, ext: str = ".png") -> Path:
    """``d/frames`` (the demo clip) and ``d/mask.png``; returns ``d``."""
    from dinotools.eval.synthetic_clip import make_clip as clip
    from dinotools.io.masks import write_mask

    frames, gt = clip(n, size)
    (d / "frames").mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(d / "frames" / f"{i:05d}{ext}")
    m = gt[0].copy()
    m[:4, :4] = 1  # id 1 survives any downsampling
    write_mask(d / "mask.png", m)
    return d


def cli(d: Path, *args, module="dinotools.run", base=True, timeout=600, env=None, preexec=None) -> Result:
    cmd = [PY, "-m", module, *(BASE if base and module == "dinotools.run" else []), *map(str, args)]
    p = subprocess.run(cmd, cwd=d, capture_output=True, text=True, timeout=timeout, env=env, preexec_fn=preexec)
    return Result(p.returncode, p.stderr, p.stdout)


def ns(d: Path, script: str, timeout=600) -> Result:
    """``script`` (bash) in a private mount namespace (tmpfs mounts vanish with it); ``$PY`` is Python."""
    p = subprocess.run(["unshare", "-rm", "bash", "-c", f"set -u; PY={PY}; BASE='{' '.join(BASE)}'\n{script}"],
                       cwd=d, capture_output=True, text=True, timeout=timeout)
    return Result(p.returncode, p.stderr, p.stdout)


def can_unshare() -> bool:
    try:
        return subprocess.run(["unshare", "-rm", "bash", "-c", "mkdir -p /tmp/.a && mount -t tmpfs -o size=4k tmpfs "
                               "/tmp/.a"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def inspect(out: Path, n: int = N, size=SIZE) -> tuple:
    """(summary, broken): PNG count, all complete and of the frames' size, temp files, run record."""
    from dinotools.io.masks import read_mask

    if not out.is_dir():
        return "no output folder", False
    pngs = sorted(out.glob("*.png"))
    bad = []
    for p in pngs:
        try:
            if read_mask(p).shape != tuple(size):
                bad.append(p.name)
        except Exception:  # noqa: BLE001 - an unreadable output is what this looks for
            bad.append(p.name)
    temps = [p.name for p in out.rglob(".*.tmp")]
    record = (out / ".dinotools-run.json").exists()
    text = f"{len(pngs)}/{n if n is not None else '?'} PNG" + (f", {len(bad)} BROKEN" if bad else "") + (", temp left" if temps else "") \
        + (", record kept" if record else "")
    return text, bool(bad or temps)


def verdict(res: Result, expect, out: Optional[Path], n: int, want: Optional[str] = None,
            check: Optional[Callable[[], Optional[str]]] = None, size=SIZE) -> Result:
    """Fill ``res.outputs`` and ``res.problem`` from the rules in the module docstring."""
    expect = expect if isinstance(expect, (set, tuple, list)) else {expect}
    if out is not None:
        res.outputs, broken = inspect(out, n, size)
        if broken:
            res.problem = "broken output"
        if res.rc == 0 and n is not None and not res.outputs.startswith(f"{n}/{n}"):
            res.problem = "exit 0 with missing output"
    if "Traceback" in res.err:
        res.problem = "traceback"
    elif res.rc not in expect:
        res.problem = f"exit {res.rc}, expected {sorted(expect)}"
    elif want and want not in res.err + res.out:
        res.problem = f"message lacks {want!r}"
    elif res.rc == 2 and len([ln for ln in res.err.splitlines() if ln.startswith("error:")]) != 1:
        res.problem = "not exactly one error line"
    if res.problem is None and check is not None:
        res.problem = check()
    return res


def first_err(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith(("error:", "interrupted", "Traceback"))]
    return (errors or lines or [""])[0][:150]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="run the cases whose name contains this")
    ap.add_argument("--start", type=int, default=0, help="skip the first N cases (to finish an interrupted audit)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--heavy", action="store_true", help="also the 10,000-frame run (minutes)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args()
    from audit_batch_safety import build as build_batch_safety
    from audit_params import build as build_params
    from audit_points import build as build_points
    from audit_readers import build as build_readers
    from audit_runs import build

    from audit_phases import build as build_phases

    audit = Audit()
    build(audit)
    build_phases(audit)  # issue 20: inputs in the output folder, --overwrite, a kill at every phase
    build_batch_safety(audit)  # issue 20: batch output among the inputs, kills, subsets, stale writers
    build_params(audit)
    build_points(audit)  # points: kill then --resume, full disk
    build_readers(audit)
    root = Path(tempfile.mkdtemp(prefix="dinotools-audit-"))
    nsok = can_unshare()
    cases = [c for c in audit.cases[args.start:] if (not args.only or args.only in c.name) and (args.heavy or not c.heavy)]

    def one(i_case):
        i, case = i_case
        d = root / f"{i:03d}"
        d.mkdir()
        if case.needs_ns and not nsok:
            return case, Result("skip", "unshare -rm not allowed here"), 0.0
        t0 = time.time()
        try:
            res = case.run(d)
        except Exception as exc:  # noqa: BLE001 - a broken case is reported, not fatal
            res = Result("?", f"audit case failed: {type(exc).__name__}: {exc}", problem="case error")
        return case, res, time.time() - t0

    bad = 0
    print(f"{'case':<46} | {'exit':>4} | {'first line of stderr':<70} | outputs | verdict")
    with ThreadPoolExecutor(args.jobs) as pool:
        for case, res, secs in pool.map(one, enumerate(cases)):
            ok = "skipped" if res.rc == "skip" else "ok" if res.problem is None else f"NOT OK: {res.problem}"
            bad += ok.startswith("NOT")
            print(f"{case.name:<46} | {res.rc!s:>4} | {first_err(res.err):<70} | {res.outputs} | {ok}", flush=True)
    print(f"{len(cases)} cases, {bad} not ok; work folder {root}" + ("" if args.keep else " (removed)"))
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return bad


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
