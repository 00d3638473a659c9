"""``python -m dinotools.batch --points``: OUTPUT/<video>.npz equal to ``python -m dinotools.points`` per video
(a grid or a queries folder), the batch record's skip/rerun semantics, and one line per bad input."""
import json

import numpy as np
import pytest
from batch_data import mini_davis

from dinotools.commands.batch import main
from dinotools.commands.points import main as points_main
from dinotools.io.queries import write_queries
from dinotools.io.tracks import read_tracks

FRAMES = 4
SEQS = ["blackswan", "dog"]
POINTS = ["--backbone", "baseline", "--short-side", "96", "--prefetch", "0"]


@pytest.fixture(scope="module")
def davis(tmp_path_factory):
    return mini_davis(tmp_path_factory.mktemp("davis"), FRAMES, SEQS)


def reference(root, out, queries=None, grid=None):
    """Each sequence tracked on its own by ``python -m dinotools.points``."""
    refs = {}
    out.mkdir()
    for seq in SEQS:
        which = ["--grid", str(grid)] if grid else ["--queries", str(queries / f"{seq}.csv")]
        assert points_main(["--frames", str(root / "JPEGImages" / "480p" / seq), *which, "--output",
                            str(out / f"{seq}.npz"), "--no-progress", *POINTS]) == 0
        refs[seq] = read_tracks(out / f"{seq}.npz")
    return refs


def assert_same(out, refs, atol=0.0):
    for seq, ref in refs.items():
        got = read_tracks(out / f"{seq}.npz")
        assert got.complete and got.frame_names == ref.frame_names
        np.testing.assert_allclose(got.tracks, ref.tracks, rtol=0, atol=atol, err_msg=seq)
        np.testing.assert_array_equal(got.visible, ref.visible, err_msg=seq)


@pytest.mark.parametrize("workers", [1, 2])
def test_grid_gives_the_tracks_of_dinotools_points(davis, tmp_path, capsys, workers):
    refs = reference(davis, tmp_path / "ref", grid=3)
    out = tmp_path / "out"
    argv = ["--davis", str(davis), "--output", str(out), "--points", "--grid", "3", "--no-progress",
            "--workers", str(workers), *POINTS]
    assert main(argv) == 0, capsys.readouterr().err
    assert f"{len(SEQS)} video(s): {len(SEQS)} done" in capsys.readouterr().out
    # In this process: identical. Worker processes run torch with another thread count (an equal share of the
    # cores), which changes the order of float sums: positions agree to float32 rounding of ~100 px values.
    atol = 0.0 if workers == 1 else 1e-3
    assert_same(out, refs, atol)
    record = json.loads((out / "batch.json").read_text())
    assert record["settings"]["grid"] == 3 and record["settings"]["tracker"] == "points"
    # A rerun skips finished videos; a video whose tracks are gone is tracked again.
    (out / f"{SEQS[0]}.npz").unlink()
    assert main(argv) == 0
    assert "1 done, 1 skipped" in capsys.readouterr().out
    assert_same(out, refs, atol)


def test_queries_folder(davis, tmp_path, capsys):
    queries = tmp_path / "queries"
    queries.mkdir()
    for i, seq in enumerate(SEQS):
        write_queries(queries / f"{seq}.csv", np.array([[0, 100 + 10 * i, 80], [1, 300, 200.5]]))
    refs = reference(davis, tmp_path / "ref", queries=queries)
    out = tmp_path / "out"
    assert main(["--davis", str(davis), "--output", str(out), "--points", "--queries", str(queries),
                 "--no-progress", *POINTS]) == 0, capsys.readouterr().err
    assert_same(out, refs)


def test_bad_points_input_is_one_line_per_problem(davis, tmp_path, capsys):
    queries = tmp_path / "queries"
    queries.mkdir()
    base = ["--davis", str(davis), "--output", str(tmp_path / "out"), "--no-progress", *POINTS]
    assert main([*base, "--points", "--queries", str(queries)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == len(SEQS) and all(f"{s}.csv not found" in err for s in SEQS), err
    assert main([*base, "--points"]) == 2
    assert "exactly one of --grid N or --queries DIR" in capsys.readouterr().err
    assert main([*base, "--grid", "3"]) == 2
    assert "error: --grid and --queries are for --points" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").glob("*.npz"))


def test_a_stopped_video_is_resumed_by_the_rerun(davis, tmp_path):
    from dinotools.batch import davis_videos, run_batch
    from dinotools.runs.point_settings import PointSettings, build_point_tracker

    refs = reference(davis, tmp_path / "ref", grid=3)
    settings = PointSettings(backbone="baseline", short_side=96, prefetch=0, grid=3)
    tracker = build_point_tracker(settings)
    encode, calls = tracker.encode, []

    def stop_at_third_frame_of_second_video(frames):
        calls.append(1)
        if len(calls) == FRAMES + 3:
            raise KeyboardInterrupt
        return encode(frames)

    tracker.encode = stop_at_third_frame_of_second_video
    videos = davis_videos(davis, "480p", None, None, "first")
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        run_batch(settings, videos, out, tracker=tracker, progress=False)
    stopped = read_tracks(out / f"{SEQS[1]}.npz")
    assert not stopped.complete and len(stopped.frame_names) == 2
    tracker.encode = encode
    result = run_batch(settings, videos, out, tracker=tracker, progress=False)
    assert result.summary["skipped"] == 1 and result.summary["resumed"] == 1, result.summary
    assert result.videos[SEQS[1]]["resumed_from"] == 2
    assert_same(out, refs)


def test_a_rerun_with_other_settings_never_takes_the_old_tracks(davis, tmp_path, capsys):
    """Issue 20 item 4 for --points: finished tracks are skipped only when the rerun's settings match;
    with other settings the rerun is refused up front (it used to report them done), --overwrite replaces."""
    out = tmp_path / "out"
    argv = ["--davis", str(davis), "--output", str(out), "--points", "--grid", "3", "--no-progress", *POINTS]
    assert main(argv) == 0
    before = {p.name: p.read_bytes() for p in out.glob("*.npz")}
    capsys.readouterr()
    assert main([*argv, "--radius", "3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "other settings" in err and "--overwrite" in err, err
    assert {p.name: p.read_bytes() for p in out.glob("*.npz")} == before
    assert main([*argv, "--radius", "3", "--overwrite"]) == 0
    assert f"{len(SEQS)} done" in capsys.readouterr().out
