"""Helpers for the batch tests: a symlinked davis2016-mini subset, dinotools.run references, file snapshots."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
from conftest import shared_path
from PIL import Image

from dinotools.io.masks import read_mask

TRACKING = ["--backbone", "baseline", "--short-side", "96", "--max-context", "3"]
SEQUENCES = ["blackswan", "car-shadow", "dog", "motocross-jump"]


def mini_davis(root: Path, frames: int, sequences=SEQUENCES) -> Path:
    """A DAVIS root of the first ``frames`` frames and annotations of each sequence (symlinks)."""
    data = shared_path("data", "davis2016-mini")
    for seq in sequences:
        for kind, suffix in (("JPEGImages", "jpg"), ("Annotations", "png")):
            folder = root / kind / "480p" / seq
            folder.mkdir(parents=True)
            for src in sorted((data / kind / "480p" / seq).glob(f"*.{suffix}"))[:frames]:
                (folder / src.name).symlink_to(src)
    return root


def reference(root: Path, out: Path, args=TRACKING) -> Dict[str, List[np.ndarray]]:
    """Each sequence tracked on its own by ``python -m dinotools.run`` (in this process)."""
    from dinotools.commands.run import main

    refs = {}
    for seq in sorted(p.name for p in (root / "JPEGImages" / "480p").iterdir()):
        assert main(["--frames", str(root / "JPEGImages" / "480p" / seq), "--mask",
                     str(root / "Annotations" / "480p" / seq / "00000.png"), "--output", str(out / seq),
                     "--no-progress", *args]) == 0
        refs[seq] = masks_of(out / seq)
    return refs


def masks_of(folder: Path) -> List[np.ndarray]:
    return [read_mask(p) for p in sorted(folder.glob("*.png"))]


def snapshot(out: Path) -> Dict[str, Tuple[bytes, int]]:
    """Every output PNG under ``out``: its bytes and modification time (ns)."""
    return {str(p.relative_to(out)): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(out.glob("*/*.png"))}


def assert_complete(out: Path, names, frames: int) -> None:
    """Every video has ``frames`` PNGs, each a complete image; no temp file is left."""
    for name in names:
        pngs = sorted((out / name).glob("*.png"))
        assert [p.name for p in pngs] == [f"{i:05d}.png" for i in range(frames)], name
        for p in pngs:
            with Image.open(p) as img:
                img.load()  # a truncated PNG raises here
    assert not list(out.rglob(".*.tmp"))


def record(out: Path) -> dict:
    return json.loads((out / "batch.json").read_text())


def wait_for(predicate, timeout: float, what: str, step: float = 0.02):
    """Poll ``predicate`` until it returns something true; fail after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            got = predicate()
        except (OSError, ValueError, KeyError):  # a file being replaced, a record not written yet
            got = None
        if got:
            return got
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def mid_video(out: Path, frames: int):
    """(name, entry) of a video being tracked with some but not all of its PNGs written, or None."""
    for name, entry in record(out)["videos"].items():
        done = len(list((out / name).glob("*.png"))) if (out / name).is_dir() else 0
        if entry.get("status") == "running" and 2 <= done <= frames - 3:
            return name, entry
    return None
