"""Transitions on the CPU: what decides whether the first request after a change waits for a compile or grows GPU
memory, checked with real Dynamo (a counting backend) and the real tiny engine."""

from __future__ import annotations

import copy
import threading

import pytest
import torch
from torch._dynamo.testing import CompileCounter

from ishowtts_ros.core.engine import EngineConfig
from ishowtts_ros.engines.f5.engine import F5Engine
from ishowtts_ros.engines.f5.kernels import cudnn_off
from ishowtts_ros.engines.f5.models import random_models
from ishowtts_ros.engines.f5.sampler import SCHEDULES_KEPT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def engine():
    upstream, vocoder = random_models("tiny", seed=3)
    made = F5Engine(EngineConfig(device="cpu"), models=(copy.deepcopy(upstream), copy.deepcopy(vocoder)))
    yield made
    made.close()


def test_vocos_compiled_in_the_background_serves_real_chunks_without_a_recompile(engine):
    """The background compile warms Vocos before swapping it in; the first real chunks (slices of the sampler's
    [B, frames, mels] output, short and long) must meet what it was compiled for, or Dynamo recompiles on the GPU
    worker (1.3 s to first audio on an H100 after the background compile had finished)."""
    torch._dynamo.reset()
    counter = CompileCounter()
    decode = torch.compile(engine._vocos_decode, backend=counter, dynamic=True)
    ref = engine.reference(engine.registry.get())
    flow = {"nfe_step": 2, "cfg_strength": 2.0, "sway_sampling_coef": -1.0}
    with torch.inference_mode():
        engine.warm_vocos(decode)
        warmed = counter.frame_count
        for text in ("Hi.", "Hello there, robot.", "A much longer sentence, so that the chunk is well over two "
                     "hundred frames of audio, as the later chunks of a paragraph are."):  # fmt: skip
            request = engine.sample_request(ref, text, {"speed": 1.0, "seed": 1})
            mel, durations = engine.sample_mels([request], flow)
            engine._decode = decode
            try:
                engine.vocode(mel[0:1, ref.frames : durations[0], :], ref.rms)
            finally:
                engine._decode = engine._vocos_decode
    assert counter.frame_count == warmed, "a real chunk recompiled Vocos"


def test_a_full_sway_sweep_keeps_a_bounded_number_of_modulation_tables(engine):
    sampler = engine.sampler
    for nfe in (8, 64):
        for index in range(201):  # every value rqt's slider can set
            sampler._schedule(nfe, -1.0 + index * 0.01)
            assert len(sampler._schedules) <= SCHEDULES_KEPT
    latest = sampler._schedule(64, 1.0)
    assert sampler._schedule(64, 1.0) is latest  # the current setting is still computed once


def test_cudnn_stays_off_for_a_thread_inside_while_another_thread_leaves():
    """Forced interleaving: A enters, B enters, A leaves, B looks (torch.backends.cudnn.flags failed here: A's exit
    restored cuDNN under B); then B leaves and the setting from before is back."""
    before = torch.backends.cudnn.enabled
    a_in, b_in, a_out, seen = threading.Event(), threading.Event(), threading.Event(), []

    def thread_a() -> None:
        with cudnn_off():
            a_in.set()
            b_in.wait(10)
        a_out.set()

    def thread_b() -> None:
        a_in.wait(10)
        with cudnn_off():
            b_in.set()
            a_out.wait(10)
            seen.append(torch.backends.cudnn.enabled)

    threads = [threading.Thread(target=thread_a), threading.Thread(target=thread_b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert seen == [False]
    assert torch.backends.cudnn.enabled == before
