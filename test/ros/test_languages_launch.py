"""launch_testing: ``ros2 launch ishowtts_ros languages.launch.py`` starts one node per model in its own namespace
over real DDS: an English one (upstream's vocabulary) and a German community model (its own vocab.txt, v0 layout);
each speaks what is sent in its namespace, and the German one reports the characters its model cannot say."""

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
from support.engines import save_community_model

LAUNCH_FILE = ROOT / "launch" / "languages.launch.py"
GERMAN_MODEL = ('{"dim": 64, "depth": 2, "heads": 4, "ff_mult": 2, "text_dim": 32, "text_mask_padding": false, '
                '"conv_layers": 1, "pe_attn_head": 1}')  # fmt: skip
COMMON = {"engine": "f5", "device": "cpu", "warmup": False, "nfe_step": 3, "vocoder": "random"}
TEXTS = {"lang_en": "Hello from the English node.", "lang_de": "¿Qué tal? Grüße aus Köln."}


@pytest.mark.launch_test
@pytest.mark.ros
def generate_test_description():
    folder = Path(os.environ.get("TMPDIR", "/tmp")) / f"ishowtts_languages_test_{os.getpid()}"
    folder.mkdir(parents=True, exist_ok=True)
    german = save_community_model(folder, GERMAN_MODEL)
    models = {"lang_en": {"checkpoint": "random:tiny"}, "lang_de": {"checkpoint": str(german), "model": GERMAN_MODEL}}
    (folder / "models.yaml").write_text(json.dumps(models))  # JSON is YAML
    (folder / "config.yaml").write_text(json.dumps({"/**": {"ros__parameters": COMMON}}))
    nodes = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(LAUNCH_FILE)),
        launch_arguments={"models": str(folder / "models.yaml"), "config": str(folder / "config.yaml")}.items(),
    )
    return launch.LaunchDescription([nodes, launch_testing_actions.ReadyToTest()])


class TestLanguagesLaunchFile(unittest.TestCase):
    def test_each_namespace_speaks_with_its_own_model(self):
        context = Context()
        rclpy.init(context=context)
        try:
            node = rclpy.create_node("languages_test_client", context=context)
            executor = SingleThreadedExecutor(context=context)
            executor.add_node(node)
            chunks: dict[str, list[AudioChunk]] = {namespace: [] for namespace in TEXTS}
            events: dict[str, list[dict]] = {namespace: [] for namespace in TEXTS}
            publishers = {}
            for namespace in TEXTS:
                node.create_subscription(AudioChunk, f"/{namespace}/tts/audio", chunks[namespace].append, 100)
                node.create_subscription(
                    String, f"/{namespace}/tts/events", lambda m, n=namespace: events[n].append(json.loads(m.data)),
                    100,
                )  # fmt: skip
                publishers[namespace] = node.create_publisher(String, f"/{namespace}/tts/text", 10)

            def finished(namespace: str) -> list[dict]:
                return [e for e in events[namespace] if e["event"] == "finished"]

            deadline = time.monotonic() + 240
            while not all(finished(n) for n in TEXTS) and time.monotonic() < deadline:
                for namespace, text in TEXTS.items():
                    if publishers[namespace].get_subscription_count() and not events[namespace]:
                        publishers[namespace].publish(String(data=text))
                executor.spin_once(timeout_sec=1.0)
            for namespace, text in TEXTS.items():
                self.assertTrue(finished(namespace), f"{namespace}: no finished event; events: {events[namespace]}")
                self.assertEqual(finished(namespace)[0]["text"], text, "each node speaks its own namespace's text")
                self.assertTrue(chunks[namespace], f"no audio on /{namespace}/tts/audio")
                self.assertEqual(chunks[namespace][0].utterance_id, finished(namespace)[0]["id"])
            started = {n: next(e for e in events[n] if e["event"] == "started") for n in TEXTS}
            self.assertEqual(started["lang_de"]["unsayable"], ["¿", "é"], "the German vocabulary has neither")
            self.assertEqual(started["lang_en"]["unsayable"], [], "upstream's vocabulary has both")
        finally:
            try_shutdown(context=context)
