"""The graph lifecycle's rules, with fake captures and a fake compiler that takes as long as the test says: the GPU
worker never compiles and never waits for a compile, in the first round or after it; the compile thread swaps
every graph for a compiled one; close() never waits for a compile."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from ishowtts_ros.engines.f5.lifecycle import CompileTurns, GraphLifecycle

WAIT = 30.0  # a bound on waits that should return at once, never a timing assertion


def eager_block() -> str:
    return "eager"


def compiled_block() -> str:
    return "compiled"


class FakeStep:
    def __init__(self, shape, block) -> None:
        self.shape, self.kind = shape, block()
        self.example = ("inputs of", shape)

    def run(self, inputs):
        return (self.kind, self.shape, inputs)


class Rig:
    """A lifecycle whose compiled captures block until the test releases them, and a one-thread GPU worker."""

    def __init__(self) -> None:
        self.captures: list[tuple[str, str, tuple]] = []  # (thread, block kind, shape)
        self.compiling = threading.Event()  # a compiled capture has started
        self.release = threading.Event()  # lets compiled captures finish
        self.compiler_built = 0
        self.rounds = 0
        self.failures: list[BaseException] = []
        self.lifecycle = GraphLifecycle(self.capture, eager_block, self.compile)
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gpu-worker")
        self.lifecycle.worker = self.worker.submit(threading.current_thread).result()

    def compile(self):
        assert threading.current_thread() is not self.lifecycle.worker, "the worker built a compiler"
        self.compiler_built += 1
        return compiled_block

    def capture(self, shape, example, block):
        step = FakeStep(shape, block)
        self.captures.append((threading.current_thread().name, step.kind, shape))
        if step.kind == "compiled":
            self.compiling.set()
            assert self.release.wait(WAIT), "the test never released the compile"
        return step

    def serve(self, shape, inputs="x"):
        """A request on the worker thread: what ran it."""
        return self.worker.submit(self.lifecycle.run, shape, inputs, lambda: ("eager loop", shape, inputs)).result(
            timeout=WAIT
        )

    def start(self) -> None:
        turns = CompileTurns(lambda: None, lambda done, total: None, self.round_done, self.failures.append)
        self.lifecycle.start_compiling(turns)

    def round_done(self) -> None:
        self.rounds += 1

    def close(self) -> None:
        self.release.set()
        self.lifecycle.close(timeout=WAIT)
        self.worker.shutdown()


@pytest.fixture
def rig():
    made = Rig()
    yield made
    made.close()


def test_a_request_never_waits_for_a_compile_and_the_worker_never_compiles(rig):
    assert rig.serve((1, 256, True))[0] == "eager"  # captured by its request on the worker, without compile
    rig.start()
    assert rig.compiling.wait(WAIT)  # the compile thread is inside a (slow) compiled capture, holding the lock
    assert rig.serve((1, 256, True))[0] == "eager"  # the old graph replays meanwhile
    assert rig.serve((1, 384, True))[0] == "eager loop"  # a new shape: the lock is taken, so it runs eagerly
    assert not rig.lifecycle.on_idle()  # idle work skips its turn rather than waiting
    rig.release.set()
    assert rig.lifecycle.wait_compiled(WAIT)
    assert rig.serve((1, 256, True))[0] == "compiled"
    assert rig.serve((1, 384, True))[0] == "compiled"  # planned by the request, captured, then compiled
    worker_kinds = {kind for thread, kind, _ in rig.captures if thread.startswith("gpu-worker")}
    assert worker_kinds == {"eager"}
    assert not rig.failures


def test_after_the_compile_a_new_shape_is_captured_without_compile_then_compiled_in_a_new_round(rig):
    rig.serve((1, 256, True))
    rig.release.set()
    rig.start()
    assert rig.lifecycle.wait_compiled(WAIT) and rig.rounds == 1
    rig.release.clear()
    rig.compiling.clear()
    # cfg_strength 0 after the compile ended: served by a graph captured without compile, on the worker
    assert rig.serve((1, 256, False))[0] == "eager"
    assert rig.compiling.wait(WAIT)  # the compile thread woke up for it
    assert rig.serve((1, 256, False))[0] == "eager"  # the request after it does not wait for that compile either
    rig.release.set()
    assert rig.lifecycle.wait_compiled(WAIT) and rig.rounds == 2
    assert rig.serve((1, 256, False))[0] == "compiled"
    assert rig.compiler_built == 1
    assert all(kind == "eager" for thread, kind, _ in rig.captures if thread.startswith("gpu-worker"))


def test_planned_shapes_are_captured_when_the_worker_is_idle(rig):
    rig.lifecycle.plan((1, 512, True), "example")
    assert rig.lifecycle.pending == 1
    assert rig.worker.submit(rig.lifecycle.on_idle).result(timeout=WAIT)
    assert rig.lifecycle.pending == 0 and rig.lifecycle.shapes == [(1, 512, True)]
    assert not rig.worker.submit(rig.lifecycle.on_idle).result(timeout=WAIT)  # nothing left
    assert rig.serve((1, 512, True)) == ("eager", (1, 512, True), "x")


def test_close_does_not_wait_for_a_compile(rig):
    rig.serve((1, 256, True))
    rig.start()
    assert rig.compiling.wait(WAIT)
    assert rig.lifecycle.close(timeout=0.05) is False  # still inside the compile: left to its daemon thread
    assert rig.serve((1, 640, True))[0] == "eager loop"  # closing: nothing more is captured
    rig.release.set()
    assert rig.lifecycle.close(timeout=WAIT) is True


def test_a_failing_compiler_stops_compiling_and_keeps_the_graphs(rig):
    def broken_capture(shape, example, block):
        if block is compiled_block:
            raise RuntimeError("no C++ compiler")
        return FakeStep(shape, block)

    lifecycle = GraphLifecycle(broken_capture, eager_block, rig.compile)
    lifecycle.worker = rig.lifecycle.worker
    rig.worker.submit(lifecycle.run, (1, 256, True), "x", lambda: None).result(timeout=WAIT)
    failures: list[BaseException] = []
    lifecycle.start_compiling(CompileTurns(lambda: None, lambda *_: None, lambda: None, failures.append))
    assert lifecycle.wait_compiled(WAIT)
    assert [str(exc) for exc in failures] == ["no C++ compiler"] and not lifecycle.compiles
    assert lifecycle.run((1, 256, True), "y", lambda: None)[0] == "eager"
    lifecycle.close(timeout=WAIT)


def test_a_round_keeps_at_most_one_replaced_graph(rig):
    """Replaced eager graphs are released turn by turn, not all at the round's end (GPU memory: 64 shapes)."""
    for frames in range(256, 256 + 128 * 6, 128):
        rig.serve((1, frames, True))
    held: list[int] = []
    rig.lifecycle._capture = lambda shape, example, block: (held.append(len(rig.lifecycle._retired)), rig.capture(
        shape, example, block))[1]  # fmt: skip
    rig.release.set()
    rig.start()
    assert rig.lifecycle.wait_compiled(WAIT)
    assert held and max(held) <= 1, held
    assert rig.lifecycle.compiled_shapes == rig.lifecycle.shapes
