"""JSON Schema of ``OUTPUT/batch.json`` (see ``dinotools.batch.record``), checked when a batch continues.

Only what a rerun reads back is checked (statuses, the paths compared to the list, the figures'
types); fields a later version adds are allowed, and so is a status this version does not know
(such a video is simply tracked again).
"""
from __future__ import annotations

from dinotools.io.schemas import COUNT, TEXT, record

FIGURE = {"type": "number", "minimum": 0}
ENTRY = record(["status"], status={"type": "string", "minLength": 1}, frames=COUNT, tracked=COUNT, attempts=COUNT,
               seconds=FIGURE, fps=FIGURE, peak_ram_mb=FIGURE, peak_gpu_mb=FIGURE, error=TEXT,
               frames_path=TEXT, mask_path=TEXT, where=TEXT)
BATCH_RECORD = record(["settings", "videos"], version={"type": "integer", "minimum": 1},
                      settings={"type": "object"}, videos={"type": "object", "additionalProperties": ENTRY},
                      engine={"type": "object"}, summary={"type": "object"}, started=TEXT, finished=TEXT)
