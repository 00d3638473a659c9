"""Hyperparameter sweeps: ``KEY=V1,V2`` specs -> settings, and the best setting per metric."""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence

from dinotools.errors import UserError

# Metrics the sweep ranks on, and whether larger is better (decay: a smaller drop is better).
RANKED = {
    "J&F-Mean": True, "J-Mean": True, "F-Mean": True, "J-Recall": True, "F-Recall": True,
    "J-Decay": False, "F-Decay": False, "fps": True,
}


def parse_value(text: str) -> Any:
    """``"5"`` -> 5, ``"0.2"`` -> 0.2, ``"none"`` -> None, ``"true"`` -> True, else the string."""
    low = text.strip().lower()
    if low in ("none", "null"):
        return None
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):  # int first: "5" must stay an int for options such as topk
        try:
            return cast(text)
        except ValueError:
            pass
    return text.strip()


def parse_grid(specs: Sequence[str]) -> List[Dict[str, Any]]:
    """``["topk=3,5", "temperature=0.1,0.2"]`` -> the 4 settings of their cartesian product.

    Keys may be written with dashes (``max-context``); they become tracker keyword arguments.
    """
    axes: Dict[str, List[Any]] = {}
    for spec in specs:
        key, sep, values = spec.partition("=")
        key = key.strip().replace("-", "_")
        items = [v for v in values.split(",") if v.strip()]
        if not sep or not key or not items:
            raise UserError(f"--grid expects KEY=V1,V2,... (e.g. topk=3,5), got {spec!r}")
        if key in axes:
            raise UserError(f"--grid names {key!r} twice; give all its values in one KEY=V1,V2 item")
        axes[key] = [parse_value(v) for v in items]
    return [dict(zip(axes, combo)) for combo in itertools.product(*axes.values())]


def setting_name(setting: Dict[str, Any]) -> str:
    """A folder-safe name such as ``topk-5_temperature-0.2``."""
    return "_".join(f"{k}-{v}" for k, v in setting.items()).replace("/", "-") or "default"


@dataclass
class GridRow:
    """One evaluated setting: its keyword arguments and metrics (global figures + fps)."""

    setting: Dict[str, Any]
    metrics: Dict[str, float]


def best_per_metric(rows: Sequence[GridRow]) -> Dict[str, GridRow]:
    """For each ranked metric, the row with the best value (nan never wins; first row wins ties)."""
    best: Dict[str, GridRow] = {}
    for metric, larger in RANKED.items():
        scored = [r for r in rows if not math.isnan(r.metrics.get(metric, float("nan")))]
        if scored:
            pick = max if larger else min
            best[metric] = pick(scored, key=lambda r: r.metrics[metric])
    return best


def format_grid(rows: Sequence[GridRow]) -> str:
    """A table of every setting and, below it, the best setting per metric."""
    shown = ("J&F-Mean", "J-Mean", "F-Mean", "fps")
    width = max([len(setting_name(r.setting)) for r in rows] + [7]) + 2
    lines = [f"{'setting':<{width}}" + "".join(f"{m:>10}" for m in shown)]
    for r in rows:
        lines.append(f"{setting_name(r.setting):<{width}}" + "".join(f"{r.metrics[m]:>10.4f}" for m in shown))
    lines.append("")
    lines.append("best setting per metric:")
    for metric, row in best_per_metric(rows).items():
        lines.append(f"  {metric:<9} {row.metrics[metric]:.4f}  {setting_name(row.setting)}")
    return "\n".join(lines)
