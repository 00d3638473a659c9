"""The whole batch process SIGKILLed mid-video, then the same command again: every video complete, the frames
written before the kill unchanged (bytes and mtimes), no truncated PNG, the interrupted video resumed."""
import os
import signal
import subprocess
import sys

import pytest

from batch_data import TRACKING, assert_complete, mid_video, mini_davis, record, snapshot, wait_for

FRAMES = 24
SEQS = ["car-shadow", "dog", "motocross-jump"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow  # end to end: starts workers twice (torch imports dominate)
@pytest.mark.parametrize("workers", [1, 2])
def test_kill_the_batch_and_rerun(tmp_path, workers):
    root = mini_davis(tmp_path / "davis", FRAMES, SEQS)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "dinotools.batch", "--davis", str(root), "--output", str(out), "--workers",
           str(workers), "--no-progress", *TRACKING, "--short-side", "160"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        name, _ = wait_for(lambda: mid_video(out, FRAMES), 300, "a video half written")
    finally:
        proc.kill()  # SIGKILL: no handler runs, nothing is flushed
        proc.communicate()
    running = [v for v in record(out)["videos"].values() if v["status"] == "running" and "worker" in v]
    pids = {int(v["worker"].rsplit(":", 1)[1]) for v in running}
    wait_for(lambda: not any(_alive(p) for p in pids), 30, "the worker processes to end with the batch")
    before = snapshot(out)
    assert before and all(k.split("/")[0] in SEQS for k in before)
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert_complete(out, SEQS, FRAMES)
    after = snapshot(out)
    assert {k: after[k] for k in before} == before  # written before the kill: same bytes, same mtime
    videos = record(out)["videos"]
    assert {v["status"] for v in videos.values()} <= {"done", "skipped"}
    assert videos[name]["status"] == "done" and videos[name]["resumed_from"] >= 2
