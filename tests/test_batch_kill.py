"""The whole batch process SIGKILLed mid-video, then the same command again: every video complete, the frames
written before the kill unchanged (bytes and mtimes), no truncated PNG, the interrupted video resumed."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from batch_data import (
    TRACKING,
    assert_complete,
    mid_video,
    mini_davis,
    record,
    snapshot,
    wait_for,
)

FRAMES = 24
SEQS = ["car-shadow", "dog", "motocross-jump"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (ended, not yet reaped by whoever adopted it) counts as ended
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


@pytest.mark.slow  # end to end: starts workers twice (torch imports dominate)
@pytest.mark.parametrize("workers", [1, 2])
def test_kill_the_batch_and_rerun(tmp_path, workers):
    root = mini_davis(tmp_path / "davis", FRAMES, SEQS)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "dinotools.batch", "--davis", str(root), "--output", str(out), "--workers",
           str(workers), "--no-progress", *TRACKING, "--short-side", "160"]
    # Output to files, not pipes: a worker that outlived the batch would hold a pipe open and hang the
    # test instead of failing it.
    with open(tmp_path / "first.log", "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        name, _ = wait_for(lambda: mid_video(out, FRAMES), 300, "a video half written")
    finally:
        proc.kill()  # SIGKILL: no handler runs, nothing is flushed
        proc.wait(timeout=30)
    running = [v for v in record(out)["videos"].values() if v["status"] == "running" and "worker" in v]
    pids = {int(v["worker"].rsplit(":", 1)[1]) for v in running}
    wait_for(lambda: not any(_alive(p) for p in pids), 30, "the worker processes to end with the batch")
    before = snapshot(out)
    assert before and all(k.split("/")[0] in SEQS for k in before)
    with open(tmp_path / "rerun.log", "wb") as log:
        rerun = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, timeout=600)
    assert rerun.returncode == 0, (tmp_path / "rerun.log").read_text()
    assert_complete(out, SEQS, FRAMES)
    after = snapshot(out)
    assert {k: after[k] for k in before} == before  # written before the kill: same bytes, same mtime
    videos = record(out)["videos"]
    assert {v["status"] for v in videos.values()} <= {"done", "skipped"}
    assert videos[name]["status"] == "done" and videos[name]["resumed_from"] >= 2


def _descendants(pid: int) -> set:
    """Every live process below ``pid`` (Linux /proc children lists)."""
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                kids = {int(c) for c in (task / "children").read_text().split()}
            except OSError:
                continue
            todo += list(kids - found)
            found |= kids
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_batch_killed_while_workers_start_leaves_no_process(tmp_path):
    """SIGKILL while the workers still import torch and build their trackers: every worker ends on its
    own (none waits on its queue forever, holding the terminal or the output folder)."""
    root = mini_davis(tmp_path / "davis", 4, SEQS)
    cmd = [sys.executable, "-m", "dinotools.batch", "--davis", str(root), "--output", str(tmp_path / "out"),
           "--workers", "2", "--no-progress", *TRACKING]
    with open(tmp_path / "batch.log", "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        kids = wait_for(lambda: len(_descendants(proc.pid)) >= 2 and _descendants(proc.pid), 120,
                        "the worker processes to start", step=0.01)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    wait_for(lambda: not any(_alive(p) for p in kids), 120, f"the workers {sorted(kids)} to end with the batch")
