"""``OUTPUT/batch.json``: each video's status and figures, rewritten atomically whenever one changes."""
from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from pathlib import Path
from typing import Dict, Iterable, List, Optional

from dinotools.batch.record_schema import BATCH_RECORD
from dinotools.batch.sources import Video
from dinotools.errors import InputError
from dinotools.io.masks import atomic_save
from dinotools.io.schemas import check_json

log = logging.getLogger(__name__)

RECORD = "batch.json"
VERSION = 2  # 2: each entry names the settings it was tracked with (``settings`` key into ``settings_of``)
FINAL = ("done", "failed", "skipped")  # "pending", "running" and "interrupted" are left only by a stopped batch


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def settings_key(settings: dict) -> str:
    """A short digest naming one set of recorded settings (entries name theirs by it, not by a full copy:
    the record is rewritten whole on every change)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


class BatchRecord:
    """The batch's record: ``{"settings", "engine", "videos": {name: entry}, "summary", ...}``.

    An entry: ``status`` (pending, running, done, failed, skipped, interrupted), ``frames`` (total
    output frames), ``tracked`` (frames tracked in the run that finished it), ``seconds``, ``fps``,
    ``peak_ram_mb``, ``peak_gpu_mb``, ``error`` (one line, for a failure), ``frames_path``,
    ``mask_path``, ``worker`` and ``attempts``. Every change rewrites the file atomically (temp file
    and rename), so a batch killed at any moment leaves a complete, readable record.
    """

    def __init__(self, output: Path, settings: dict, *, overwrite: bool = False) -> None:
        self.path = Path(output) / RECORD
        self._lock = threading.Lock()
        try:
            old = self._load()
        except InputError:
            if not overwrite:
                raise
            log.warning("%s is unreadable: --overwrite starts a new record", self.path)
            old = {}
        # Every earlier entry is kept, --overwrite or not (a run on a subset must not drop the others'
        # records); each names the settings it was tracked with. Version 1 records had one set for all.
        seen = dict(old.get("settings_of") or {})
        legacy = old.get("settings")
        if isinstance(legacy, dict):
            seen.setdefault(settings_key(legacy), legacy)
        videos = {n: e if "settings" in e or not isinstance(legacy, dict) else {**e, "settings": settings_key(legacy)}
                  for n, e in old.get("videos", {}).items() if isinstance(e, dict)}
        self.settings, self.key, self.overwrite = settings, settings_key(settings), overwrite
        self.data = {"version": VERSION, "settings": settings, "videos": videos, "started": _now(),
                     "settings_of": {**seen, self.key: settings}}
        self.names: List[str] = []  # this run's videos, in order (``start``)

    def _load(self) -> dict:
        if not self.path.is_file():
            return {}
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError, RecursionError) as exc:  # RecursionError: nested too deep
            raise InputError(f"{self.path} is unreadable ({exc}); it is this output folder's batch record: "
                             f"move it away or pass --overwrite") from None
        return check_json(data, BATCH_RECORD, self.path, hint="it is this output folder's batch record: move it "
                                                             "away or pass --overwrite")

    def previous(self, name: str) -> Optional[dict]:
        """The entry an earlier run left for ``name`` (None if none)."""
        return self.data["videos"].get(name)

    def check_outputs(self, videos: Iterable[Video], output: Path) -> None:
        """Before this run changes anything: refuse (``InputError``) a video whose folder holds label PNGs
        this run could take for its own, unless ``overwrite`` replaces them. PNGs are this run's when the
        entry names this run's settings and inputs (and is not ``replacing`` older outputs), or when no
        entry names other ones and an unfinished-run record (``dinotools.run --resume`` compares its
        settings) lies beside them. Others could be another run's complete outputs, which a resume
        (``nothing_to_resume``) would accept as finished."""
        from dinotools.runs.record import MANIFEST

        if self.overwrite:
            return
        problems = []
        for v in videos:
            out, entry = Path(output) / v.name, self.previous(v.name)
            if not (out.is_dir() and any(out.glob("*.png"))):
                continue
            manifest = (out / MANIFEST).exists()
            if entry is None:
                if not manifest:
                    problems.append(f"{v.name} ({out}) holds label PNGs that no run of this batch recorded")
            elif entry.get("settings") != self.key:
                problems.append(f"{v.name} was tracked with other settings ({self._changes(entry.get('settings'))})")
            elif (entry.get("frames_path"), entry.get("mask_path")) != (str(v.frames), str(v.mask)):
                problems.append(f"{v.name} was tracked from other inputs (frames {entry.get('frames_path')}, "
                                f"mask {entry.get('mask_path')})")
            elif entry.get("replacing") and not manifest:
                problems.append(f"{v.name} ({out}) holds label PNGs an --overwrite run stopped before replacing "
                                f"(they may be of other settings)")
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise InputError(f"{self.path}: video {problems[0]}{more}; its outputs are not this run's: rerun with the "
                             f"same settings to continue, or pass --overwrite (with --sequences or a list for only "
                             f"some videos) to track them again, or use another output folder")

    def _changes(self, key: Optional[str]) -> str:
        old = self.data["settings_of"].get(key) if key else None
        if not isinstance(old, dict):
            return "not recorded"
        return "; ".join(f"{k} {old.get(k)!r} -> {self.settings.get(k)!r}"
                         for k in sorted(set(old) | set(self.settings)) if old.get(k) != self.settings.get(k))

    def start(self, videos: Iterable[Video], engine: dict, generation: Optional[str] = None) -> None:
        """Register this run's videos (an earlier run's entries are kept until replaced): each names this
        run's settings from now on; one from other inputs or settings, or every one with ``overwrite``,
        starts pending, ``replacing`` the PNGs its folder holds until a finished run's entry replaces it
        (a batch killed before then must not leave them looking like this run's)."""
        self.names = []
        for v in videos:
            self.names.append(v.name)
            entry = self.data["videos"].get(v.name)
            if (self.overwrite or entry is None or entry.get("frames_path") != str(v.frames)
                    or entry.get("mask_path") != str(v.mask) or entry.get("settings") != self.key):
                folder = self.path.parent / v.name
                entry = {"status": "pending", "frames_path": str(v.frames), "mask_path": str(v.mask),
                         "where": v.where, "settings": self.key}
                if folder.is_dir() and any(folder.glob("*.png")):
                    entry["replacing"] = True
                self.data["videos"][v.name] = entry
        used = {e.get("settings") for e in self.data["videos"].values()}
        self.data["settings_of"] = {k: s for k, s in self.data["settings_of"].items() if k in used}
        self.data["engine"] = engine
        self.data["generation"] = generation
        self.data.pop("finished", None)
        self.save()

    def update(self, name: str, **fields) -> Dict:
        with self._lock:
            entry = self.data["videos"].setdefault(name, {})
            entry.update(fields)
            for key in [k for k, v in entry.items() if v is None]:  # None clears a field
                del entry[key]
            self._save_locked()
            return entry

    def replace(self, name: str, entry: dict) -> None:
        """``name``'s entry becomes ``entry`` (a finished attempt: nothing stale from earlier ones)."""
        with self._lock:
            self.data["videos"][name] = {k: v for k, v in entry.items() if v is not None}
            self._save_locked()

    def finish(self, summary: dict) -> None:
        with self._lock:
            self.data["summary"] = summary
            self.data["finished"] = _now()
            self._save_locked()

    def save(self) -> None:
        with self._lock:
            self._save_locked()

    def _save_locked(self) -> None:
        text = json.dumps(self.data, indent=1).encode() + b"\n"
        try:
            atomic_save(self.path, lambda f: f.write(text))
        except OSError as exc:
            raise InputError(f"cannot write {self.path}: {exc.strerror or exc}; videos finished so far are "
                             f"written: free the disk and rerun the same command") from None

    def entries(self) -> Dict[str, dict]:
        """This run's videos, in order."""
        return {n: self.data["videos"][n] for n in self.names}
