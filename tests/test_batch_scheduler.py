"""The slot scheduler with stand-in workers: order, dead workers retried then failed, setup failure stops."""
from concurrent.futures import Future
from pathlib import Path

import pytest

from dinotools.batch.scheduler import WorkerSetupError, schedule
from dinotools.batch.sources import Video
from dinotools.batch.worker import Task


class Died(Exception):
    pass


class FakeSlot:
    """Completes each task at once with ``outcome(task)``: a result dict, or ``Died`` for a dead worker."""

    death = (Died,)

    def __init__(self, outcome, log):
        self.outcome, self.log, self.restarts = outcome, log, 0

    def submit(self, task):
        self.log.append((id(self), task.video.name, task.attempt, task.resume))
        f = Future()
        try:
            f.set_result(self.outcome(task))
        except Exception as exc:  # noqa: BLE001
            f.set_exception(exc)
        return f

    def restart(self):
        self.restarts += 1

    def died(self, exc):
        return "killed"


class Events:
    def __init__(self):
        self.calls = []

    def submitted(self, task):
        self.calls.append(("submitted", task.video.name, task.attempt))

    def message(self, *m):
        self.calls.append(("message",) + m)

    def requeued(self, task, reason):
        self.calls.append(("requeued", task.video.name, reason))

    def finished(self, task, result):
        self.calls.append(("finished", task.video.name, result["status"], result.get("error")))


def _tasks(*names):
    return [Task(Video(n, Path(n), Path(n), n), Path(n), resume=False, overwrite=False) for n in names]


def test_videos_go_in_order_over_slots():
    log, events = [], Events()
    slots = [FakeSlot(lambda t: {"status": "done"}, log) for _ in range(2)]
    schedule(_tasks("a", "b", "c", "d", "e"), slots, events, poll=lambda: None)
    assert [name for _, name, _, _ in log] == ["a", "b", "c", "d", "e"]
    assert len({slot for slot, *_ in log}) == 2
    assert sorted(c[1] for c in events.calls if c[0] == "finished") == ["a", "b", "c", "d", "e"]


def test_dead_worker_video_is_resumed_then_failed():
    log, events = [], Events()

    def outcome(task):
        if task.video.name == "bad" or (task.video.name == "once" and task.attempt == 1):
            raise Died("gone")
        return {"status": "done"}

    slot = FakeSlot(outcome, log)
    schedule(_tasks("once", "bad", "ok"), [slot], events, poll=lambda: None, retries=1)
    # the retried video runs again at once, resuming (not overwriting) what it wrote
    assert [(n, a, r) for _, n, a, r in log] == [("once", 1, False), ("once", 2, True), ("bad", 1, False),
                                                 ("bad", 2, True), ("ok", 1, False)]
    finished = {c[1]: c[2:] for c in events.calls if c[0] == "finished"}
    assert finished["once"][0] == "done" and finished["ok"][0] == "done"
    assert finished["bad"][0] == "failed" and "worker died while tracking it (killed), 2 times" in finished["bad"][1]
    assert slot.restarts == 3


@pytest.mark.parametrize("retries", [0, 2])
def test_retries_count(retries):
    log, events = [], Events()
    schedule(_tasks("bad"), [FakeSlot(lambda t: (_ for _ in ()).throw(Died()), log)], events, lambda: None,
             retries=retries)
    assert len(log) == retries + 1


def test_setup_failure_stops_the_batch_after_videos_in_flight():
    log, events = [], Events()
    outcomes = iter([{"status": "done"}, {"status": "fatal", "error": "weights missing"}])
    slots = [FakeSlot(lambda t: next(outcomes), log) for _ in range(2)]
    with pytest.raises(WorkerSetupError, match="weights missing"):
        schedule(_tasks("a", "b", "c", "d"), slots, events, poll=lambda: None)
    assert [n for _, n, _, _ in log] == ["a", "b"]  # c and d never started
    assert ("finished", "a", "done", None) in events.calls
    assert any(c[0] == "requeued" and c[1] == "b" for c in events.calls)


def test_engine_error_fails_only_that_video():
    log, events = [], Events()

    def outcome(task):
        if task.video.name == "x":
            raise RuntimeError("could not pickle\nsecond line")
        return {"status": "done"}

    schedule(_tasks("x", "y"), [FakeSlot(outcome, log)], events, poll=lambda: None)
    finished = {c[1]: c[2:] for c in events.calls if c[0] == "finished"}
    assert finished == {"x": ("failed", "RuntimeError: could not pickle"), "y": ("done", None)}
