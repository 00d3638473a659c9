"""Semi-supervised DAVIS scoring of a results folder, following davis2017-evaluation."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

from dinotools.errors import InputError
from dinotools.eval.metrics import BOUND_TH, boundary_f, region_similarity
from dinotools.eval.stats import Statistics, db_statistics, global_metrics
from dinotools.io.datasets import DavisDataset, SequenceGT, read_results


@dataclass
class ObjectScores:
    """Per-frame J and F (``[N]`` float64, evaluated frames only) of one object and their statistics."""

    sequence: str
    object_id: int
    frames: List[str]
    J: np.ndarray
    F: np.ndarray
    j: Statistics
    f: Statistics

    @property
    def name(self) -> str:
        return f"{self.sequence}_{self.object_id}"  # the official per-object key


@dataclass
class Evaluation:
    """Scores of every object of every evaluated sequence, plus notes (e.g. sequences with no object)."""

    split: str
    objects: List[ObjectScores] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    def global_metrics(self) -> Dict[str, float]:
        """J&F-Mean, J-Mean, J-Recall, ...: means over objects (not sequences), as the official tool."""
        return global_metrics([o.j for o in self.objects], [o.f for o in self.objects])

    def per_object(self) -> Dict[str, List[float]]:
        """``{"<seq>_<id>": [J-mean, F-mean]}``."""
        return {o.name: [o.j.mean, o.f.mean] for o in self.objects}

    def per_sequence(self) -> Dict[str, Dict[str, float]]:
        """``{seq: {"J-Mean", "F-Mean", "J&F-Mean", "objects"}}`` averaged over that sequence's objects."""
        out: Dict[str, Dict[str, float]] = {}
        for seq in dict.fromkeys(o.sequence for o in self.objects):
            objs = [o for o in self.objects if o.sequence == seq]
            j = float(np.mean([o.j.mean for o in objs]))
            f = float(np.mean([o.f.mean for o in objs]))
            out[seq] = {"J-Mean": j, "F-Mean": f, "J&F-Mean": (j + f) / 2, "objects": len(objs)}
        return out


def evaluated_frames(gt: SequenceGT) -> slice:
    """Semi-supervised convention: the first (given) and the last frame are not scored."""
    if len(gt.frames) < 3:
        raise InputError(
            f"sequence {gt.name} has {len(gt.frames)} annotated frame(s); semi-supervised scoring skips the "
            f"first and last, so it needs at least 3"
        )
    return slice(1, len(gt.frames) - 1)


def score_sequence(
    gt: SequenceGT, pred: np.ndarray, *, bound_th: float = BOUND_TH, uint8_decay: bool = False
) -> List[ObjectScores]:
    """Score ``pred [N,H,W]`` ids against the evaluated frames of ``gt``; one entry per GT object.

    Void pixels count as background (the official semi-supervised mode passes no void map);
    objects absent from the prediction are scored as empty masks.
    """
    sel = evaluated_frames(gt)
    gt_ids = gt.ids[sel]  # [N,H,W]
    if pred.shape != gt_ids.shape:
        raise InputError(f"sequence {gt.name}: prediction {pred.shape} does not match ground truth {gt_ids.shape}")
    frames = gt.frames[sel]
    scores = []
    for k in range(1, gt.num_objects + 1):
        # An id missing from the prediction gives empty masks (the official zero-padding).
        g, p = gt_ids == k, pred == k  # [N,H,W] bool
        j, f = region_similarity(g, p), boundary_f(g, p, bound_th=bound_th)
        scores.append(ObjectScores(gt.name, k, frames, j, f, db_statistics(j, uint8_indices=uint8_decay),
                                   db_statistics(f, uint8_indices=uint8_decay)))
    return scores


def evaluate_results(
    root,
    results_dir,
    *,
    split: str = "val",
    sequences: Optional[Sequence[str]] = None,
    resolution: str = "480p",
    bound_th: float = BOUND_TH,
    uint8_decay: bool = False,
    max_frames: Optional[int] = None,
    dataset: Optional[DavisDataset] = None,
) -> Evaluation:
    """Score ``results_dir/<seq>/<frame>.png`` against the DAVIS root ``root`` (or ``dataset``).

    ``uint8_decay=True`` reproduces the official tool's decay bins for > 256 evaluated frames
    (its uint8 overflow); the default computes the intended bins.
    """
    dataset = dataset or DavisDataset(root, split, resolution, sequences, max_frames)
    evaluation = Evaluation(split)
    for seq in dataset.sequences:
        gt = dataset.load(seq)
        sel = evaluated_frames(gt)
        if gt.num_objects == 0:  # the official tool silently contributes nothing; say so
            evaluation.notes.append(f"sequence {seq}: its first annotation {gt.paths[0].name} has no object; skipped")
            continue
        pred = read_results(results_dir, gt, gt.frames[sel])
        evaluation.objects += score_sequence(gt, pred, bound_th=bound_th, uint8_decay=uint8_decay)
    if not evaluation.objects:
        raise InputError(
            f"no object to score: the first annotation of every sequence under {dataset.annotations} is empty"
        )
    return evaluation
