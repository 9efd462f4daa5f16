"""The GPU worker's queue without a GPU: jobs with one key batch, errors reach the jobs that caused them, idle work
runs only between jobs, and the quiet time other work waits for."""

from __future__ import annotations

import threading
import time

import pytest

from ishowtts_ros.core.scheduler import BatchScheduler


def test_scheduler_batches_waiting_jobs_with_the_same_key():
    started, release = threading.Event(), threading.Event()
    batches: list[list[str]] = []

    def run(jobs):
        if not batches:
            started.set()
            release.wait(5)
        batches.append([job.payload for job in jobs])
        for job in jobs:
            job.result = job.payload.upper()

    scheduler = BatchScheduler(run, max_batch=2)
    jobs = [scheduler.submit("nfe8", "a")]
    assert started.wait(5)
    jobs += [scheduler.submit(key, payload) for key, payload in (("nfe8", "b"), ("nfe16", "c"), ("nfe8", "d"))]
    release.set()
    assert [job.wait() for job in jobs] == ["A", "B", "C", "D"]
    scheduler.close()
    assert batches == [["a"], ["b", "d"], ["c"]]
    assert scheduler.largest_batch == 2


def test_scheduler_reports_errors_to_the_jobs_that_caused_them():
    def run(jobs):
        raise ValueError("bad batch")

    scheduler = BatchScheduler(run)
    with pytest.raises(ValueError, match="bad batch"):
        scheduler.submit("k", 1).wait()
    scheduler.close()
    with pytest.raises(RuntimeError, match="closed"):
        scheduler.submit("k", 2)


def test_idle_work_runs_between_jobs_and_never_ahead_of_one():
    """Deferred captures run when no job waits, one piece at a time, and a job submitted meanwhile goes next."""
    log: list[str] = []
    pieces = ["capture 1", "capture 2"]
    first_piece_running, submitted = threading.Event(), threading.Event()

    def idle() -> bool:
        if not pieces:
            return False
        piece = pieces.pop(0)
        if piece == "capture 1":
            first_piece_running.set()
            submitted.wait(5)
        log.append(piece)
        return True

    def run(jobs):
        for job in jobs:
            log.append(job.payload)
            job.result = job.payload

    scheduler = BatchScheduler(run, on_idle=idle, idle_delay=0.0)
    assert first_piece_running.wait(5)
    job = scheduler.submit("k", "request")
    submitted.set()
    assert job.wait() == "request"
    scheduler.close()
    assert log[:2] == ["capture 1", "request"]  # the waiting request before the next idle piece
    assert log[2:] in ([], ["capture 2"])


def test_quiet_time_is_zero_while_a_job_waits_or_runs_and_counts_up_after():
    """The background compile waits for a quiet worker: quiet means no job waiting and none running."""
    running, release = threading.Event(), threading.Event()

    def run(jobs):
        running.set()
        release.wait(5)
        for job in jobs:
            job.result = job.payload

    scheduler = BatchScheduler(run)
    first = scheduler.submit("k", "first")
    assert running.wait(5)
    second = scheduler.submit("k", "second")  # waits behind the running one
    assert scheduler.quiet_for() == 0.0
    release.set()
    assert (first.wait(), second.wait()) == ("first", "second")
    deadline = time.monotonic() + 5
    while (quiet := scheduler.quiet_for()) == 0.0:
        assert time.monotonic() < deadline, "the worker never became quiet"
        time.sleep(0.01)
    time.sleep(0.02)
    assert scheduler.quiet_for() > quiet
    scheduler.close()
