"""Helpers for the process-level ROS tests: a real tts_node subprocess per fixture, an isolated DDS domain."""

from __future__ import annotations

import os
import random

import pytest

os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(101, 215)))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

from ishowtts_ros.ros.client import TtsClient, start_node, stop_node
from support.engines import TINY_CHECKPOINT

TINY_NODE = {"engine": "f5", "checkpoint": TINY_CHECKPOINT, "device": "cpu", "nfe_step": 4, "seed": 3}


class RunningNode:
    """A tts_node subprocess and a client connected to it."""

    def __init__(self, tmp_path, name: str, env: dict[str, str] | None = None, **parameters):
        self.log = tmp_path / f"{name}.log"
        self.namespace = f"/{name}"
        self.process = start_node(parameters, str(self.log), env, namespace=self.namespace)
        self.client = TtsClient(namespace=self.namespace)
        try:
            self.client.wait_ready(timeout=180, process=self.process)
        except (TimeoutError, RuntimeError):
            self.close()
            raise AssertionError(f"tts_node did not start; log:\n{self.log.read_text()}") from None

    def close(self) -> float:
        self.client.close()
        return stop_node(self.process)

    def log_text(self) -> str:
        return self.log.read_text()


def node_fixture(name: str, **parameters):
    @pytest.fixture(scope="module")
    def fixture(tmp_path_factory):
        node = RunningNode(tmp_path_factory.mktemp(name), name, **parameters)
        yield node
        node.close()

    return fixture
