"""launch_testing: the launch file starts the node and audio arrives. Skips where launch_testing is absent
(it is not installable from PyPI; a ROS 2 install has it: colcon test --packages-select ishowtts_ros)."""

from __future__ import annotations

import os
import time
import unittest

import pytest

REASON = "launch_testing is not installed (it comes with a ROS 2 install, not from PyPI)"
launch_testing_actions = pytest.importorskip("launch_testing.actions", reason=REASON)
launch = pytest.importorskip("launch", reason=REASON)
pytest.importorskip("launch_ros", reason=REASON)

import rclpy  # noqa: E402
from launch.actions import IncludeLaunchDescription  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
from std_msgs.msg import String, UInt8MultiArray  # noqa: E402

LAUNCH_FILE = os.path.join(os.path.dirname(__file__), "..", "launch", "ishowtts.launch.py")


@pytest.mark.launch_test
@pytest.mark.ros
def generate_test_description():
    node = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(LAUNCH_FILE),
        launch_arguments={"namespace": "launch_test", "nfe_step": "4"}.items(),
    )
    return launch.LaunchDescription([node, launch_testing_actions.ReadyToTest()])


class TestAudioArrives(unittest.TestCase):
    def test_text_produces_audio(self):
        rclpy.init()
        try:
            node = rclpy.create_node("launch_test_client", namespace="/launch_test")
            chunks = []
            node.create_subscription(UInt8MultiArray, "tts/audio", chunks.append, 100)
            publisher = node.create_publisher(String, "tts/text", 10)
            deadline = time.monotonic() + 120
            while not chunks and time.monotonic() < deadline:
                publisher.publish(String(data="Hello from the launch test."))
                rclpy.spin_once(node, timeout_sec=1.0)
            self.assertTrue(chunks, "no audio on tts/audio within 120 s")
            self.assertTrue(chunks[0].layout.dim[0].label.startswith("pcm_s16le@"))
        finally:
            rclpy.shutdown()
