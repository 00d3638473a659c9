"""``python -m dinotools.eval``: --results reports, one-line errors, --track and --grid end to end."""
import csv
import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import shared_path

from dinotools.commands.eval import main
from dinotools.errors import UserError
from dinotools.eval.grid import GridRow, best_per_metric, format_grid, parse_grid
from dinotools.io.masks import read_mask


def test_results_writes_official_csvs(tmp_path, capsys):
    root = shared_path("fixtures", "davis_eval")
    expected = json.loads((root / "expected.json").read_text())["erode"]["per_object"]
    args = ["--davis", str(root), "--results", str(root / "results" / "erode"), "--out", str(tmp_path),
            "--sequences", "dog"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "dog_2" in out and "J&F-Mean" in out and "blackswan" not in out
    full = json.loads((tmp_path / "eval_results-val.json").read_text())
    assert full["per_object"]["dog_2"] == pytest.approx(expected["dog_2"], abs=1e-6)  # JSON: full precision
    assert full["J-Mean"] == pytest.approx((expected["dog_1"][0] + expected["dog_2"][0]) / 2, abs=1e-6)
    assert len(full["objects"]["dog_1"]["J_per_frame"]) == 58  # 60 frames minus first and last
    with open(tmp_path / "global_results-val.csv") as f:
        row = next(csv.DictReader(f))
    assert list(row) == ["J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"]
    assert row["J&F-Mean"] == f"{full['J&F-Mean']:.3f}"  # the official 3-decimal CSV
    with open(tmp_path / "per-sequence_results-val.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["Sequence"] for r in rows] == ["dog_1", "dog_2"]
    assert rows[1]["F-Mean"] == f"{expected['dog_2'][1]:.3f}"


def test_user_errors_are_one_line_exit_2(tmp_path):
    root = shared_path("fixtures", "davis_eval")
    proc = subprocess.run(
        [sys.executable, "-m", "dinotools.eval", "--davis", str(root), "--results", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: results for sequence blackswan not found")


def test_track_needs_backbone(tmp_path, capsys):
    root = shared_path("data", "davis2016-mini")
    assert main(["--davis", str(root), "--track", "--out", str(tmp_path)]) == 2
    assert "--backbone" in capsys.readouterr().err


@pytest.mark.parametrize("engine", [[], ["--prefetch", "2", "--batch-size", "2", "--backbone-workers", "2"]])
def test_track_end_to_end_baseline(tmp_path, capsys, engine):
    root = shared_path("data", "davis2016-mini")
    args = ["--davis", str(root), "--track", "--backbone", "baseline", "--short-side", "64",
            "--sequences", "car-shadow", "--max-frames", "6", "--out", str(tmp_path), *engine]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "fps" in out and "peak RAM" in out
    written = sorted(p.name for p in (tmp_path / "car-shadow").glob("*.png"))
    assert written == [f"{i:05d}.png" for i in range(6)]
    first_gt = read_mask(root / "Annotations" / "480p" / "car-shadow" / "00000.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "car-shadow" / "00000.png"), first_gt)  # frame 0 = given
    report = json.loads((tmp_path / "eval_results-val.json").read_text())
    assert report["tracking"]["frames"] == 6 and report["tracking"]["fps"] > 0
    assert report["tracking"]["peak_rss_mb"] > 0
    assert len(report["objects"]["car-shadow_1"]["J_per_frame"]) == 4  # frames 1..4 of the 6
    assert 0.0 <= report["J&F-Mean"] <= 1.0


def test_grid_end_to_end(tmp_path, capsys):
    root = shared_path("data", "davis2016-mini")
    args = ["--davis", str(root), "--track", "--backbone", "baseline", "--short-side", "48",
            "--sequences", "blackswan", "--max-frames", "4", "--out", str(tmp_path),
            "--grid", "topk=1,5", "max-context=1"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "best setting per metric" in out
    rows = json.loads((tmp_path / "grid_results.json").read_text())
    assert [r["setting"] for r in rows] == [{"topk": 1, "max_context": 1}, {"topk": 5, "max_context": 1}]
    assert (tmp_path / "topk-5_max_context-1" / "blackswan" / "00003.png").is_file()
    assert main(args[:-3] + ["--topk", "3", "--grid", "topk=1,5"]) == 2  # given twice


def test_parse_grid():
    settings = parse_grid(["topk=3,5", "temperature=0.1,0.2", "shape=circle"])
    assert len(settings) == 4
    assert settings[0] == {"topk": 3, "temperature": 0.1, "shape": "circle"}
    assert settings[-1] == {"topk": 5, "temperature": 0.2, "shape": "circle"}
    for bad in (["topk"], ["topk="], ["topk=1", "topk=2"]):
        with pytest.raises(UserError):
            parse_grid(bad)


def test_best_per_metric_prefers_small_decay():
    a = GridRow({"topk": 1}, {"J&F-Mean": 0.5, "J-Mean": 0.6, "F-Mean": 0.4, "J-Decay": 0.3, "fps": 2.0})
    b = GridRow({"topk": 5}, {"J&F-Mean": 0.7, "J-Mean": 0.5, "F-Mean": 0.9, "J-Decay": 0.1, "fps": 1.0})
    best = best_per_metric([a, b])
    assert best["J&F-Mean"] is b and best["J-Mean"] is a and best["J-Decay"] is b and best["fps"] is a
    assert "topk-5" in format_grid([a, b])
