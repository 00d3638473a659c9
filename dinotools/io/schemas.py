"""JSON Schemas of the JSON files dinotools reads, and ``check_json``: one-line errors naming file and field.

Why jsonschema: JSON Schema is the standard way to describe a JSON file format (the schemas below
are plain data a user or another tool can read), and its errors carry the path to the failing
field, which becomes the ``{file}: {field}: {what}`` message. Schemas check what the readers rely
on (types, required fields, ranges) and allow extra fields, so files other tools extend still read.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from dinotools.errors import InputError

INT = {"type": "integer"}
COUNT = {"type": "integer", "minimum": 0}
SIZE = {"type": "integer", "minimum": 1}
NUMBER = {"type": "number"}
TEXT = {"type": "string"}
NAME = {"type": "string", "minLength": 1}
NUMERIC_KEYS = {"pattern": "^[0-9]+$"}  # object ids as JSON object keys ("1", "2", ...)
MAX_ID = 65535  # label PNGs are 8- or 16-bit: ids above this cannot be written


def record(required: Iterable[str], **properties) -> dict:
    """An object schema: ``properties``' types, ``required`` present, other keys allowed."""
    return {"type": "object", "required": list(required), "properties": properties}


def array(items: dict, **kw) -> dict:
    return {"type": "array", "items": items, **kw}


# COCO video JSON (see dinotools.io.coco): what read_coco uses of each record.
RLE = record(["size", "counts"], size=array(COUNT, minItems=2, maxItems=2),
             counts={"anyOf": [TEXT, array(COUNT)], "description": "a compressed RLE string or a list of run lengths"})
COCO = record(
    ["images", "annotations"],
    videos=array(record(["id"], id={"type": ["integer", "string"]}, name=TEXT, width=COUNT, height=COUNT,
                        length=COUNT)),
    images=array(record(["id", "file_name", "width", "height"], id=INT, video_id={"type": ["integer", "string"]},
                        frame_index=COUNT, file_name=NAME, width=SIZE, height=SIZE)),
    annotations=array(record(["image_id", "track_id", "segmentation"], id=INT, image_id=INT,
                             track_id={"type": "integer", "minimum": 1, "maximum": MAX_ID},
                             segmentation={**RLE, "description": "an RLE object {size, counts} (polygons are not read)"})),
)

# YouTube-VOS / MOSE meta.json: {"videos": {<video>: {"objects": {"<id>": {"frames": [...]}}}}}
YTVOS_META = record(
    ["videos"],
    videos={"type": "object", "additionalProperties": record(
        [], objects={"type": "object", "propertyNames": NUMERIC_KEYS,
                     "additionalProperties": record(["frames"], frames=array(NAME), category=TEXT)})},
)

# Per-object tracks JSON (see dinotools.io.objects).
BOX = {"anyOf": [{"type": "null"}, array(NUMBER, minItems=4, maxItems=4)], "description": "null or [x, y, w, h]"}
POINT = {"anyOf": [{"type": "null"}, array(NUMBER, minItems=2, maxItems=2)], "description": "null or [x, y]"}
TRACK_ENTRY = record(["frame", "index", "present", "area", "box", "centroid"], frame=NAME, index=COUNT,
                     present={"type": "boolean"}, area=COUNT, box=BOX, centroid=POINT)
OBJECTS = record(
    ["video", "width", "height", "frames", "objects"],
    video=TEXT, width=COUNT, height=COUNT, num_frames=COUNT, frames=array(NAME),
    objects={"type": "object", "propertyNames": NUMERIC_KEYS, "additionalProperties": record(
        ["first_frame", "frames_present", "track"], first_frame=NAME,
        last_frame={"type": ["string", "null"]}, frames_present=COUNT, track=array(TRACK_ENTRY))},
)

for _schema in (COCO, YTVOS_META, OBJECTS):
    Draft202012Validator.check_schema(_schema)  # a typo in a schema fails at import, not on a user's file


def load_json(path: Path, what: str, hint: Optional[str] = None) -> Any:
    """The JSON value in ``path`` (``what``: the kind of file, for messages); an unreadable or invalid file
    is an ``InputError`` naming it (``hint``: what to do, appended)."""
    end = f"; {hint}" if hint else ""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise InputError(f"{path}: not found (expected {what}){end}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot be read as {what} ({getattr(exc, 'strerror', None) or exc}){end}") from None
    except RecursionError:  # json recurses per nesting level: [[[[... deeper than the stack
        raise InputError(f"{path}: not valid JSON (nested too deep); expected {what}{end}") from None
    except ValueError as exc:  # json.JSONDecodeError
        raise InputError(f"{path}: not valid JSON ({exc}); expected {what}{end}") from None


def check_json(data: Any, schema: Mapping, path, hint: Optional[str] = None) -> Any:
    """``data`` when it matches ``schema``, else ``InputError("{path}: {field}: {what is wrong}[; {hint}]")``.

    The first error found is reported (in the file's order; an ``anyOf`` as a whole, with the schema's
    ``description`` saying what is accepted): one line, whatever the size of the file.
    """
    error = next(Draft202012Validator(schema).iter_errors(data), None)
    if error is None:
        return data
    field, problem = describe(error)
    raise InputError(f"{path}: {field}: {problem}" + (f"; {hint}" if hint else ""))


def describe(error: ValidationError) -> tuple:
    """(field path like ``images[3].video_id``, what is wrong) of one validation error."""
    parts = list(error.absolute_path)
    kind = error.validator
    if kind == "required":
        missing = next(k for k in error.validator_value if k not in error.instance)
        return field_path(parts + [missing]), "missing"
    if "propertyNames" in error.relative_schema_path:  # the key itself is bad; jsonschema gives it as the instance
        return field_path(parts + [error.instance]), "keys here must be object ids (whole numbers)"
    hint = error.schema.get("description")
    if kind == "anyOf" or (kind == "type" and hint):
        return field_path(parts), f"must be {hint}, got {got(error.instance)}"
    if kind == "type":
        want = error.validator_value
        want = " or ".join(want) if isinstance(want, list) else want
        return field_path(parts), f"must be {_article(want)}, got {got(error.instance)}"
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        op = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}[kind]
        return field_path(parts), f"must be {op} {error.validator_value}, got {short(error.instance)}"
    if kind in ("minItems", "maxItems"):
        lo, hi = error.schema.get("minItems"), error.schema.get("maxItems")
        n = f"{lo}" if lo == hi else f"{lo or 0}..{hi if hi is not None else 'n'}"
        return field_path(parts), f"must hold {n} items, got {len(error.instance)}"
    if kind == "minLength":
        return field_path(parts), "must not be empty"
    return field_path(parts), error.message.splitlines()[0][:120]


def field_path(parts) -> str:
    """``["images", 3, "video_id"]`` -> ``images[3].video_id`` (``(top level)`` for the whole file)."""
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def got(value: Any) -> str:
    """``value`` described for a message: its JSON type, then (unless null) the value itself."""
    return "null" if value is None else f"{json_type(value)} {short(value)}"


def json_type(value: Any) -> str:
    """The JSON name of ``value``'s type (``object``, ``array``, ``string``...)."""
    for kind, types in (("null", type(None)), ("boolean", bool), ("integer", int), ("number", float),
                        ("string", str), ("array", list), ("object", dict)):
        if isinstance(value, types):
            return kind
    return type(value).__name__


def short(value: Any, limit: int = 40) -> str:
    """``value`` as compact one-line JSON, cut to ``limit`` characters (a whole list would flood the line)."""
    text = json.dumps(value, separators=(",", ":"), default=str)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _article(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word
