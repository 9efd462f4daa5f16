"""The graph and compile lifecycle of the sampler's flow steps: which thread captures a shape's CUDA graph, which
thread compiles, and when a graph is swapped for a faster one. The policy lives here, in one place, and is tested
on the CPU with fake captures and a fake compiler (``test/unit/test_lifecycle.py``).

Who owns what:

- **The GPU worker** (:attr:`GraphLifecycle.worker`, the engine's batch scheduler) serves every request.
  :meth:`~GraphLifecycle.run` replays the shape's graph. A shape without one is captured with eager blocks when the
  capture lock is free (one eager step and its recording, a fraction of a second), else the request runs its loop
  eagerly and the shape is planned. :meth:`~GraphLifecycle.on_idle` captures one planned shape with eager blocks.
  The worker never compiles and never waits for the lock.
- **The compile thread** (``f5-compile``, from :meth:`~GraphLifecycle.start_compiling` to
  :meth:`~GraphLifecycle.close`) works in quiet moments: it captures planned shapes with eager blocks, then
  recaptures every shape whose graph runs eager blocks with compiled blocks, one shape per turn, and swaps it in.
  When none is left it sleeps; a shape captured later wakes it for a new round. It never serves a request.
- **Any other thread** (warm-up, tools) captures a missing shape there and then, waiting for the lock.

A graph is swapped by one dict assignment under the capture lock. The worker looks graphs up without the lock (a
dict read is atomic), so it replays the old graph or the new one, never one being built. A replaced graph is
released under the lock at the next turn (after a quiet moment, so no request still runs it) or when the round
ends, never while another capture runs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol, TypeVar

LOG = logging.getLogger(__name__)

#: A captured graph's shape: batch, bucketed frames, guidance on.
Shape = tuple[int, int, bool]
#: ``(block, hidden, modulation, mask, rope) -> hidden``: one DiT block, eager or compiled.
BlockFunction = Callable[..., Any]
T = TypeVar("T")


class Step(Protocol):
    """A captured flow step: replays for every step of a request's time grid."""

    def run(self, inputs: Any) -> Any: ...

    @property
    def example(self) -> Any:
        """Inputs of this step's shape (its own buffers): what a recapture warms up on, so no shape keeps a second
        copy of a request's inputs while it waits to be compiled."""


#: ``(shape, example inputs, block function) -> captured step``.
Capture = Callable[[Shape, Any, BlockFunction], Step]


class CompileTurns(NamedTuple):
    """How the compile thread fits around the service: the engine's side of :meth:`GraphLifecycle.start_compiling`."""

    wait: Callable[[], None]  # returns when the next shape may start (a quiet worker), or once closing
    progress: Callable[[int, int], None]  # (shapes compiled, shapes known) after each shape
    round_done: Callable[[], None]  # after each round (the engine compiles Vocos after the first)
    failed: Callable[[BaseException], None]  # the compiler raised: compiling stops, eager graphs stay


def _first(shapes: dict[Shape, Any]) -> tuple[Shape, Any] | None:
    """The oldest entry of a dict other threads may change (``list`` of a dict's items is atomic)."""
    for key, value in list(shapes.items()):
        return key, value
    return None


class GraphLifecycle:
    """Every captured step of one sampler, and the threads' rules for capturing and compiling them.

    ``capture(shape, example, block)`` records a step of ``shape`` running ``block``; ``eager_block`` is the block
    function that needs no compile; ``compile_block()`` returns the compiled one (None: never compile)."""

    def __init__(
        self, capture: Capture, eager_block: BlockFunction, compile_block: Callable[[], BlockFunction] | None
    ) -> None:
        self._capture = capture
        self._eager_block = eager_block
        self._compile_block = compile_block
        self._graphs: dict[Shape, Step] = {}
        #: Shapes without a graph and an example of each: left for later by warm-up, or met when no capture could
        #: run; captured with eager blocks when the worker is idle or by the compile thread.
        self._planned: dict[Shape, Any] = {}
        #: Shapes whose graph runs eager blocks: the compile thread's work (recaptured from the graph's own inputs).
        self._uncompiled: dict[Shape, None] = {}
        self._compiled: set[Shape] = set()
        self._retired: list[Step] = []
        self._lock = threading.Lock()  # held while a graph is captured
        self._wake = threading.Condition()  # the compile thread sleeps on it between rounds
        self._idle = threading.Event()  # the compile thread has nothing to do (or has ended)
        self.closing = threading.Event()
        #: The GPU worker: the one thread that never waits for the lock and never compiles.
        self.worker: threading.Thread | None = None
        self._compiler: threading.Thread | None = None

    @property
    def shapes(self) -> list[Shape]:
        """Every shape that has a graph."""
        return sorted(self._graphs)

    @property
    def compiled_shapes(self) -> list[Shape]:
        return sorted(self._compiled)

    @property
    def pending(self) -> int:
        """Shapes planned without a graph yet (``graphs_to_capture``)."""
        return len(self._planned)

    @property
    def compiles(self) -> bool:
        """Whether graphs are (still) to be recaptured with compiled blocks."""
        return self._compile_block is not None

    @property
    def capture_lock(self) -> threading.Lock:
        """Held while a graph is captured: other work that may synchronise the whole device (Triton's autotuning
        does, as does emptying the CUDA cache) holds it too, so it never breaks a capture."""
        return self._lock

    def plan(self, shape: Shape, example: Any) -> None:
        """Leave ``shape``'s graph to the idle captures (warm-up's longer buckets, shapes known in advance)."""
        if shape not in self._graphs and not self.closing.is_set():
            self._planned.setdefault(shape, example)
            self._notify()

    def run(self, shape: Shape, inputs: Any, eager: Callable[[], T]) -> T:
        """``shape``'s graph run on ``inputs``; without a graph, one is captured now where the rules allow (see the
        module's table), else ``eager()`` runs it and the shape is planned."""
        step = self._graphs.get(shape)
        if step is None:
            step = self._capture_now(shape, inputs)
        if step is None:
            self.plan(shape, inputs)
            return eager()
        return step.run(inputs)

    def on_idle(self) -> bool:
        """The GPU worker's idle work: one planned shape captured with eager blocks; False when there was none or
        the compile thread holds the lock."""
        return self._capture_planned(wait=False)

    def _capture_now(self, shape: Shape, example: Any) -> Step | None:
        on_worker = threading.current_thread() is self.worker
        if self.closing.is_set() or not self._lock.acquire(blocking=not on_worker):
            return None
        try:
            return self._capture_missing(shape, example)
        except Exception:
            if not on_worker:
                raise
            LOG.warning("capturing a CUDA graph for %s failed; this request runs without one", shape, exc_info=True)
            return None
        finally:
            self._lock.release()

    def _capture_missing(self, shape: Shape, example: Any) -> Step:
        """``shape``'s graph, captured with eager blocks if it has none (the lock held)."""
        try:
            step = self._graphs.get(shape)
            if step is None:
                step = self._capture(shape, example, self._eager_block)
                self._graphs[shape] = step
                if self._compile_block is not None:
                    self._uncompiled[shape] = None
                    self._notify()
            return step
        finally:  # captured, or failed: a failed shape runs eagerly until a later request plans it again
            self._planned.pop(shape, None)

    def _capture_planned(self, wait: bool) -> bool:
        if not self._planned or not self._lock.acquire(blocking=wait):
            return False
        try:
            planned = _first(self._planned)
            if planned is None:  # another thread captured the last one
                return False
            try:
                self._capture_missing(*planned)
            except Exception:
                LOG.warning("capturing a CUDA graph for %s failed; it runs without one", planned[0], exc_info=True)
        finally:
            self._lock.release()
        return True

    # --- the compile thread ------------------------------------------------------------------------------------
    def start_compiling(self, turns: CompileTurns) -> None:
        """Start the compile thread (once): it recaptures every graph with compiled blocks, round after round."""
        if self._compile_block is None or self._compiler is not None:
            return
        self._compiler = threading.Thread(target=self._compile_rounds, args=(turns,), name="f5-compile", daemon=True)
        self._compiler.start()

    def _compile_rounds(self, turns: CompileTurns) -> None:
        compiled: BlockFunction | None = None
        try:
            while self._wait_for_work():
                while self._has_work() and not self.closing.is_set():
                    turns.wait()
                    if self.closing.is_set() or self._capture_planned(wait=True):
                        continue
                    work = _first(self._uncompiled)
                    if work is None or self._compile_block is None:
                        continue
                    if compiled is None:  # torch.compile's imports hold the GIL for seconds: in a quiet moment too
                        compiled = self._compile_block()
                    self._recapture(work[0], compiled)
                    turns.progress(len(self._compiled), len(self._graphs))
                self._end_round(turns)
        except Exception as exc:
            self._compile_block = None
            self._uncompiled.clear()
            turns.failed(exc)
        finally:
            with self._lock:
                self._retired.clear()
            self._idle.set()

    def _wait_for_work(self) -> bool:
        with self._wake:
            while not self._has_work() and not self.closing.is_set():
                self._idle.set()
                self._wake.wait()
            self._idle.clear()
        return not self.closing.is_set()

    def _has_work(self) -> bool:
        return bool(self._planned or self._uncompiled)

    def _recapture(self, shape: Shape, compiled: BlockFunction) -> None:
        """``shape``'s graph with compiled blocks, swapped in; the worker replays the eager one meanwhile. The graph
        replaced in the turn before is released first: the worker takes a graph from the dict when a request
        starts, and it has been quiet since that swap (each turn waits for a quiet moment), so nothing still runs
        it; this keeps one replaced graph in memory instead of one per shape until the round ends."""
        with self._lock:
            self._retired.clear()
            previous = self._graphs.get(shape)
            if shape not in self._uncompiled or previous is None:
                self._uncompiled.pop(shape, None)
                return
            del self._uncompiled[shape]
            self._graphs[shape] = self._capture(shape, previous.example, compiled)
            self._compiled.add(shape)
            if previous is not None:
                self._retired.append(previous)

    def _end_round(self, turns: CompileTurns) -> None:
        if self.closing.is_set():
            return
        with self._lock:
            self._retired.clear()
        turns.round_done()

    def _notify(self) -> None:
        with self._wake:
            self._idle.clear()
            self._wake.notify_all()

    def wait_compiled(self, timeout: float | None = None) -> bool:
        """Until the compile thread has nothing left to do (or has ended); False if it still has after ``timeout``
        seconds. Without a compile thread, True at once."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._compiler is not None and self._compiler.is_alive():
            if self._idle.is_set() and not self._has_work():
                return True
            remaining = 0.05 if deadline is None else min(0.05, deadline - time.monotonic())
            if remaining <= 0:
                return False
            self._idle.wait(remaining)
            if self._has_work():
                time.sleep(remaining)
        return True

    def close(self, timeout: float) -> bool:
        """Plan nothing more and stop the compile thread; False if it is still inside a compile after ``timeout``
        seconds (it is a daemon: a compile that cannot be interrupted ends with the process)."""
        self.closing.set()
        self._planned.clear()
        self._notify()
        if self._compiler is not None:
            self._compiler.join(timeout)
            return not self._compiler.is_alive()
        return True

    def stop_compiling(self) -> None:
        """Compile nothing more (the compiler failed): graphs already captured keep what they run."""
        self._compile_block = None
        self._uncompiled.clear()
        self._notify()
