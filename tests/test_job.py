"""The job layer's API for batch runners: ``RunSettings`` + ``build_tracker`` + ``run_video``, as ``dinotools.run``."""
import subprocess
import sys

import numpy as np
from conftest import write_demo_clip

from dinotools.commands.run import build_parser, main, settings_from_args
from dinotools.io.masks import read_mask, write_mask
from dinotools.runs.job import run_video
from dinotools.runs.settings import RunSettings, build_tracker

ARGS = ["--backbone", "baseline", "--propagator", "torch", "--short-side", "48", "--max-context", "3"]


def test_run_video_with_one_preloaded_tracker_matches_the_command_line(tmp_path):
    folder, gt = write_demo_clip(tmp_path, 6, (48, 64))
    write_mask(tmp_path / "mask.png", gt[0])
    assert main(["--frames", str(folder), "--mask", str(tmp_path / "mask.png"), "--output", str(tmp_path / "cli"),
                 "--no-progress", *ARGS]) == 0
    settings = settings_from_args(build_parser().parse_args(ARGS))
    assert settings == RunSettings(backbone="baseline", propagator="torch", short_side=48, max_context=3,
                                   device=settings.device)
    tracker = build_tracker(settings)
    for name in ("a", "b"):  # one tracker, two videos
        report = run_video(settings, folder, tmp_path / "mask.png", tmp_path / name, progress=False, tracker=tracker)
        assert report.frames == 6
        for i in range(6):
            np.testing.assert_array_equal(read_mask(tmp_path / name / f"{i:05d}.png"),
                                          read_mask(tmp_path / "cli" / f"{i:05d}.png"))


def test_job_layer_does_not_import_a_command_line():
    code = "import sys, dinotools.runs.job, dinotools.runs.settings; print(sorted(m for m in sys.modules if m.startswith('dinotools') and m.endswith('cli')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
