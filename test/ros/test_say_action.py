"""The ``tts/say`` action as a behavior tree uses it, against a real tts_node subprocess over Fast DDS: goal,
feedback and result with matching counts; cancel of one goal leaves the others; goals and topic text share one
queue and one accounting; bad goals end aborted with a reason."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
from support.ros import TINY_NODE, node_fixture

pytestmark = [pytest.mark.ros, pytest.mark.slow]

PARAGRAPH = "Good morning. I will take you to the meeting room upstairs. Please follow me to the elevator."
LONG = " ".join(f"This is sentence number {i} of a very long announcement that goes on." for i in range(25))

node = node_fixture("say", **TINY_NODE)
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "say_and_wait.py"


def test_goal_gives_feedback_per_chunk_and_a_result_that_matches_the_audio(node):
    client = node.client
    goal = client.send_goal(PARAGRAPH, nfe_step=3)
    status, result = goal.result(60)
    assert (status, result.success, result.reason) == ("succeeded", True, "")
    assert result.utterance_id == goal.utterance_id
    chunks = client.wait_audio(goal.utterance_id)
    assert [c.index for c in chunks] == list(range(len(chunks))) and len(chunks) == result.chunks >= 2
    assert result.audio_seconds == pytest.approx(sum(len(c.samples) for c in chunks) / 24000, abs=1e-3)
    assert result.rtf > 0 and 0 < result.time_to_first_audio <= result.synthesis_seconds
    finished = client.wait_event("finished", 10, id=goal.utterance_id)
    assert finished["nfe"] == 3 and finished["source"] == "tts/say"  # the goal's nfe_step, for this goal only
    assert [e["event"] for e in client.events_of(utterance_id=goal.utterance_id)] == [
        "queued", "started", "first_audio", "finished",
    ]  # fmt: skip
    feedback = client.wait_for(
        lambda: [f for f in goal.feedback if f.chunks == result.chunks] and goal.feedback, 10, "the last feedback"
    )
    assert all(f.utterance_id == goal.utterance_id for f in feedback)
    speaking = [f.chunks for f in feedback if f.state == f.STATE_SPEAKING]
    assert speaking == sorted(speaking) and set(range(1, result.chunks + 1)) <= set(speaking)
    assert client.get_parameters("nfe_step")["nfe_step"] == 4  # the node's own setting is untouched


def test_cancel_of_a_queued_goal_leaves_the_one_speaking(node):
    client = node.client
    first = client.send_goal(" ".join(LONG.split(".")[:6]) + ".")
    second = client.send_goal("I should never be spoken.")
    client.wait_event("started", 60, id=first.utterance_id)
    assert second.cancel()
    status, result = second.result(30)
    assert (status, result.success, result.reason) == ("canceled", False, "canceled by its client")
    assert client.audio_of(second.utterance_id) == []
    status, result = first.result(120)
    assert status == "succeeded" and result.chunks == len(client.wait_audio(first.utterance_id))


def test_cancel_mid_utterance_stops_within_a_chunk_and_the_next_goal_speaks(node):
    client = node.client
    goal = client.send_goal(LONG)
    client.wait_for(lambda: client.audio_of(goal.utterance_id), 60, "the first chunk")
    assert goal.cancel()
    status, result = goal.result(30)
    assert status == "canceled" and not result.success
    # Every chunk the result counts reaches us (the audio topic may lag the result); the rest were never spoken.
    spoken = len(
        client.wait_for(lambda: len(c := client.audio_of(goal.utterance_id)) >= result.chunks and c, 10, "audio")
    )
    assert spoken < LONG.count(".")
    assert not any(c.is_last for c in client.audio_of(goal.utterance_id))
    assert goal.cancel() is False  # it has ended: a second cancel is refused
    again = client.send_goal("Speech goes on after a cancel.")
    assert again.result(60)[0] == "succeeded"


def test_stop_and_interrupt_abort_goals_with_a_reason(node):
    client = node.client
    long_goal = client.send_goal(LONG)
    client.wait_event("started", 60, id=long_goal.utterance_id)
    urgent = client.send_goal("Stop right there.", interrupt=True)
    status, result = long_goal.result(30)
    assert (status, result.reason) == ("aborted", "interrupted by a newer request")
    assert urgent.result(60)[0] == "succeeded"
    queued_goal = client.send_goal(LONG)
    client.wait_event("started", 60, id=queued_goal.utterance_id)
    assert "cancelled 1" in client.call("tts/stop").message
    assert queued_goal.result(30)[1].reason == "stopped by request"


def test_goals_and_topic_text_interleaved_under_a_burst_all_end_and_add_up(node):
    client = node.client
    client.wait_for(lambda: client.diagnostic_values().get("queue_depth") == "0", 60, "an idle node")
    before = client.diagnostic_values()
    goals, texts = [], []
    for i in range(8):
        goals.append(client.send_goal(f"Goal number {i}."))
        texts.append(f"Topic text number {i}.")
        client.say(texts[-1])
    outcomes = [goal.result(180) for goal in goals]
    assert [status for status, _ in outcomes] == ["succeeded"] * 8
    assert [result.utterance_id for _, result in outcomes] == [goal.utterance_id for goal in goals]
    for text in texts:
        client.wait_event("finished", 180, text=text)
    after = client.wait_for(
        lambda: (v := client.diagnostic_values()) and int(v["finished"]) >= int(before["finished"]) + 16 and v,
        20,
        "diagnostics counting all 16",
    )
    for key in ("utterances", "finished"):
        assert int(after[key]) - int(before[key]) == 16, key
    assert int(after["texts_received"]) - int(before["texts_received"]) == 8
    assert after["failures"] == before["failures"] and after["cancelled"] == before["cancelled"]


@pytest.mark.parametrize(
    ("goal", "reason"),
    [
        ({"text": "  \n "}, "text is empty"),
        ({"text": "Hello.", "voice": "nobody"}, "unknown voice 'nobody'; available: nature, nature_zh"),
        ({"text": "Hello.", "nfe_step": 1}, "nfe_step=1 is below the minimum 2"),
        ({"text": "Hello.", "speed": 9.0}, "speed=9.0 is above the maximum 3.0"),
        ({"text": "Hello.", "speed": math.nan}, "speed must be finite"),
        ({"text": "x" * 2001}, "max_text_length is 2000"),
    ],
)
def test_bad_goals_are_aborted_with_the_reason_and_counted(node, goal, reason):
    client = node.client
    sent = client.send_goal(**goal)
    status, result = sent.result(30)
    assert status == "aborted" and not result.success and reason in result.reason
    failed = client.wait_event("failed", 10, id=sent.utterance_id)
    assert failed["error"] == result.reason  # the same request in the events, under the same id


def test_the_readme_behavior_tree_example_says_and_waits(node):
    text = "Hello from the behavior tree example."
    run = subprocess.run(
        [sys.executable, str(EXAMPLE), text, "--ros-args", "-r", f"__ns:={node.namespace}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0 and run.stdout.strip().endswith("SUCCESS"), run.stdout + run.stderr
    finished = node.client.wait_event("finished", 10, text=text)
    assert finished["source"] == "tts/say" and len(finished["id"]) == 32  # a goal UUID
