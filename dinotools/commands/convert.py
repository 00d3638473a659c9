"""``python -m dinotools.convert``: label PNG folders <-> COCO JSON <-> YouTube-VOS layout, and -> per-object tracks."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

from dinotools.errors import UserError
from dinotools.io.format_convert import READABLE, WRITABLE, convert


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m dinotools.convert",
        description="Convert tracking results between label PNG folders, COCO video JSON (RLE), the YouTube-VOS "
                    "results layout, and per-object tracks JSON.")
    p.add_argument("input", type=Path, help="a folder of label PNGs, a COCO JSON, or a YouTube-VOS root "
                   "(holding Annotations/<video>/)")
    p.add_argument("output", type=Path, help="png: a folder; coco, objects: the JSON file; youtube-vos: the root "
                   "(Annotations/<video>/ and meta.json are written under it)")
    p.add_argument("--to", required=True, choices=WRITABLE, help="output format")
    p.add_argument("--from", dest="source", choices=READABLE, help="input format (default: from the input's kind)")
    p.add_argument("--video", help="which video of a COCO JSON or YouTube-VOS root (default: the only one); "
                   "also the name written into coco, youtube-vos and objects outputs (default: the input's)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        count = convert(args.input, args.output, args.to, fmt=args.source, video=args.video,
                        overwrite=args.overwrite)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a read the library did not foresee (permissions, a failing disk): one line too
        print(f"error: {exc.filename or args.input}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.output} ({args.to}): {count} frames")
    return 0


def entry() -> None:
    raise SystemExit(main())


if __name__ == "__main__":
    entry()
