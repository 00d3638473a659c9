"""``python -m dinotools.run --demo``: track the generated clip, score it against its ground truth."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .demo import make_clip, mean_iou

log = logging.getLogger(__name__)

DEFAULT_OUTPUT = Path("dinotools-demo")


def _choose_backbone(args) -> None:
    """DINOv3 when its weights can be found, otherwise the weight-free baseline (said aloud)."""
    if args.backbone == "baseline":
        return
    try:
        from .backbones.dinov3.weights import find_weights

        variant = args.backbone.removeprefix("dinov3_")
        found = args.weights or find_weights(variant)
    except Exception as exc:  # noqa: BLE001 - the demo must run even if DINOv3 support is broken
        log.debug("DINOv3 weight discovery failed: %s", exc)
        found = None
    if found:
        print(f"demo: using DINOv3 {args.backbone} with weights {found}")
        args.weights = str(found)
    else:
        print(
            f"demo: no DINOv3 weights found for {args.backbone}; using the weight-free `baseline` backbone "
            f"(colour statistics: expect much lower accuracy than DINOv3). Give --weights FILE to use DINOv3."
        )
        args.backbone, args.weights, args.dtype = "baseline", None, None


def cmd_demo(args) -> int:
    from .cli import make_tracker
    from .io.frames import open_frames
    from .io.masks import write_mask
    from .job import prepare_output, run_job

    out = args.output or DEFAULT_OUTPUT
    frames, gt = make_clip()
    prepare_output(out, overwrite=True)  # the demo folder is ours to refresh
    (out / "frames").mkdir(exist_ok=True)
    (out / "ground_truth").mkdir(exist_ok=True)
    from PIL import Image

    for i, (frame, mask) in enumerate(zip(frames, gt)):
        Image.fromarray(frame).save(out / "frames" / f"{i:05d}.png")
        write_mask(out / "ground_truth" / f"{i:05d}.png", mask)
    _choose_backbone(args)
    tracker = make_tracker(args)
    source = open_frames(out / "frames")
    pred_dir = out / "masks"
    prepare_output(pred_dir, overwrite=True)
    report = run_job(
        tracker, source, {0: gt[0]}, pred_dir, overlay=args.overlay or out / "overlay.mp4",
        batch_size=args.batch_size, progress=not args.no_progress,
    )
    from .io.masks import read_mask

    scores = [mean_iou(read_mask(pred_dir / f"{i:05d}.png"), gt[i]) for i in range(1, len(gt))]
    per_object = {oid: float(np.mean([s[oid] for s in scores])) for oid in scores[0]}
    print(f"demo: {len(frames)} frames of {frames[0].shape[1]}x{frames[0].shape[0]}, 3 objects, "
          f"backbone {args.backbone}")
    for oid, j in per_object.items():
        print(f"  object {oid}: mean IoU (J) {j:.3f} over frames 1..{len(frames) - 1}")
    print(f"  all objects: mean IoU {np.mean(list(per_object.values())):.3f}")
    print(f"demo: outputs in {out}/ (frames/, ground_truth/, masks/, overlay.mp4); {report.line()}")
    return 0
