"""One thread owns the accelerator: it runs every chunk, batching chunks of concurrent requests that can share a
forward pass (same NFE, guidance and sway), so four robots' worth of requests cost about one pass, not four."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
P = TypeVar("P")

LOG = logging.getLogger(__name__)


@dataclass
class BatchJob(Generic[K, P]):
    """A unit of work; ``launched`` fires once the worker has queued it on the device (or failed). Jobs with equal
    keys may share a batch."""

    key: K
    payload: P
    launched: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None

    def wait(self) -> Any:
        self.launched.wait()
        if self.error is not None:
            raise self.error
        return self.result


class BatchScheduler(Generic[K, P]):
    """FIFO of jobs; the worker takes the oldest job plus every waiting job with the same key, up to
    ``max_batch``, and hands them to ``run_batch`` (which sets each job's result or error). Once no job has come
    for ``idle_delay`` seconds (a request's next chunk, a robot's next sentence usually come sooner), the worker
    calls ``on_idle`` (deferred work such as graph captures) until it returns False, then sleeps."""

    def __init__(
        self,
        run_batch: Callable[[list[BatchJob[K, P]]], None],
        max_batch: int = 4,
        name: str = "tts-gpu",
        on_idle: Callable[[], bool] | None = None,
        idle_delay: float = 1.0,
    ) -> None:
        self._run_batch = run_batch
        self._on_idle = on_idle
        self.idle_delay = idle_delay
        self.max_batch = max(1, max_batch)
        self._pending: deque[BatchJob[K, P]] = deque()
        self._ready = threading.Condition()
        self._closed = False
        self._running = False
        self._last_activity = time.monotonic()
        self.largest_batch = 0
        self._worker = threading.Thread(target=self._work, name=name, daemon=True)
        self._worker.start()

    @property
    def worker(self) -> threading.Thread:
        """The thread that runs every batch and the idle work."""
        return self._worker

    def quiet_for(self) -> float:
        """Seconds since the worker last had a job waiting or running (0 while it has one): other work that would
        slow requests down (a background compile) waits for a quiet moment."""
        with self._ready:
            if self._pending or self._running:
                return 0.0
            return time.monotonic() - self._last_activity

    def submit(self, key: K, payload: P) -> BatchJob[K, P]:
        job = BatchJob(key, payload)
        with self._ready:
            if self._closed:
                raise RuntimeError("the synthesis worker has been closed")
            self._pending.append(job)
            self._ready.notify()
        return job

    def close(self, timeout: float = 0.5) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify_all()
        self._worker.join(timeout)

    def _take_batch(self) -> list[BatchJob[K, P]] | None:
        with self._ready:
            while not self._pending and not self._closed:
                if self._on_idle is not None:
                    self._ready.wait(self.idle_delay)
                    if self._pending or self._closed:
                        break
                    if self._idle_work_done():
                        continue
                self._ready.wait()
            if not self._pending:
                return None
            first = self._pending.popleft()
            self._running = True
            batch = [first]
            for job in list(self._pending):
                if len(batch) >= self.max_batch:
                    break
                if job.key == first.key:
                    self._pending.remove(job)
                    batch.append(job)
            return batch

    def _idle_work_done(self) -> bool:
        """Run one piece of idle work with the lock released (jobs can be submitted meanwhile)."""
        assert self._on_idle is not None
        self._ready.release()
        try:
            return self._on_idle()
        except Exception:
            LOG.exception("idle work failed")
            return False
        finally:
            self._ready.acquire()

    def _work(self) -> None:
        while (batch := self._take_batch()) is not None:
            self.largest_batch = max(self.largest_batch, len(batch))
            try:
                self._run_batch(batch)
            except BaseException as exc:
                LOG.debug("batch of %d failed: %s", len(batch), exc)
                for job in batch:
                    if not job.launched.is_set():
                        job.error = exc
            finally:
                for job in batch:
                    job.launched.set()
                with self._ready:
                    self._running = False
                    self._last_activity = time.monotonic()
        with self._ready:
            for job in self._pending:
                job.error = RuntimeError("the synthesis worker has been closed")
                job.launched.set()
            self._pending.clear()
