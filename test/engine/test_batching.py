"""Concurrent requests are batched on the one GPU worker and get exactly the audio they would get alone."""

from __future__ import annotations

import threading

import numpy as np
import pytest

TEXTS = ["The first robot speaks.", "A second, somewhat longer request arrives at once.", "And a third one."]


@pytest.mark.slow  # in make test, not in make check's edit loop
def test_concurrent_requests_equal_sequential_ones(tiny_engine):
    options = {"seed": 8, "nfe_step": 4}
    alone = [tiny_engine.synthesize_all(text, options=options).samples for text in TEXTS]
    together: dict[int, np.ndarray] = {}
    barrier = threading.Barrier(len(TEXTS))

    def speak(index: int) -> None:
        barrier.wait()
        together[index] = tiny_engine.synthesize_all(TEXTS[index], options=options).samples

    threads = [threading.Thread(target=speak, args=(i,)) for i in range(len(TEXTS))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for index, expected in enumerate(alone):
        got = together[index]
        assert got.shape == expected.shape
        assert np.linalg.norm(got - expected) / np.linalg.norm(expected) < 1e-4
