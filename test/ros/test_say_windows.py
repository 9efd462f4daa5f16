"""The ``tts/say`` action server in-process with real rclpy (no node process), the speech service and a test engine:
a cancel forced into the window between a goal's accept and its submission to the speech queue."""

from __future__ import annotations

import threading
import time

import pytest
import rclpy
from action_msgs.msg import GoalStatus
from ishowtts_interfaces.action import Say
from rclpy.action import ActionClient
from rclpy.executors import MultiThreadedExecutor
from support.engines import GatedEngine

from ishowtts_ros.core.service import SpeechService, Utterance
from ishowtts_ros.ros.say_action import SayActionServer

pytestmark = pytest.mark.ros
WAIT = 30.0


def wait_done(future, what: str):
    deadline = time.monotonic() + WAIT
    while not future.done():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)
    return future.result()


def test_a_cancel_while_the_goal_is_being_prepared_is_a_cancel_done():
    """The goal's coroutine is held inside its preparation (where the node checks the request) while the cancel
    arrives: the cancel was refused there (nothing to cancel yet) and the goal then spoken in full."""
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("say_window", context=context)
    executor = MultiThreadedExecutor(num_threads=4, context=context)
    executor.add_node(node)
    preparing, proceed = threading.Event(), threading.Event()
    server: list[SayActionServer] = []
    speech = SpeechService(
        GatedEngine(), queue_size=4, on_event=lambda name, payload: server[0].on_event(name, payload),
        on_chunk=lambda utterance, chunk: server[0].on_chunk(utterance, chunk), on_speaking=lambda _speaking: None,
    )  # fmt: skip

    def make_request(goal, utterance_id: str) -> tuple[Utterance, str]:
        preparing.set()
        proceed.wait(WAIT)
        utterance = Utterance(text=goal.text, voice="", options={}, source="tts/say")
        utterance.id = utterance_id
        return utterance, ""

    server.append(SayActionServer(node, speech, make_request))
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        client = ActionClient(node, Say, "tts/say")
        assert client.wait_for_server(timeout_sec=WAIT)
        handle = wait_done(client.send_goal_async(Say.Goal(text="One. Two. Three.")), "the goal's acceptance")
        assert handle.accepted and preparing.wait(WAIT)
        cancel = wait_done(handle.cancel_goal_async(), "the cancel reply")
        proceed.set()
        result = wait_done(handle.get_result_async(), "the goal's result")
        assert len(cancel.goals_canceling) == 1, "the cancel was refused"
        assert result.status == GoalStatus.STATUS_CANCELED and not result.result.success
        assert speech.stats.finished == 0 and speech.stats.cancelled == 1
    finally:
        proceed.set()
        speech.close()
        executor.shutdown(timeout_sec=2)
        node.destroy_node()
        rclpy.try_shutdown(context=context)
