"""Streaming: chunks arrive in order, first sentence first, and concatenate to the whole cross-faded utterance."""

from __future__ import annotations

import numpy as np
import pytest

from ishowtts_ros.core.audio import crossfade_join

PARAGRAPH = (
    "Good morning. I am the robot at the front desk, and I will guide you to the meeting room on the second floor. "
    "Please follow me and mind the step near the elevator. We will arrive in about two minutes."
)


@pytest.mark.slow  # in make test, not in make check's edit loop
def test_streamed_chunks_concatenate_to_the_joined_utterance(tiny_engine):
    options = {"seed": 21, "nfe_step": 4}
    chunks = list(tiny_engine.synthesize(PARAGRAPH, options=options))
    assert len(chunks) >= 3
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert [c.is_last for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert len({c.utterance_id for c in chunks}) == 1
    assert len(chunks[0].text) <= tiny_engine.first_chunk_chars
    voice = tiny_engine.registry.get()
    pieces = tiny_engine.split(PARAGRAPH, voice)
    assert [c.text for c in chunks] == pieces
    resolved = tiny_engine.resolve_options(options)
    waves = list(tiny_engine.render(pieces, voice, resolved, None))
    whole = crossfade_join(waves, int(tiny_engine.crossfade_seconds * tiny_engine.sample_rate))
    streamed = np.concatenate([c.samples for c in chunks])
    np.testing.assert_array_equal(streamed, whole)


def test_chunk_timing_is_monotonic(tiny_engine):
    chunks = list(tiny_engine.synthesize(PARAGRAPH, options={"seed": 1, "nfe_step": 2}))
    elapsed = [c.elapsed_seconds for c in chunks]
    assert elapsed == sorted(elapsed)
    assert all(c.synth_seconds > 0 for c in chunks)
    pcm = chunks[0].pcm16()
    assert pcm.dtype == np.dtype("<i2") and len(pcm) == len(chunks[0].samples)
