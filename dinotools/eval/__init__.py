"""DAVIS-style evaluation (J, F, J&F as davis2017-evaluation), TAP-Vid point metrics, tracker benchmarking."""
from dinotools.eval.davis import (
    Evaluation,
    ObjectScores,
    evaluate_results,
    score_sequence,
)
from dinotools.eval.metrics import (
    boundary_f,
    boundary_tolerance,
    disk,
    region_similarity,
    seg2bmap,
)
from dinotools.eval.points import evaluate_video, tapvid_metrics
from dinotools.eval.stats import Statistics, db_statistics, decay_bins, global_metrics
from dinotools.io.datasets import DavisDataset, SequenceGT, read_results

__all__ = [
    "DavisDataset", "Evaluation", "ObjectScores", "SequenceGT", "Statistics", "boundary_f",
    "boundary_tolerance", "db_statistics", "decay_bins", "disk", "evaluate_results", "evaluate_video", "global_metrics",
    "read_results", "region_similarity", "score_sequence", "seg2bmap", "tapvid_metrics",
]
