"""Hands videos to worker slots one at a time; a dead worker is replaced and its video resumed or recorded."""
from __future__ import annotations

import logging
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Callable, Dict, List, Protocol, Sequence, Tuple, Type

from dinotools.batch.worker import Task, describe_error
from dinotools.errors import UserError

log = logging.getLogger(__name__)

POLL_S = 0.2  # progress messages are drained this often while videos run


class WorkerSetupError(UserError):
    """A worker could not build the tracker (weights, device, component): the batch stops, exit 2."""


class Events(Protocol):
    """What the batch driver hears from an engine (always in the driver's thread)."""

    def submitted(self, task: Task) -> None: ...

    def message(self, kind: str, name: str, *payload) -> None: ...

    def requeued(self, task: Task, reason: str) -> None: ...

    def finished(self, task: Task, result: dict) -> None: ...


class Slot(Protocol):
    """One worker (a process or an actor) holding its own tracker; runs one task at a time."""

    death: Tuple[Type[BaseException], ...]  # what the slot's futures raise when its worker died

    def submit(self, task: Task) -> Future: ...

    def restart(self) -> None: ...

    def died(self, exc: BaseException) -> str: ...


def schedule(tasks: Sequence[Task], slots: List[Slot], events: Events, poll: Callable[[], None],
             retries: int = 1) -> None:
    """Run ``tasks`` on ``slots``, each slot one video at a time, in list order.

    A slot whose worker dies (killed, out of memory, a crash in native code) is restarted; the
    video it held runs again, resuming from its written frames, up to ``retries`` times, then is
    recorded as failed: never lost, never silently repeated. A worker that cannot build its
    tracker stops the batch (``WorkerSetupError``) once the videos in flight have finished.
    """
    queue = deque(tasks)
    running: Dict[Future, Tuple[Slot, Task]] = {}
    idle = list(reversed(slots))
    fatal = None
    while queue or running:
        while idle and queue and fatal is None:
            slot, task = idle.pop(), queue.popleft()
            events.submitted(task)
            running[slot.submit(task)] = (slot, task)
        done, _ = wait(list(running), timeout=POLL_S, return_when=FIRST_COMPLETED)
        poll()
        for future in done:
            slot, task = running.pop(future)
            try:
                result = future.result()
            except slot.death as exc:
                reason = f"its worker died while tracking it ({slot.died(exc)})"
                slot.restart()
                if task.attempt <= retries:
                    log.warning("video %s: %s; running it again from its written frames", task.video.name, reason)
                    events.requeued(task, reason)
                    queue.appendleft(task.retry())
                else:
                    events.finished(task, {"status": "failed", "attempts": task.attempt,
                                           "error": f"{reason}, {task.attempt} times; not retried again"})
            except Exception as exc:  # noqa: BLE001 - the engine failed to deliver the task: the video fails
                log.debug("video %s: engine error", task.video.name, exc_info=exc)
                events.finished(task, {"status": "failed", "attempts": task.attempt, "error": describe_error(exc)})
            else:
                if result.get("status") == "fatal":
                    fatal = fatal or result["error"]
                    events.requeued(task, "not run: the batch stopped")
                else:
                    events.finished(task, result)
            idle.append(slot)
        if fatal is not None and queue:
            queue.clear()  # never started: their records stay pending
    poll()
    if fatal is not None:
        raise WorkerSetupError(fatal)
