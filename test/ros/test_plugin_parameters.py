"""The node's side of a third-party engine (the tone engine of ``test/support/plugins``): its own option ``pitch``
is a live ROS parameter with its range in the descriptor rqt_reconfigure reads, set at launch, changed live and
refused out of range, and it reaches the audio on ``tts/audio`` and of the node's Wyoming server; the F5 options
are not declared, since this engine has none of them. The CLI and the standalone Wyoming server:
``test/tools/test_engine_plugin.py``."""

from __future__ import annotations

import numpy as np
import pytest
from support.engines import dominant_hz, with_plugin_package
from support.net import free_port, wyoming_speech
from support.ros import RunningNode

pytestmark = [pytest.mark.ros, pytest.mark.slow]
TEXT = "one two three four five"


def spoken_hz(node: RunningNode, text: str) -> float:
    node.client.say(text)
    utterance = node.client.wait_event("finished", 60, text=text)["id"]
    chunks = node.client.wait_audio(utterance, 10)
    return dominant_hz(np.concatenate([c.samples for c in chunks]), chunks[0].sample_rate)


def test_a_plugin_option_is_a_live_parameter_with_its_range(tmp_path):
    port = free_port()
    node = RunningNode(
        tmp_path, "tone", env=with_plugin_package(), engine="tone", pitch=12.0, use_wyoming=True,
        wyoming_uri=f"tcp://127.0.0.1:{port}",
    )  # fmt: skip
    try:
        client = node.client
        pitch = client.describe_parameters("pitch")["pitch"]
        assert pitch.name == "pitch" and not pitch.read_only and "semitones" in pitch.description
        bounds = pitch.floating_point_range[0]
        assert (bounds.from_value, bounds.to_value) == (-12.0, 12.0) and bounds.step > 0
        assert client.describe_parameters("nfe_step") == {}  # not declared: the tone engine has no such option
        assert spoken_hz(node, TEXT) == pytest.approx(440.0, rel=0.02)

        assert client.set_parameters(pitch=-12.0)[0].successful
        assert spoken_hz(node, TEXT + " six") == pytest.approx(110.0, rel=0.02)
        assert not client.set_parameters(pitch=13.0)[0].successful
        assert client.get_parameters("pitch")["pitch"] == -12.0
        assert dominant_hz(*wyoming_speech(port, TEXT)) == pytest.approx(110.0, rel=0.02)  # Home Assistant's too
        client.wait_for(lambda: client.diagnostic_values().get("pitch") == "-12.0", 10, "pitch in diagnostics")
    finally:
        node.close()
