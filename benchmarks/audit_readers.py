"""Audit cases (``benchmarks/audit.py``): every reader fed wrong-typed but valid JSON/CSV through the real commands.

Each case writes one damaged input (a COCO JSON, a YouTube-VOS meta.json, a queries CSV, a batch
list, a batch record, a run record, an image set) and runs the command that reads it
(``convert``, ``points --queries``, ``batch --list``/``--davis``, ``run --resume``): it is ok when
the command exits 2 with exactly one ``error:`` line, no traceback, naming the file and the field.
The objects JSON and tracks ``.npz`` readers have no command reading them (library only): their
fields are covered by tests/test_readers_validate.py.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script or imported by asv's discovery
from audit import Result, cli, make_clip, ns, verdict  # noqa: E402
from audit_inputs import TRACK  # noqa: E402

FAST = ["--backbone", "baseline", "--short-side", "48"]
POINTS = ["--frames", "frames", "--queries", "q.csv", "--output", "t.npz", *FAST]
BATCH = ["--output", "out", *FAST, "--propagator", "torch", "--no-progress"]


def case(a, name, module, args, prep, words, rc=2, clip=True, **kw):
    """``prep(d)`` writes the damaged file; the error must hold every one of ``words`` (file and field)."""
    def run(d: Path) -> Result:
        if clip:
            make_clip(d)
        prep(d)
        res = cli(d, *args, module=module)
        lacking = [w for w in words if w not in res.err]
        return verdict(res, rc, None, None, check=lambda: f"message lacks {lacking[0]!r}" if lacking else None)
    a.add(f"readers: {name}", run, **kw)


def setter(*keys_value):
    """An edit of parsed JSON: ``setter("a", 0, "b", v)`` sets ``d["a"][0]["b"] = v`` (``DROP``: deletes it)."""
    *keys, value = keys_value

    def edit(d):
        obj = d
        for k in keys[:-1]:
            obj = obj[k]
        if value is DROP:
            del obj[keys[-1]]
        else:
            obj[keys[-1]] = value
    return edit


DROP = object()


def labels(d: Path, n: int = 3) -> Path:
    """``d/labels``: n label PNGs (20x30, ids 1 and 2)."""
    from dinotools.io.masks import write_mask

    (d / "labels").mkdir()
    for i in range(n):
        m = np.zeros((20, 30), np.uint8)
        m[2:8, 3:9 + i] = 1
        m[10:15, 10:20] = 2
        write_mask(d / "labels" / f"{i:05d}.png", m)
    return d / "labels"


def json_edit(make, name, edit):
    """A ``prep``: ``make(d)`` writes the good file ``d/name``; ``edit`` changes its parsed JSON, or (a
    str/bytes) replaces its content."""
    def prep(d):
        make(d)
        path = d / name
        if isinstance(edit, (str, bytes)):
            path.write_bytes(edit.encode() if isinstance(edit, str) else edit)
            return
        data = json.loads(path.read_text())
        changed = edit(data)  # None: edited in place; else the new content
        path.write_text(json.dumps(data if changed is None else changed))
    return prep


def _coco(d):
    from dinotools.io.format_convert import convert

    convert(labels(d), d / "c.json", "coco")


def _all_of_video_2(d):
    for im in d["images"]:
        im["video_id"] = 2


COCO_CASES = [  # (name, edit, field the message names)
    ("a list", lambda d: [d], "(top level)"), ("images missing", setter("images", DROP), "images: missing"),
    ("images a string", setter("images", "x"), "images:"), ("annotations missing", setter("annotations", DROP),
                                                             "annotations: missing"),
    ("annotations an object", setter("annotations", {}), "annotations:"),
    ("videos a string", setter("videos", "abc"), "videos:"), ("videos[0] a number", setter("videos", 0, 5), "videos[0]:"),
    ("videos[0].id missing", setter("videos", 0, "id", DROP), "videos[0].id"),
    ("videos[0].name a number", setter("videos", 0, "name", 5), "videos[0].name"),
    ("videos[0].length negative", setter("videos", 0, "length", -1), "videos[0].length"),
    ("videos[0].width a string", setter("videos", 0, "width", "30"), "videos[0].width"),
    ("images[0] a list", setter("images", 0, []), "images[0]:"),
    ("images[0].id a string", setter("images", 0, "id", "1"), "images[0].id"),
    ("images[0].id missing", setter("images", 0, "id", DROP), "images[0].id"),
    ("images[0].video_id missing", setter("images", 0, "video_id", DROP), "images[0].video_id"),
    ("images[0].video_id a list", setter("images", 0, "video_id", [1]), "images[0].video_id"),
    ("no image of the video", _all_of_video_2, "images: no image of video"),
    ("images[0].frame_index negative", setter("images", 0, "frame_index", -1), "images[0].frame_index"),
    ("images[0].file_name a number", setter("images", 0, "file_name", 5), "images[0].file_name"),
    ("images[0].file_name empty", setter("images", 0, "file_name", ""), "images[0].file_name"),
    ("images[0].file_name missing", setter("images", 0, "file_name", DROP), "images[0].file_name"),
    ("images[0].width 0", setter("images", 0, "width", 0), "images[0].width"),
    ("images[0].height a string", setter("images", 0, "height", "20"), "images[0].height"),
    ("images[0].height missing", setter("images", 0, "height", DROP), "images[0].height"),
    ("annotations[0] a string", setter("annotations", 0, "x"), "annotations[0]:"),
    ("annotations[0].id a string", setter("annotations", 0, "id", "a"), "annotations[0].id"),
    ("annotations[0].image_id missing", setter("annotations", 0, "image_id", DROP), "annotations[0].image_id"),
    ("annotations[0].image_id a string", setter("annotations", 0, "image_id", "1"), "annotations[0].image_id"),
    ("annotations[0].image_id of no image", setter("annotations", 0, "image_id", 999), "annotations[0].image_id"),
    ("annotations[0].track_id missing", setter("annotations", 0, "track_id", DROP), "annotations[0].track_id"),
    ("annotations[0].track_id 0", setter("annotations", 0, "track_id", 0), "annotations[0].track_id"),
    ("annotations[0].track_id 70000", setter("annotations", 0, "track_id", 70000), "annotations[0].track_id"),
    ("annotations[0].track_id 1.5", setter("annotations", 0, "track_id", 1.5), "annotations[0].track_id"),
    ("segmentation missing", setter("annotations", 0, "segmentation", DROP), "annotations[0].segmentation"),
    ("segmentation a polygon", setter("annotations", 0, "segmentation", [[1, 2, 3, 4, 5, 6]]),
     "annotations[0].segmentation"),
    ("segmentation null", setter("annotations", 0, "segmentation", None), "annotations[0].segmentation"),
    ("segmentation.size missing", setter("annotations", 0, "segmentation", "size", DROP), "segmentation.size"),
    ("segmentation.size of 1", setter("annotations", 0, "segmentation", "size", [20]), "segmentation.size"),
    ("segmentation.size strings", setter("annotations", 0, "segmentation", "size", ["20", "30"]),
     "segmentation.size[0]"),
    ("segmentation.size not the image's", setter("annotations", 0, "segmentation", "size", [10, 30]),
     "segmentation.size"),
    ("counts missing", setter("annotations", 0, "segmentation", "counts", DROP), "segmentation.counts"),
    ("counts a number", setter("annotations", 0, "segmentation", "counts", 5), "segmentation.counts"),
    ("counts bad characters", setter("annotations", 0, "segmentation", "counts", "zz~"), "segmentation.counts"),
    ("counts cut mid-run", setter("annotations", 0, "segmentation", "counts", "0P"), "segmentation.counts"),
    ("counts empty string", setter("annotations", 0, "segmentation", "counts", ""), "segmentation.counts"),
    ("counts list of the wrong sum", setter("annotations", 0, "segmentation", "counts", [1, 2]),
     "segmentation.counts"),
    ("counts list negative", setter("annotations", 0, "segmentation", "counts", [-1, 601]), "segmentation.counts"),
    ("not JSON", "{trunc", "not valid JSON"), ("empty file", "", "not valid JSON"),
    ("nested too deep", "[" * 100_000, "not valid JSON"), ("not UTF-8", b"\xff\xfe{}", "cannot be read"),
]


def _ytvos(d):
    from dinotools.io.format_convert import convert

    convert(labels(d), d / "y", "youtube-vos", video="v")


META_CASES = [
    ("a list", [1], "(top level)"), ("videos missing", {}, "videos: missing"),
    ("videos a list", {"videos": [1]}, "videos:"), ("video entry a string", {"videos": {"v": "x"}}, "videos.v:"),
    ("objects a list", {"videos": {"v": {"objects": []}}}, "videos.v.objects:"),
    ("object key not an id", {"videos": {"v": {"objects": {"one": {"frames": []}}}}}, "videos.v.objects.one"),
    ("object a string", {"videos": {"v": {"objects": {"1": "x"}}}}, "videos.v.objects.1:"),
    ("frames missing", {"videos": {"v": {"objects": {"1": {}}}}}, "videos.v.objects.1.frames: missing"),
    ("frames a string", {"videos": {"v": {"objects": {"1": {"frames": "00000"}}}}}, "videos.v.objects.1.frames:"),
    ("frames[0] a number", {"videos": {"v": {"objects": {"1": {"frames": [0]}}}}}, "videos.v.objects.1.frames[0]"),
    ("frames[0] empty", {"videos": {"v": {"objects": {"1": {"frames": [""]}}}}}, "videos.v.objects.1.frames[0]"),
    ("category a number", {"videos": {"v": {"objects": {"1": {"frames": [], "category": 3}}}}},
     "videos.v.objects.1.category"),
    ("not JSON", "{", "not valid JSON"),
]


def _convert(a) -> None:
    for name, edit, field in COCO_CASES:
        case(a, f"coco {name}", "dinotools.convert", ["c.json", "out", "--to", "png"],
             json_edit(_coco, "c.json", edit), ["c.json", field], clip=False)
    for name, meta, field in META_CASES:
        case(a, f"youtube-vos meta {name}", "dinotools.convert", ["y", "out", "--to", "png"],
             json_edit(_ytvos, "y/meta.json", meta if isinstance(meta, str) else lambda d, m=meta: m),
             ["meta.json", field], clip=False)
    for to, target, prep in (("coco", "taken", lambda d: (d / "taken").mkdir()),
                             ("objects", "taken", lambda d: (d / "taken").mkdir()),
                             ("png", "file", lambda d: (d / "file").write_text("x")),
                             ("youtube-vos", "file", lambda d: (d / "file").write_text("x"))):
        case(a, f"convert --to {to} onto a {'folder' if target == 'taken' else 'file'}", "dinotools.convert",
             ["labels", target, "--to", to, "--overwrite"], lambda d, p=prep: (labels(d), p(d)), [target], clip=False)
    for to in ("png", "coco", "youtube-vos", "objects"):
        a.add(f"readers: convert --to {to} on a full disk", lambda d, t=to: _full_disk(d, t), needs_ns=True)


def _full_disk(d: Path, to: str) -> Result:
    """20 frames of noise with 59 objects (over 100 kB in every format) into a 64 kB tmpfs: one line, nothing
    left there."""
    from dinotools.io.masks import write_mask

    (d / "big").mkdir()
    rng = np.random.default_rng(0)
    for i in range(20):
        write_mask(d / "big" / f"{i:05d}.png", rng.integers(0, 60, (200, 300)).astype(np.uint8))
    res = ns(d, f"mkdir small && mount -t tmpfs -o size=64k tmpfs small || exit 99\n"
                f"$PY -m dinotools.convert big small/o --to {to}; rc=$?; ls -A small; exit $rc")
    left = res.out.split()
    return verdict(res, 2, None, None, want="No space left",
                   check=lambda: f"left on the full disk: {left}" if left else None)


QUERY_CASES = [  # (name, CSV text, words)
    ("no t column", "x,y\n1,2\n", ["line 1", "missing t"]), ("header only", "t,x,y\n", ["no query rows"]),
    ("empty", "", ["is empty"]), ("t not a number", "t,x,y\na,1,2\n", ["line 2", "'a'"]),
    ("x not a number", "t,x,y\n0,abc,2\n", ["line 2", "'abc'"]), ("y empty", "t,x,y\n0,1,\n", ["line 2", "''"]),
    ("t negative", "t,x,y\n-1,1,2\n", ["line 2", "t=-1"]), ("t fractional", "t,x,y\n1.5,1,2\n", ["line 2", "t=1.5"]),
    ("t past the end", "t,x,y\n12,1,2\n", ["line 2", "past the last frame"]),
    ("x past the width", "t,x,y\n0,65,2\n", ["line 2", "x=65"]), ("y negative", "t,x,y\n0,1,-1\n", ["line 2", "y=-1"]),
    ("x nan", "t,x,y\n0,nan,2\n", ["line 2", "finite"]), ("y inf", "t,x,y\n0,1,inf\n", ["line 2", "finite"]),
    ("a field short", "t,x,y\n0,1\n", ["line 2", "expected 3 fields"]),
    ("a field over the csv limit", "t,x,y\n0," + "1" * 200_000 + ",2\n", ["line 2", "not a CSV row"]),
    ("line after a quoted line break", 't,x,y\n0,"1\n",2\n0,abc,3\n', ["line 4", "'abc'"]),
]


def _queries(a) -> None:
    for name, text, words in QUERY_CASES:
        case(a, f"queries {name}", "dinotools.points", POINTS, lambda d, t=text: (d / "q.csv").write_text(t),
             ["q.csv", *words])


LIST_CASES = [  # (name, file name, content, words)
    ("jsonl name with NUL", "l.jsonl", '{"frames": "frames", "mask": "mask.png", "name": "a\\u0000b"}\n',
     ["line 1: name:", "\\x00"]),
    ("jsonl name with a tab", "l.jsonl", '{"frames": "frames", "mask": "mask.png", "name": "a\\tb"}\n',
     ["line 1: name:", "\\t"]),
    ("jsonl name with a newline", "l.jsonl", '{"frames": "frames", "mask": "mask.png", "name": "a\\nb"}\n',
     ["line 1: name:", "\\n"]),
    ("jsonl name with a raw U+2028", "l.jsonl", '{"frames": "frames", "mask": "mask.png", "name": "a\u2028b"}\n',
     ["line 1: name:", "\\u2028"]),
    ("jsonl frames with a newline", "l.jsonl", '{"frames": "fr\\names", "mask": "mask.png"}\n', ["line 1: frames:"]),
    ("jsonl name a number", "l.jsonl", '{"frames": "frames", "mask": "mask.png", "name": 5}\n', ["line 1", "name"]),
    ("jsonl frames a list", "l.jsonl", '{"frames": ["frames"], "mask": "mask.png"}\n', ["line 1", "frames"]),
    ("jsonl mask missing", "l.jsonl", '{"frames": "frames"}\n', ["line 1", "no mask"]),
    ("jsonl unknown key", "l.jsonl", '{"frames": "frames", "mask": "mask.png", "colour": 1}\n', ["line 1", "colour"]),
    ("jsonl a list", "l.jsonl", '["frames", "mask.png"]\n', ["line 1", "JSON object"]),
    ("jsonl not JSON", "l.jsonl", '{"frames": \n', ["line 1", "not a JSON object"]),
    ("jsonl name '..'", "l.jsonl", '{"frames": "frames", "mask": "mask.png", "name": ".."}\n', ["line 1", "'..'"]),
    ("csv quoted newline in a name", "l.csv", 'frames,mask,name\nframes,mask.png,"a\nb"\n', ["line 2: name:", "\\n"]),
    ("csv tab in a quoted path", "l.csv", '"fra\tmes",mask.png,a\n', ["line 1: frames:", "\\t"]),
    ("csv too many columns", "l.csv", "frames,mask.png,a,b\n", ["line 1", "4 columns"]),
    ("csv header without mask", "l.csv", "frames,name\n", ["line 1", "header"]),
    ("csv mask cell empty", "l.csv", "frames,,a\n", ["line 1", "no mask"]),
    ("csv frames missing", "l.csv", "nope,mask.png,a\n", ["line 1", "nope not found"]),
    ("empty list", "l.csv", "# nothing\n", ["holds no video row"]),
    ("not UTF-8", "l.csv", b"\xff\xfeframes", ["UTF-8"]),
]

BATCH_GOOD = "frames,mask.png,a\n"
RECORD_CASES = [  # (name, batch.json content, field)
    ("a list", [], "(top level)"), ("videos missing", {"settings": {}}, "videos: missing"),
    ("videos a list", {"settings": {}, "videos": []}, "videos:"),
    ("settings a list", {"settings": [], "videos": {}}, "settings:"),
    ("version 0", {"version": 0, "settings": {}, "videos": {}}, "version:"),
    ("version a string", {"version": "1", "settings": {}, "videos": {}}, "version:"),
    ("entry a string", {"settings": {}, "videos": {"a": "done"}}, "videos.a:"),
    ("status missing", {"settings": {}, "videos": {"a": {}}}, "videos.a.status"),
    ("status a number", {"settings": {}, "videos": {"a": {"status": 1}}}, "videos.a.status"),
    ("frames_path a number", {"settings": {}, "videos": {"a": {"status": "done", "frames_path": 1}}},
     "videos.a.frames_path"),
    ("frames negative", {"settings": {}, "videos": {"a": {"status": "done", "frames": -1}}}, "videos.a.frames"),
    ("attempts 1.5", {"settings": {}, "videos": {"a": {"status": "done", "attempts": 1.5}}}, "videos.a.attempts"),
    ("seconds a string", {"settings": {}, "videos": {"a": {"status": "done", "seconds": "3"}}}, "videos.a.seconds"),
    ("engine a string", {"settings": {}, "videos": {}, "engine": "local"}, "engine:"),
    ("not JSON", "{", "unreadable"), ("nested too deep", "[" * 100_000, "unreadable"),
]


def _batch(a) -> None:
    for name, file, text, words in LIST_CASES:
        write = (lambda d, f=file, t=text: (d / f).write_bytes(t if isinstance(t, bytes) else t.encode()))
        case(a, f"batch list {name}", "dinotools.batch", ["--list", file, *BATCH], write, [file, *words])

    def record(content):
        def prep(d):
            (d / "l.csv").write_text(BATCH_GOOD)
            (d / "out").mkdir()
            (d / "out/batch.json").write_text(content if isinstance(content, str) else json.dumps(content))
        return prep
    for name, content, field in RECORD_CASES:
        case(a, f"batch record {name}", "dinotools.batch", ["--list", "l.csv", *BATCH], record(content),
             ["batch.json", field])

    def imageset(d):
        for sub in ("JPEGImages/480p/s", "Annotations/480p/s", "ImageSets/2017"):
            (d / "davis" / sub).mkdir(parents=True)
        (d / "davis/ImageSets/2017/val.txt").write_bytes(b"\xff\xfes\n")
    case(a, "davis image set not UTF-8", "dinotools.batch", ["--davis", "davis", "--set", "val", *BATCH], imageset,
         ["val.txt", "cannot be read"])


RUN_RECORD_CASES = [  # (name, edit of the record, field)
    ("topk a string", setter("topk", "5"), "topk"), ("num_frames negative", setter("num_frames", -1), "num_frames"),
    ("frames null", setter("frames", None), "frames"), ("mask_digest a number", setter("mask_digest", 7), "mask_digest"),
    ("temperature 0", setter("temperature", 0), "temperature"), ("refine_args a list", setter("refine_args", []),
                                                                   "refine_args"),
    ("seed a string", setter("seed", "0"), "seed"), ("max_context negative", setter("max_context", -1), "max_context"),
    ("backbone missing", setter("backbone", DROP), "backbone: missing"),
    ("nested too deep", "[" * 100_000, "run record"),
]


def _run_record(a) -> None:
    def interrupted(d, edit):
        """A run stopped by a corrupt frame 8 (outputs 0..7 and its record), the frame mended, the record edited."""
        make_clip(d)
        good = (d / "frames/00008.png").read_bytes()
        (d / "frames/00008.png").write_bytes(good[:100])
        assert cli(d, *TRACK).rc == 2
        (d / "frames/00008.png").write_bytes(good)
        json_edit(lambda _: None, "out/.dinotools-run.json", edit)(d)
    for name, edit, field in RUN_RECORD_CASES:
        case(a, f"run record {name}", "dinotools.run", [*TRACK, "--resume"],
             lambda d, e=edit: interrupted(d, e), [".dinotools-run.json", field], clip=False)


def build(audit) -> None:
    _convert(audit)
    _queries(audit)
    _batch(audit)
    _run_record(audit)
