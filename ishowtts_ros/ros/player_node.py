"""``tts_player``: plays ``tts/audio`` from another machine (same chunk format) on this machine's speaker."""

from __future__ import annotations

import sys
from typing import Any

import rclpy
from ishowtts_interfaces.msg import AudioChunk as AudioChunkMsg
from rcl_interfaces.msg import FloatingPointRange, ParameterDescriptor
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.utilities import try_shutdown

from ishowtts_ros.core.playback import AudioPlayer
from ishowtts_ros.ros.audio_msg import AUDIO_QOS, decode_chunk


class PlayerNode(Node):
    """Subscribes to PCM chunks and writes them to PortAudio in arrival order."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("ishowtts_player", **kwargs)
        self.declare_parameter(
            "playback_device", "", ParameterDescriptor(description="output device name or index ('' = default)")
        )
        volume = ParameterDescriptor(
            description="playback gain", floating_point_range=[FloatingPointRange(from_value=0.0, to_value=2.0)]
        )
        self.declare_parameter("volume", 1.0, volume)
        self.player = AudioPlayer(self.get_parameter("playback_device").value, self.get_parameter("volume").value)
        self.create_subscription(AudioChunkMsg, "tts/audio", self._play, AUDIO_QOS)
        self.get_logger().info("playing tts/audio")

    def _play(self, message: AudioChunkMsg) -> None:
        try:
            chunk = decode_chunk(message)
        except ValueError as exc:
            self.get_logger().warning(str(exc), throttle_duration_sec=10.0)
            return
        self.player.volume = self.get_parameter("volume").value
        if not self.player.play(chunk.samples, chunk.sample_rate):
            self.get_logger().warning(f"cannot play audio: {self.player.last_error}", throttle_duration_sec=10.0)


def main(args: list[str] | None = None) -> int:
    rclpy.init(args=args)
    node = PlayerNode()
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.player.close()
        node.destroy_node()
        try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
