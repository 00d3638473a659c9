"""Audit cases (``benchmarks/audit.py``) of issue 20: batch outputs among the inputs, a driver SIGKILLed while
``batch.json`` is written and between videos, ``--overwrite`` on a subset, two batches on one folder, a stale worker.

Every case runs ``python -m dinotools.batch`` (or a worker) in a subprocess on a two-sequence DAVIS root of
the audit clip. A kill is synchronised on an event inside the driver (the Nth ``batch.json`` save, the
first finished video), never on a delay.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Callable, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script or imported by asv's discovery
from audit import BASE, PY, N, Result, make_clip, verdict  # noqa: E402

SEQS = ("a", "b")
SHORT = ["--short-side", "32"]  # "other settings" (BASE has 48)


def _davis(d: Path) -> Path:
    """``d/davis``: JPEGImages/480p/<seq>/ (the clip as JPEGs) and Annotations/480p/<seq>/00000.png."""
    for seq in SEQS:
        src = make_clip(d / "src" / seq, ext=".jpg")
        (d / "davis" / "JPEGImages" / "480p").mkdir(parents=True, exist_ok=True)
        (src / "frames").rename(d / "davis" / "JPEGImages" / "480p" / seq)
        ann = d / "davis" / "Annotations" / "480p" / seq
        ann.mkdir(parents=True)
        (src / "mask.png").rename(ann / "00000.png")
    return d / "davis"


def batch(d: Path, output: str, *extra, wrap: Optional[str] = None) -> Result:
    """``python -m dinotools.batch --davis davis --output OUTPUT`` (``wrap``: Python run first, in the driver)."""
    args = ["--davis", "davis", "--output", output, *BASE, *extra]
    cmd = [PY, "-m", "dinotools.batch", *args] if wrap is None else [
        PY, "-c", f"{wrap}\nimport sys\nfrom dinotools.commands.batch import main\nsys.exit(main({args!r}))"]
    p = subprocess.run(cmd, cwd=d, capture_output=True, text=True, timeout=600)
    return Result(p.returncode, p.stderr, p.stdout)


def _files(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _complete(out: Path) -> Optional[str]:
    """Every sequence has its N outputs, ``batch.json`` reads back and nothing half-written is left."""
    try:
        json.loads((out / "batch.json").read_text())
    except (OSError, ValueError) as exc:
        return f"batch.json unreadable: {exc}"
    temps = [p.name for p in out.rglob(".*.tmp")]
    if temps:
        return f"temp files left: {temps}"
    short = [s for s in SEQS if len(list((out / s).glob("*.png"))) != N]
    return f"incomplete: {short}" if short else None


def _first(checks) -> Optional[str]:
    return next((c for c in checks if c), None)


# Python run in the driver before the batch: SIGKILL it at an event (the driver's own events, no timing).
KILL_IN_SAVE = textwrap.dedent("""
    import os, signal
    import dinotools.batch.record as r
    real, count = r.atomic_save, [0]
    def save(path, write):
        count[0] += 1
        if count[0] == {n}:  # half the new batch.json in its temp file, then the driver dies
            def half(f):
                import io
                buf = io.BytesIO(); write(buf); f.write(buf.getvalue()[: len(buf.getvalue()) // 2]); f.flush()
                os.kill(os.getpid(), signal.SIGKILL)
            return real(path, half)
        return real(path, write)
    r.atomic_save = save
""")
KILL_AFTER_VIDEO = textwrap.dedent("""
    import os, signal
    import dinotools.batch.record as r
    real = r.BatchRecord.replace
    def replace(self, name, entry):  # the first video finished and recorded: the driver dies before the next
        real(self, name, entry)
        os.kill(os.getpid(), signal.SIGKILL)
    r.BatchRecord.replace = replace
""")


class _Named:
    """Every case named ``batch: ...`` (``audit.py --only "batch: "`` runs these alone)."""

    def __init__(self, audit) -> None:
        self.audit = audit

    def add(self, name, run, **kw) -> None:
        self.audit.add(f"batch: {name}", run, **kw)


def build(audit) -> None:
    a = _Named(audit)
    _inputs(a)
    _kills(a)
    _subsets(a)
    _owners(a)


def _inputs(a) -> None:
    for where, flags in (("davis/Annotations/480p", ["--overwrite"]), ("davis/Annotations/480p", []),
                         ("davis/JPEGImages/480p", []), ("davis/JPEGImages/480p", ["--overwrite"]), ("davis", []),
                         ("davis/Annotations/480p/a/out", ["--overwrite"])):
        def run(d, where=where, flags=flags):
            davis = _davis(d)
            before = _files(davis)
            res = batch(d, where, *flags)
            return verdict(res, 2, None, N, want="--output", check=lambda: _first([
                "inputs changed" if _files(davis) != before else None]))
        a.add(f"batch output {where.replace('davis', 'ROOT')} {' '.join(flags)}".rstrip(), run)

    def beside(d):
        _davis(d)
        res = batch(d, "results")
        return verdict(res, 0, None, N, check=lambda: _complete(d / "results"))
    a.add("batch output beside the DAVIS root (control)", beside)


def _kills(a) -> None:
    for n in (1, 3, 4, 6):  # saves: the start, a video running, its end recorded, the second one running
        def run(d, n=n):
            _davis(d)
            first = batch(d, "out", wrap=KILL_IN_SAVE.replace("{n}", str(n)))
            if first.rc != -9:
                return Result(first.rc, first.err, problem=f"first run: exit {first.rc}, expected SIGKILL (-9)")
            res = batch(d, "out")
            res.rc = f"-9>{res.rc}"
            return verdict(res, "-9>0", None, N, check=lambda: _complete(d / "out"))
        a.add(f"SIGKILL in batch.json save #{n}, rerun", run)

    for extra in ([], ["--workers", "2"]):
        def between(d, extra=extra):
            _davis(d)
            first = batch(d, "out", *extra, wrap=KILL_AFTER_VIDEO)
            if first.rc != -9:
                return Result(first.rc, first.err, problem=f"first run: exit {first.rc}, expected SIGKILL (-9)")
            res = batch(d, "out", *extra)
            res.rc = f"-9>{res.rc}"
            # one worker: the first video is skipped, the second done; two: the second may have finished too
            return verdict(res, "-9>0", None, N, want=None if extra else "1 done, 1 skipped",
                           check=lambda: _complete(d / "out"))
        a.add(" ".join(["SIGKILL between videos", *extra]) + ", rerun", between)

    def overwrite_killed(d):
        """An --overwrite with other settings killed after its first video: the second still holds the old
        settings' PNGs; a rerun of those settings without --overwrite is refused, with it completes."""
        _davis(d)
        assert batch(d, "out").rc == 0
        first = batch(d, "out", "--overwrite", *SHORT, wrap=KILL_AFTER_VIDEO)
        if first.rc != -9:
            return Result(first.rc, first.err, problem=f"first run: exit {first.rc}, expected SIGKILL (-9)")
        refused = batch(d, "out", *SHORT)
        if refused.rc != 2 or "stopped before replacing" not in refused.err:
            return Result(refused.rc, refused.err, problem="old PNGs taken as the new settings' outputs")
        res = batch(d, "out", "--overwrite", *SHORT)
        res.rc = f"-9>2>{res.rc}"
        return verdict(res, "-9>2>0", None, N, check=lambda: _complete(d / "out"))
    a.add("SIGKILL in --overwrite between videos, rerun", overwrite_killed)


def _subsets(a) -> None:
    def subset(d, rerun: Callable[[Path], Result], expect, want):
        _davis(d)
        assert batch(d, "out").rc == 0
        assert batch(d, "out", "--sequences", "a", "--overwrite", *SHORT).rc == 0
        before = _files(d / "out" / "b")
        res = rerun(d)
        return verdict(res, expect, None, N, want=want, check=lambda: _first([
            "b's outputs changed" if expect == 2 and _files(d / "out" / "b") != before else None,
            _complete(d / "out") if expect == 0 else None]))
    a.add("--overwrite on a subset, rerun other settings",
          lambda d: subset(d, lambda d: batch(d, "out", *SHORT), 2, "b was tracked with other settings"))
    a.add("--overwrite on a subset, rerun first settings",
          lambda d: subset(d, lambda d: batch(d, "out"), 2, "a was tracked with other settings"))

    def both(d):
        r = batch(d, "out", "--sequences", "b", "--overwrite", *SHORT)
        return batch(d, "out", *SHORT) if r.rc == 0 else r
    a.add("--overwrite on a subset, then the rest, rerun", lambda d: subset(d, both, 0, "0 done, 2 skipped"))


def _owners(a) -> None:
    holder = textwrap.dedent("""
        import time
        from dinotools.batch.safety import BatchLock
        lock = BatchLock("out")
        print("locked", flush=True)
        time.sleep(600)
    """)

    def second(d, kill_first: bool):
        _davis(d)
        (d / "out").mkdir()
        p = subprocess.Popen([PY, "-c", holder], cwd=d, stdout=subprocess.PIPE, text=True)
        try:
            if p.stdout.readline().strip() != "locked":
                return Result("?", "", problem="the holder did not take the lock")
            if kill_first:
                p.kill()
                p.wait(timeout=60)
            res = batch(d, "out")
        finally:
            p.kill()
            p.wait(timeout=60)
        if kill_first:
            return verdict(res, 0, None, N, check=lambda: _complete(d / "out"))
        return verdict(res, 2, None, N, want="another batch",
                       check=lambda: "batch.json written" if (d / "out" / "batch.json").exists() else None)
    a.add("second batch while one writes the folder", lambda d: second(d, False))
    a.add("batch after one SIGKILLed holding the lock", lambda d: second(d, True))

    def stale(d):
        """A worker process of a dead batch, started after a rerun took the folder over: writes nothing."""
        _davis(d)
        worker = textwrap.dedent("""
            import sys
            from pathlib import Path
            from dinotools.batch import davis_videos
            from dinotools.batch.safety import Fence
            from dinotools.batch.worker import Task, VideoRunner
            from dinotools.runs.settings import RunSettings
            out = Path("out").resolve(); out.mkdir()
            old = Fence.take_over(out)
            Fence.take_over(out)  # the rerun
            video = davis_videos("davis")[0]
            VideoRunner(RunSettings(backbone="baseline", short_side=48), own_process=True).run(
                Task(video, out / video.name, resume=False, overwrite=False, fence=old))
            print("wrote on")
        """)
        p = subprocess.run([PY, "-c", worker], cwd=d, capture_output=True, text=True, timeout=600)
        res = Result(p.returncode, p.stderr, p.stdout)
        pngs = list((d / "out").rglob("*.png"))
        return verdict(res, 75, None, N, check=lambda: f"{len(pngs)} PNG(s) written" if pngs else None)
    a.add("stale worker of a replaced batch", stale)


if __name__ == "__main__":
    print('run through benchmarks/audit.py --only "batch: "')
