"""Cross-fading: chunks faded as they stream concatenate to the whole utterance faded at once."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ishowtts_ros.core.audio import StreamingCrossfader, crossfade_join


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    lengths=st.lists(st.integers(min_value=0, max_value=400), min_size=1, max_size=6),
    fade=st.integers(min_value=0, max_value=120),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_streaming_crossfader_matches_whole_join(lengths, fade, seed):
    rng = np.random.default_rng(seed)
    waves = [rng.standard_normal(n).astype(np.float32) for n in lengths]
    fader = StreamingCrossfader(fade)
    streamed = [fader.push(w, i == len(waves) - 1) for i, w in enumerate(waves)]
    np.testing.assert_allclose(np.concatenate(streamed), crossfade_join(waves, fade), rtol=0, atol=1e-6)
