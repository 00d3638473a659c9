"""Evaluation output: a printed table, the official-format CSVs and a full-precision JSON."""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any, Dict, Optional

from dinotools.eval.davis import Evaluation
from dinotools.eval.stats import GLOBAL_KEYS
from dinotools.io.masks import atomic_save


def _fmt(value: float, digits: int = 3) -> str:
    return "nan" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def format_table(evaluation: Evaluation, extra: Optional[Dict[str, Any]] = None) -> str:
    """Per-object rows (``<seq>_<id>``: J, F, recalls, decays), per-sequence means, then the global line."""
    lines = [f"{'Object':<28}{'J-Mean':>8}{'J-Rec':>8}{'J-Decay':>9}{'F-Mean':>8}{'F-Rec':>8}{'F-Decay':>9}"]
    for o in evaluation.objects:
        lines.append(
            f"{o.name:<28}{_fmt(o.j.mean):>8}{_fmt(o.j.recall):>8}{_fmt(o.j.decay):>9}"
            f"{_fmt(o.f.mean):>8}{_fmt(o.f.recall):>8}{_fmt(o.f.decay):>9}"
        )
    lines.append("")
    lines.append(f"{'Sequence':<28}{'J&F':>8}{'J-Mean':>8}{'F-Mean':>8}{'objects':>9}")
    for seq, row in evaluation.per_sequence().items():
        lines.append(
            f"{seq:<28}{_fmt(row['J&F-Mean']):>8}{_fmt(row['J-Mean']):>8}{_fmt(row['F-Mean']):>8}"
            f"{row['objects']:>9d}"
        )
    lines.append("")
    g = evaluation.global_metrics()
    lines.append("  ".join(f"{k} {_fmt(g[k])}" for k in GLOBAL_KEYS))
    lines.append(f"({len(evaluation.objects)} objects; global means are over objects, not sequences)")
    for key, value in (extra or {}).items():
        lines.append(f"{key}: {value}")
    lines += evaluation.notes
    return "\n".join(lines)


def global_csv(evaluation: Evaluation) -> str:
    """``global_results-<split>.csv`` as the official tool writes it (header + one row, 3 decimals)."""
    g = evaluation.global_metrics()
    buf = io.StringIO()  # csv module rather than pandas: same text, one dependency fewer
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(GLOBAL_KEYS)
    writer.writerow([_fmt(g[k]) for k in GLOBAL_KEYS])
    return buf.getvalue()


def per_sequence_csv(evaluation: Evaluation) -> str:
    """``per-sequence_results-<split>.csv``: rows ``<seq>_<id>, J-Mean, F-Mean`` (3 decimals)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["Sequence", "J-Mean", "F-Mean"])
    for o in evaluation.objects:
        writer.writerow([o.name, _fmt(o.j.mean), _fmt(o.f.mean)])
    return buf.getvalue()


def to_json(evaluation: Evaluation, extra: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Full precision: the global figures, ``per_object {name: [J, F]}`` and per-frame values."""
    out: Dict[str, Any] = dict(evaluation.global_metrics())
    out["per_object"] = evaluation.per_object()
    out["per_sequence"] = evaluation.per_sequence()
    out["objects"] = {
        o.name: {
            "J": dict(o.j._asdict()),
            "F": dict(o.f._asdict()),
            "frames": o.frames,
            "J_per_frame": o.J.tolist(),
            "F_per_frame": o.F.tolist(),
        }
        for o in evaluation.objects
    }
    out["split"] = evaluation.split
    out["notes"] = evaluation.notes
    out.update(extra or {})
    return out


def write_reports(evaluation: Evaluation, out_dir, extra: Optional[Dict[str, Any]] = None) -> Dict[str, Path]:
    """Write the two CSVs and ``eval_results-<split>.json`` into ``out_dir``; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    split = evaluation.split
    texts = {
        "global": (out_dir / f"global_results-{split}.csv", global_csv(evaluation)),
        "per_sequence": (out_dir / f"per-sequence_results-{split}.csv", per_sequence_csv(evaluation)),
        "json": (out_dir / f"eval_results-{split}.json",
                 json.dumps(to_json(evaluation, extra), indent=1, allow_nan=True) + "\n"),
    }
    for path, text in texts.values():  # atomic: an interrupted run never leaves half a CSV behind
        atomic_save(path, lambda f, text=text: f.write(text.encode()))
    return {key: path for key, (path, _) in texts.items()}
