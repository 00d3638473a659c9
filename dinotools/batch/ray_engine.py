"""``--engine ray``: a pool of Ray actors (Ray Core), each building its tracker once, one video per call.

Why Ray Core actors and not Ray Data (``from_items`` + ``map_batches`` with a callable class):
the batch needs per-video control that Ray Data keeps to itself. When an actor is killed, the
driver here knows exactly which video it held, records that, and resumes that one video on a
fresh actor from its written frames (then records it as failed if it kills a worker again);
Ray Data retries or fails whole blocks, and a video that kills every actor would fail the whole
dataset. Results arrive per video as they finish, so ``batch.json`` is updated at once; videos
start in list order; nothing but a small dict per video crosses the object store (frames and
masks are read, and PNGs written, by the actor itself through the shared filesystem). And it
needs only ``ray``, not ``ray[data]`` (pandas, pyarrow). The scheduling loop is the same as the
local process pool's (``scheduler.schedule``).
"""
from __future__ import annotations

import logging
import uuid
from concurrent.futures import Future
from typing import Optional, Sequence

from dinotools.batch.scheduler import Events, schedule
from dinotools.batch.worker import Task, VideoRunner, throttled, worker_id
from dinotools.errors import UserError

log = logging.getLogger(__name__)

INSTALL_HINT = "the ray engine needs Ray: pip install 'dinotools[ray]'"
LOCAL_OBJECT_STORE = 256 * 2**20  # a Ray started here: results are small dicts, frames never enter the store


def import_ray():
    try:
        import ray
    except ImportError:
        raise UserError(INSTALL_HINT) from None
    return ray


class VideoActor:
    """A Ray actor: one ``VideoRunner`` (tracker built on the first video), progress to ``messages``."""

    def __init__(self, settings, factory, threads: Optional[int], messages) -> None:
        if threads:
            import torch

            torch.set_num_threads(threads)
        self.runner, self.messages = VideoRunner(settings, factory=factory, own_process=True), messages

    def run(self, task: Task) -> dict:
        import ray

        name = ray.get_runtime_context().get_actor_name()
        self._send(("start", task.video.name, {"worker": worker_id(), "actor": name}))
        return self.runner.run(task, throttled(lambda *m: self._send(("frames", *m))))

    def _send(self, message) -> None:
        try:
            self.messages.put_nowait(message)
        except Exception as exc:  # noqa: BLE001 - progress is best effort; the result is what counts
            log.debug("progress message lost: %s", exc)


class RayEngine:
    """``workers`` actors with ``cpus``/``gpus`` each, on the cluster at ``address`` (``auto``: the
    one ``ray start`` made on this node) or on a Ray started here (and stopped at the end).
    Already connected (``ray.init`` called by the caller): that connection is used as it is."""

    def __init__(self, settings, workers: int, *, address: Optional[str] = None, cpus: Optional[float] = None,
                 gpus: float = 0, factory=None, retries: int = 1) -> None:
        self.settings, self.workers, self.address, self.factory = settings, workers, address, factory
        self.retries = retries
        self.cpus, self.gpus = cpus, gpus
        self.ray = import_ray()
        self.started = False

    def describe(self) -> dict:
        return {"engine": "ray", "workers": self.workers, "address": self.address, "cpus_per_worker": self.cpus,
                "gpus_per_worker": self.gpus}

    def connect(self) -> None:
        ray = self.ray
        if ray.is_initialized():
            return
        if self.address:
            ray.init(address=self.address, include_dashboard=False, log_to_driver=True)
        else:
            ray.init(include_dashboard=False, object_store_memory=LOCAL_OBJECT_STORE, log_to_driver=True)
        self.started = True

    def _resources(self) -> float:
        """CPUs per actor (default: an equal share of a Ray started here, 1 on a cluster); checks the
        cluster can hold one actor, since an actor asking for more than any node has waits forever."""
        total = self.ray.cluster_resources()
        cpus = self.cpus
        if cpus is None:
            cpus = max(1, int(total.get("CPU", 1)) // self.workers) if self.started else 1
        for kind, want in (("CPU", cpus), ("GPU", self.gpus)):
            if want and total.get(kind, 0) < want:
                flag = "--cpus-per-worker" if kind == "CPU" else "--gpus-per-worker"
                raise UserError(f"{flag} {want:g}: the Ray cluster has {total.get(kind, 0):g} {kind}(s) in all, "
                                f"so no worker could start; lower {flag} or add nodes")
        fit = min(total.get(k, 0) // w for k, w in (("CPU", cpus), ("GPU", self.gpus)) if w)
        if fit < self.workers:
            log.warning("the Ray cluster holds %d of the %d workers at once (%s); the others wait for resources",
                        fit, self.workers, ", ".join(f"{k} {v:g}" for k, v in total.items() if k in ("CPU", "GPU")))
        return cpus

    def run(self, tasks: Sequence[Task], events: Events) -> None:
        ray = self.ray
        self.connect()
        try:
            from ray.util.queue import Empty, Queue

            cpus = self._resources()
            messages = Queue(actor_options={"num_cpus": 0})
            actor_cls = ray.remote(VideoActor)
            prefix = f"dinotools-batch-{uuid.uuid4().hex[:8]}"
            slots = [_ActorSlot(actor_cls, f"{prefix}-{i}", cpus, self.gpus, (self.settings, self.factory, max(1, int(cpus)), messages))
                     for i in range(self.workers)]

            def poll() -> None:
                try:
                    for message in messages.get_nowait_batch(messages.qsize()):
                        events.message(*message)
                except Empty:
                    pass

            try:
                schedule(tasks, slots, events, poll, self.retries)
            finally:
                for slot in slots:
                    slot.kill()  # an interrupted video keeps its complete PNGs; the rerun resumes it
                ray.kill(messages.actor)
        finally:
            if self.started:
                ray.shutdown()


class _ActorSlot:
    def __init__(self, actor_cls, name: str, cpus: float, gpus: float, args: tuple) -> None:
        import ray

        self.ray, self.actor_cls, self.base, self.args = ray, actor_cls, name, args
        self.options = {"num_cpus": cpus, "num_gpus": gpus, "max_restarts": 0, "max_task_retries": 0}
        self.death = (ray.exceptions.RayActorError,)
        self.generation = 0
        self._new()

    def _new(self) -> None:
        self.generation += 1
        self.name = f"{self.base}.{self.generation}"
        self.actor = self.actor_cls.options(name=self.name, **self.options).remote(*self.args)

    def submit(self, task: Task) -> Future:
        return self.actor.run.remote(task).future()

    def restart(self) -> None:
        self.kill()
        self._new()

    def kill(self) -> None:
        try:
            self.ray.kill(self.actor, no_restart=True)
        except Exception as exc:  # noqa: BLE001 - already dead
            log.debug("killing actor %s: %s", self.name, exc)

    def died(self, exc: BaseException) -> str:
        from dinotools.pipeline.stages import first_line

        return f"Ray actor {self.name}: {first_line(exc)[:200]}"
