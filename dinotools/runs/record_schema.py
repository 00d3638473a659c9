"""JSON Schema of the run record (``OUTPUT/.dinotools-run.json``, see ``dinotools.runs.record``), for ``--resume``.

Checks the types of the fields the resume compares and rebuilds from; fields a later version
adds are allowed (and compared only when both records hold them). ``required``: the record's
``REQUIRED`` keys, passed in so that the list stays in one place.
"""
from __future__ import annotations

from typing import Iterable

from dinotools.io.schemas import COUNT, NAME, NUMBER, SIZE, TEXT, record

OPTIONAL_TEXT = {"type": ["string", "null"]}
PROPERTIES = dict(
    frames=NAME, num_frames=COUNT, mask=OPTIONAL_TEXT, backbone=NAME, weights=OPTIONAL_TEXT, dtype=OPTIONAL_TEXT,
    propagator=NAME, tracker=NAME, max_context=COUNT, size=NUMBER, shape=TEXT, topk=SIZE,
    temperature={"type": "number", "exclusiveMinimum": 0}, short_side=SIZE, upsample=OPTIONAL_TEXT,
    mask_downsample=TEXT, save_probs=OPTIONAL_TEXT, seed={"type": ["integer", "null"]},
    mask_digest={"type": "string", "pattern": "^[0-9a-f]{64}$"}, refine=OPTIONAL_TEXT, refine_args={"type": "object"},
)


def run_record_schema(required: Iterable[str]) -> dict:
    return record(required, **PROPERTIES)
