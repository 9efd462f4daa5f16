"""The espeak-ng fallback speaks real, non-silent speech at 22 kHz or more."""

from __future__ import annotations

import numpy as np
import pytest

from ishowtts_ros.core.errors import EngineError
from ishowtts_ros.engines.registry import create_engine


def test_espeak_produces_speech():
    engine = create_engine("espeak")
    result = engine.synthesize_all("Hello, I am a robot. I can still speak without a graphics card or a model.")
    assert result.sample_rate >= 22050
    assert result.audio_seconds > 1.0
    rms = float(np.sqrt(np.mean(result.samples**2)))
    assert rms > 0.01
    assert np.abs(result.samples).max() <= 1.0
    assert result.chunks == 2


def test_espeak_speed_option_changes_duration():
    engine = create_engine("espeak")
    normal = engine.synthesize_all("This sentence is spoken at two different speeds.")
    fast = engine.synthesize_all("This sentence is spoken at two different speeds.", options={"speed": 2.0})
    assert fast.audio_seconds < normal.audio_seconds * 0.75


def test_espeak_rejects_f5_only_options():
    engine = create_engine("espeak")
    with pytest.raises(EngineError, match="no option 'nfe_step'"):
        engine.synthesize_all("Hello.", options={"nfe_step": 8})
