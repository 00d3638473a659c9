"""DAVIS-style evaluation (J, F, J&F as davis2017-evaluation), TAP-Vid point metrics, tracker benchmarking."""
from .davis import Evaluation, ObjectScores, evaluate_results, score_sequence
from .dataset import DavisDataset, SequenceGT, read_results
from .metrics import boundary_f, boundary_tolerance, disk, region_similarity, seg2bmap
from .points import evaluate_video, tapvid_metrics
from .stats import Statistics, db_statistics, decay_bins, global_metrics

__all__ = [
    "DavisDataset", "Evaluation", "ObjectScores", "SequenceGT", "Statistics", "boundary_f",
    "boundary_tolerance", "db_statistics", "decay_bins", "disk", "evaluate_results", "evaluate_video", "global_metrics",
    "read_results", "region_similarity", "score_sequence", "seg2bmap", "tapvid_metrics",
]
