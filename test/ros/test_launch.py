"""launch_testing: ``ros2 launch ishowtts_ros ishowtts.launch.py`` starts the node from a config file, audio
arrives, the file's values hold where no argument was given, and a given argument overrides its value.

Needs launch_testing (a ROS install; here: ``shared/wheels/ros-launch``, installed by ``make test``) and the
package installed by colcon (``make test`` builds it into ``build/colcon``); skips with the reason otherwise."""

from __future__ import annotations

import json
import os
import time
import unittest
from pathlib import Path

import pytest
from support.launching import ROOT, launch, launch_testing_actions  # first: skips this module without launch_testing

# isort: split
import rclpy
from ishowtts_interfaces.msg import AudioChunk
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.utilities import try_shutdown
from std_msgs.msg import String

LAUNCH_FILE = ROOT / "launch" / "ishowtts.launch.py"
CONFIG = {
    "/**": {
        "ros__parameters": {
            "engine": "f5",
            "checkpoint": "random:tiny",
            "device": "cpu",
            "warmup": False,
            "nfe_step": 3,
        }
    }
}


@pytest.mark.launch_test
@pytest.mark.ros
def generate_test_description():
    config = Path(os.environ.get("TMPDIR", "/tmp")) / f"ishowtts_launch_test_{os.getpid()}.yaml"
    config.write_text(json.dumps(CONFIG))  # JSON is YAML
    node = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(LAUNCH_FILE)),
        launch_arguments={"namespace": "launch_test", "config": str(config), "voice": "nature_zh"}.items(),
    )
    return launch.LaunchDescription([node, launch_testing_actions.ReadyToTest()])


class TestLaunchFile(unittest.TestCase):
    def test_audio_arrives_with_the_files_values_and_the_given_argument(self):
        context = Context()
        rclpy.init(context=context)
        try:
            node = rclpy.create_node("launch_test_client", namespace="/launch_test", context=context)
            executor = SingleThreadedExecutor(context=context)
            executor.add_node(node)
            chunks: list[AudioChunk] = []
            events: list[dict] = []
            node.create_subscription(AudioChunk, "tts/audio", chunks.append, 100)
            node.create_subscription(String, "tts/events", lambda m: events.append(json.loads(m.data)), 100)
            publisher = node.create_publisher(String, "tts/text", 10)
            deadline = time.monotonic() + 180
            finished: list[dict] = []
            while not finished and time.monotonic() < deadline:
                if publisher.get_subscription_count() and not events:
                    publisher.publish(String(data="Hello from the launch test."))
                executor.spin_once(timeout_sec=1.0)
                finished = [e for e in events if e["event"] == "finished"]
            self.assertTrue(finished, f"no finished event within 180 s; events: {events}")
            self.assertEqual(finished[0]["nfe"], 3, "nfe_step from the config file (no launch argument given)")
            self.assertEqual(finished[0]["voice"], "nature_zh", "voice from the launch argument")
            self.assertTrue(chunks, "no audio on tts/audio")
            self.assertEqual((chunks[0].encoding, chunks[0].utterance_id), ("pcm_s16le", finished[0]["id"]))
        finally:
            try_shutdown(context=context)
