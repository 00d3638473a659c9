"""``python -m dinotools.run --demo``: track the generated clip, score it against its ground truth."""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Optional

import numpy as np

from dinotools.eval.metrics import j_per_object
from dinotools.eval.synthetic_clip import make_clip

log = logging.getLogger(__name__)

DEFAULT_OUTPUT = Path("dinotools-demo")


def _choose_backbone(settings):
    """DINOv3 when its weights can be found, otherwise the weight-free baseline (said aloud)."""
    if settings.backbone == "baseline":
        return settings
    try:
        from dinotools.backbones.dinov3.weights import find_weights

        variant = settings.backbone.removeprefix("dinov3_")
        found = settings.weights or find_weights(variant)
    except Exception as exc:  # noqa: BLE001 - the demo must run even if DINOv3 support is broken
        log.debug("DINOv3 weight discovery failed: %s", exc)
        found = None
    if found:
        print(f"demo: using DINOv3 {settings.backbone} with weights {found}")
        return dataclasses.replace(settings, weights=str(found))
    print(
        f"demo: no DINOv3 weights found for {settings.backbone}; using the weight-free `baseline` backbone "
        f"(colour statistics: expect much lower accuracy than DINOv3). Give --weights FILE to use DINOv3."
    )
    return dataclasses.replace(settings, backbone="baseline", weights=None, dtype=None)


def cmd_demo(settings, output: Optional[Path] = None, progress: bool = True) -> int:
    """Write the clip under ``output``, track it with ``settings`` and print the scores."""
    from dinotools.io.frames import open_frames
    from dinotools.io.masks import write_mask
    from dinotools.runs.job import prepare_output, run_job
    from dinotools.runs.settings import build_tracker

    out = Path(output) if output is not None else DEFAULT_OUTPUT
    frames, gt = make_clip()
    prepare_output(out, overwrite=True)  # the demo folder is ours to refresh
    (out / "frames").mkdir(exist_ok=True)
    (out / "ground_truth").mkdir(exist_ok=True)
    from PIL import Image

    for i, (frame, mask) in enumerate(zip(frames, gt)):
        Image.fromarray(frame).save(out / "frames" / f"{i:05d}.png")
        write_mask(out / "ground_truth" / f"{i:05d}.png", mask)
    settings = _choose_backbone(settings)
    tracker = build_tracker(settings)
    source = open_frames(out / "frames")
    pred_dir = out / "masks"
    prepare_output(pred_dir, overwrite=True)
    report = run_job(
        tracker, source, {0: gt[0]}, pred_dir, overlay=settings.overlay or out / "overlay.mp4",
        batch_size=settings.batch_size, progress=progress,
    )
    from dinotools.io.masks import read_mask

    scores = [j_per_object(gt[i], read_mask(pred_dir / f"{i:05d}.png")) for i in range(1, len(gt))]
    per_object = {oid: float(np.mean([s[oid] for s in scores])) for oid in scores[0]}
    print(f"demo: {len(frames)} frames of {frames[0].shape[1]}x{frames[0].shape[0]}, 3 objects, "
          f"backbone {settings.backbone}")
    for oid, j in per_object.items():
        print(f"  object {oid}: mean IoU (J) {j:.3f} over frames 1..{len(frames) - 1}")
    print(f"  all objects: mean IoU {np.mean(list(per_object.values())):.3f}")
    print(f"demo: outputs in {out}/ (frames/, ground_truth/, masks/, overlay.mp4); {report.line()}")
    return 0
