"""One check for every front door: the same bad request sent as topic text, as a ``tts/say`` goal, to the Wyoming
server and to the CLI is refused for the same reason (``Engine.prepare``), before anything is queued."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest
from support.net import free_port
from support.ros import RunningNode
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.tts import Synthesize, SynthesizeVoice

from ishowtts_ros.core.text import EMPTY_TEXT

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def wyoming_refusal(port: int, request: Synthesize) -> str:
    async def ask() -> str:
        async with AsyncTcpClient("127.0.0.1", port) as client:
            await client.write_event(request.event())
            while (event := await asyncio.wait_for(client.read_event(), 60)) is not None:
                if Error.is_type(event.type):
                    return Error.from_event(event).text
        return ""

    return asyncio.run(ask())


def cli_refusal(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "ishowtts_ros.cli", "say", *args, "--engine", "espeak", "--out", "/dev/null"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    return " ".join(result.stderr.split())


def test_a_bad_request_is_refused_for_the_same_reason_through_every_front_door(tmp_path):
    port = free_port()
    node = RunningNode(
        tmp_path, "doors", engine="espeak", warmup=False, use_wyoming=True, wyoming_uri=f"tcp://127.0.0.1:{port}"
    )
    try:
        client = node.client
        client.say("   ")
        topic = client.wait_event("failed", 30, text="   ")["error"]
        goal = client.send_goal("   ").result(30)[1].reason
        assert topic == goal == wyoming_refusal(port, Synthesize(text="   ")) == EMPTY_TEXT
        assert EMPTY_TEXT in cli_refusal("   ")

        unknown = "unknown voice 'nobody'; available: nature, nature_zh"
        assert unknown in client.send_goal("Hello.", voice="nobody").result(30)[1].reason
        assert unknown in wyoming_refusal(port, Synthesize(text="Hello.", voice=SynthesizeVoice(name="nobody")))
        assert unknown in cli_refusal("Hello.", "--voice", "nobody")
    finally:
        node.close()
