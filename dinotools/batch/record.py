"""``OUTPUT/batch.json``: each video's status and figures, rewritten atomically whenever one changes."""
from __future__ import annotations

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
VERSION = 1
FINAL = ("done", "failed", "skipped")  # "pending", "running" and "interrupted" are left only by a stopped batch


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


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
        old = {} if overwrite else self._load()
        if old and old.get("settings") != settings:
            changed = [f"{k} {old['settings'].get(k)!r} -> {settings.get(k)!r}"
                       for k in sorted(set(old.get("settings") or {}) | set(settings))
                       if (old.get("settings") or {}).get(k) != settings.get(k)]
            raise InputError(f"{self.path} records a batch run with other settings ({'; '.join(changed)}): rerun "
                             f"with the same settings to continue it, or use another output folder or --overwrite")
        self.data = {"version": VERSION, "settings": settings, "videos": dict(old.get("videos", {})),
                     "started": _now()}
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

    def start(self, videos: Iterable[Video], engine: dict) -> None:
        """Register this run's videos (an earlier run's entries are kept until replaced)."""
        self.names = []
        for v in videos:
            self.names.append(v.name)
            entry = self.data["videos"].get(v.name)
            if entry is None or entry.get("frames_path") != str(v.frames) or entry.get("mask_path") != str(v.mask):
                self.data["videos"][v.name] = {"status": "pending", "frames_path": str(v.frames),
                                               "mask_path": str(v.mask), "where": v.where}
        self.data["engine"] = engine
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
