"""``tts_player`` in-process over real DDS: it decodes ``tts/audio`` chunks and hands them to its audio device, and a
malformed chunk is a warning, not a crash."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import rclpy
import support.ros  # noqa: F401  (an isolated DDS domain for this process)
from ishowtts_interfaces.msg import AudioChunk as AudioChunkMsg
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.utilities import try_shutdown

from ishowtts_ros.core.engine import AudioChunk
from ishowtts_ros.ros.audio_msg import AUDIO_QOS, encode_chunk
from ishowtts_ros.ros.player_node import PlayerNode

pytestmark = pytest.mark.ros


def test_player_decodes_chunks_for_its_device_and_survives_a_malformed_one():
    context = Context()
    rclpy.init(context=context)
    device = "no such speaker"
    player = PlayerNode(context=context, parameter_overrides=[Parameter("playback_device", value=device)])
    sender = rclpy.create_node("player_test_sender", context=context)
    audio = sender.create_publisher(AudioChunkMsg, "tts/audio", AUDIO_QOS)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(player)
    executor.add_node(sender)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        deadline = time.monotonic() + 20
        while audio.get_subscription_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        audio.publish(AudioChunkMsg(encoding="opus", channels=1, sample_rate=24000, data=b"\x00\x01\x02"))  # not ours
        tone = (np.sin(np.arange(2400) / 8.0) * 0.2).astype(np.float32)
        chunk = AudioChunk(tone, 24000, 0, "u1", True, "Hello.", 0.01, 0.01)
        audio.publish(encode_chunk(chunk))
        while player.player.available and time.monotonic() < deadline:
            time.sleep(0.05)
        # The valid chunk reached PortAudio for the configured device (none exists here, so it is refused by name).
        assert not player.player.available
        assert device in player.player.last_error
        assert spinner.is_alive()
    finally:
        executor.shutdown(timeout_sec=2.0)
        player.player.close()
        player.destroy_node()
        sender.destroy_node()
        try_shutdown(context=context)
