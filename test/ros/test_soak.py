"""Soak: 500 consecutive utterances through a real node (tiny model, CPU): no RSS growth beyond a small bound, no
thread growth, and every utterance finished (RTF early and late is printed)."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest
from support.ros import TINY_NODE, RunningNode

pytestmark = [pytest.mark.ros, pytest.mark.slow]
UTTERANCES = 500
RSS_BOUND_MIB = 64


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def threads(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/task").iterdir()))


def test_500_utterances_without_leaks_or_drift(tmp_path):
    node = RunningNode(tmp_path, "soak", **{**TINY_NODE, "nfe_step": 2})
    client = node.client
    pid = node.process.pid
    try:
        rtfs = []
        baseline = None
        for index in range(UTTERANCES):
            text = f"Soak utterance {index}. The robot keeps talking."
            client.say(text)
            end = client.wait_event("finished", 60, text=text)
            rtfs.append(end["rtf"])
            if index == 49:  # after warm-up: allocator pools and caches have settled
                baseline = (rss_mib(pid), threads(pid))
            if index % 50 == 0:  # keep the client's own history small
                client.events.clear()
                client.chunks.clear()
        rss, thread_count = rss_mib(pid), threads(pid)
        assert rss - baseline[0] < RSS_BOUND_MIB, f"RSS grew from {baseline[0]:.0f} to {rss:.0f} MiB"
        assert thread_count == baseline[1], f"threads {baseline[1]} -> {thread_count}"
        # RTF is wall time: reported, not asserted (a busy 2-core CI machine moved it 2.3x in one run). What leaks
        # would show as growth is asserted above: memory and threads.
        early, late = statistics.median(rtfs[50:150]), statistics.median(rtfs[-100:])
        # The diagnostics that count the last utterance follow its `finished` event on another topic.
        client.wait_for(
            lambda: int(client.diagnostic_values().get("finished", 0)) >= UTTERANCES, 5, "diagnostics of the last one"
        )
        values = client.diagnostic_values()
        assert int(values["finished"]) == UTTERANCES and int(values["failures"]) == 0
        print(f"soak: RSS {baseline[0]:.0f} -> {rss:.0f} MiB, threads {thread_count}, RTF {early:.4f} -> {late:.4f}")
    finally:
        node.close()
