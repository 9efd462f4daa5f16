"""A request's audio is bounded by its limit in seconds, whatever the text: synthesis stops before the chunk that
would cross it."""

from __future__ import annotations

import pytest
from support.engines import GatedEngine

from ishowtts_ros.core.errors import AudioLimitExceeded


def test_synthesis_stops_before_the_chunk_that_would_pass_the_limit():
    engine = GatedEngine()  # every piece is 0.1 s of audio
    chunks = []
    with pytest.raises(AudioLimitExceeded, match=r"audio limit of 0\.25 s"):
        for chunk in engine.synthesize("One. Two. Three. Four. Five.", max_audio_seconds=0.25):
            chunks.append(chunk)
    assert 0 < sum(c.duration for c in chunks) <= 0.25


def test_without_a_limit_every_chunk_is_produced():
    result = GatedEngine().synthesize_all("One. Two. Three. Four. Five.")
    assert result.chunks == 5
