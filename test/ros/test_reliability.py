"""Reliability under load, faults and bad input: a real node process over real DDS. Every request must end as
finished, cancelled or failed-with-reason, and the node must keep serving."""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
from std_msgs.msg import String
from support.engines import REFERENCE_TEXT, reference_clip, write_voices_file
from support.ros import TINY_NODE, RunningNode, node_fixture

from ishowtts_ros.core.service import TEXT_PREVIEW

pytestmark = [pytest.mark.ros, pytest.mark.slow]
ENDS = ("finished", "failed", "cancelled")

faulty = node_fixture("faulty", engine="faulty", queue_size=16)


def end_of(client, text, timeout=60.0):
    """The event that ended the request for ``text`` (events carry a preview of long texts)."""
    shown = text if len(text) <= TEXT_PREVIEW else text[: TEXT_PREVIEW - 1] + "\u2026"
    return client.wait_for(
        lambda: next((e for e in client.events if e["event"] in ENDS and e["text"] == shown), None), timeout, text
    )


def test_engine_fault_mid_utterance_is_reported_and_the_next_works(faulty):
    client = faulty.client
    text = "Hello there, this first sentence is perfectly fine to speak. Then a FAULT happens."
    client.say(text)
    failed = end_of(client, text)
    assert failed["event"] == "failed" and "injected engine fault" in failed["error"]
    assert client.wait_audio(failed["id"], complete=False)  # it did fail mid-utterance
    client.wait_for(lambda: int(client.diagnostic_values().get("failures", 0)) >= 1, 5, "failure count")
    assert "injected engine fault" in client.diagnostic_values()["last_error"]
    client.say("Still speaking.")
    assert end_of(client, "Still speaking.")["event"] == "finished"


def test_out_of_memory_is_retried_with_smaller_chunks_then_reported(faulty):
    client = faulty.client
    text = "Hello there. This OOM sentence is long enough to fail the first time around, surely."
    client.say(text)
    assert end_of(client, text)["event"] == "finished"
    client.say("Hi. OOMALWAYS here.")
    failed = end_of(client, "Hi. OOMALWAYS here.")
    assert failed["event"] == "failed" and "out of accelerator memory even with smaller chunks" in failed["error"]
    assert "retrying with smaller chunks" in faulty.log_text()


def test_burst_of_200_stays_responsive_and_every_request_is_accounted_for(faulty):
    client = faulty.client
    texts = [f"Burst message number {i}." for i in range(200)]
    for text in texts:
        client.say(text)
    # Parameters and services are answered while the burst is still being spoken (16 queued take seconds), not
    # after it: what is measured is the order, not a wall time a loaded machine could miss.
    assert all(r.successful for r in client.set_parameters(volume=0.5))
    assert client.call("tts/list_voices").success
    assert sum(e["event"] in ENDS and e["text"] in texts for e in list(client.events)) < len(texts)
    ends = [end_of(client, text, timeout=180) for text in texts]
    counts = {name: sum(e["event"] == name for e in ends) for name in ENDS}
    assert sum(counts.values()) == 200
    assert counts["finished"] >= 16
    assert all("queue full (16 waiting)" in e["error"] for e in ends if e["event"] == "failed")


@pytest.mark.parametrize(
    "text",
    [
        "Emoji 🤖🎉 and mixed scripts: привет, 你好, مرحبا.",
        "<speak>Markup <b>is</b> read as text &amp; entities.</speak>",
        "?!...;;",
        "Call 555-0199 at 10:30 a.m., Dr. Smith, approx. 3.5 km NNE.",
        "Control\x07characters\x1b[31m and\ttabs\r\nnewlines.",
    ],
)
def test_odd_text_ends_cleanly(faulty, text):
    faulty.client.say(text)
    assert end_of(faulty.client, text)["event"] in ("finished", "failed")


def test_100_kb_text_is_refused_with_a_reason(faulty):
    text = "x" * 100_000
    faulty.client.say(text)
    failed = faulty.client.wait_for(
        lambda: next((e for e in faulty.client.events_of("failed") if "100000 characters" in e["error"]), None), 30
    )
    assert "max_text_length is 2000" in failed["error"]
    faulty.client.say("Short and fine.")
    assert end_of(faulty.client, "Short and fine.")["event"] == "finished"


@pytest.fixture(scope="module")
def voices_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad_voices")
    shutil.copy(reference_clip(), folder / "good.wav")
    rng = np.random.default_rng(0)
    soundfile.write(folder / "silent.wav", np.zeros(24000 * 3, dtype=np.float32), 24000)
    soundfile.write(folder / "lowrate.wav", rng.uniform(-0.3, 0.3, 8000 * 3).astype(np.float32), 8000)
    soundfile.write(folder / "long.wav", rng.uniform(-0.3, 0.3, 16000 * 600).astype(np.float32), 16000)
    data, rate = soundfile.read(folder / "good.wav")
    soundfile.write(folder / "stereo.wav", np.stack([data, data], axis=1), rate)
    (folder / "unreadable.wav").write_bytes(b"not audio at all")
    entry = {"text": REFERENCE_TEXT, "language": "en"}
    names = ("good", "silent", "lowrate", "long", "stereo", "unreadable")
    write_voices_file(folder, {name: {**entry, "audio": f"{name}.wav"} for name in names}, default="good")
    return folder


@pytest.mark.parametrize(
    ("voice", "outcome"),
    [
        ("silent", "is silent"),
        ("lowrate", "sampled at 8000 Hz"),
        ("long", "600.0 s long"),
        ("unreadable", "cannot be read as audio"),
        ("stereo", None),  # mixed down to mono, as upstream does
    ],
)
def test_unusable_reference_audio_fails_with_a_reason(voices_folder, tmp_path, voice, outcome, request):
    node = request.getfixturevalue("bad_voice_node")
    client = node.client
    assert all(r.successful for r in client.set_parameters(voice=voice))
    text = f"Speaking with the {voice} voice."
    client.say(text)
    end = end_of(client, text)
    if outcome is None:
        assert end["event"] == "finished"
    else:
        assert end["event"] == "failed" and outcome in end["error"] and f"voice '{voice}'" in end["error"]
    client.set_parameters(voice="good")
    client.say(f"Good voice after {voice}.")
    assert end_of(client, f"Good voice after {voice}.")["event"] == "finished"


@pytest.fixture(scope="module")
def bad_voice_node(voices_folder, tmp_path_factory):
    node = RunningNode(
        tmp_path_factory.mktemp("bad_voice_node"), "bad_voice_node", **TINY_NODE,
        voices_file=str(voices_folder / "voices.yaml"), warmup=False,
    )  # fmt: skip
    yield node
    node.close()


def test_a_voices_file_that_is_missing_malformed_drops_the_selected_voice_or_has_unreadable_clips_is_refused(
    bad_voice_node, voices_folder
):
    client = bad_voice_node.client
    path: Path = voices_folder / "voices.yaml"
    original = path.read_text()
    try:
        path.write_text("voices: [broken", encoding="utf-8")
        reply = client.call("tts/reload_voices")
        assert not reply.success and "is not valid YAML" in reply.message
        path.unlink()
        reply = client.call("tts/reload_voices")
        assert not reply.success and "does not exist" in reply.message
        assert "good" in client.call("tts/list_voices").message
        assert all(r.successful for r in client.set_parameters(voice="good"))
        path.write_text(original.replace("good:", "renamed:").replace("default: good", "default: renamed"))
        reply = client.call("tts/reload_voices")
        assert not reply.success and "no voice 'good', the voice selected now" in reply.message
    finally:
        path.write_text(original, encoding="utf-8")
    # This file's own 'unreadable' voice has a clip that is not audio: a reload is refused for it too.
    reply = client.call("tts/reload_voices")
    assert not reply.success and "voice 'unreadable'" in reply.message and "kept the previous voices" in reply.message
    assert "good" in client.call("tts/list_voices").message


def test_playback_without_an_audio_device_warns_and_topics_continue(tmp_path):
    node = RunningNode(tmp_path, "playback", engine="espeak", playback=True, playback_device="no-such-device")
    try:
        node.client.say("Can anybody hear me?")
        finished = end_of(node.client, "Can anybody hear me?")
        assert finished["event"] == "finished" and node.client.wait_audio(finished["id"])
        node.client.wait_for(lambda: node.client.diagnostic_values().get("playback") == "failed", 5, "diagnostics")
        assert "audio playback disabled" in node.log_text()
    finally:
        node.close()


def publish_held_back(publisher, message, attempts: int = 600) -> None:
    """Publish, waiting while DDS holds the publisher back (a keep-all reader that is full makes the write time
    out instead of dropping): the message is sent, or the test fails saying so."""
    for _ in range(attempts):
        try:
            publisher.publish(message)
            return
        except Exception:  # rclpy's RCLError for a write that timed out
            time.sleep(0.05)
    pytest.fail("DDS held the publisher back for 30 s")


def counters(client) -> dict[str, int]:
    values = client.diagnostic_values()
    return {key: int(values[key]) for key in ("texts_received", "finished", "failures", "cancelled")}


def settled(snapshot: dict[str, int]) -> dict[str, int] | None:
    """The snapshot if every text the node received has ended (finished, failed or cancelled), else None."""
    ended = snapshot["finished"] + snapshot["failures"] + snapshot["cancelled"]
    return snapshot if ended == snapshot["texts_received"] else None


def test_flood_of_10000_texts_every_message_accounted_for(faulty):
    """Keep-all reliable text topic: DDS holds the publisher back instead of dropping; every message the node
    receives ends in exactly one terminal event (counted in its diagnostics), and none is lost on the way."""
    client = faulty.client
    client.say("Before the flood.")
    publisher = client.publishers["tts/text"]
    for i in range(10_000):
        publish_held_back(publisher, String(data=f"Flood message {i}."))
        client.texts_sent += 1
    progress = {}

    def flood_settled():
        """Every text this client ever sent to the node (all its texts come from here) received and ended."""
        now = counters(client)
        progress.update(now, sent=client.texts_sent)
        return now["texts_received"] == client.texts_sent and settled(now) is not None

    try:
        client.wait_for(flood_settled, 300, "10,000 texts received and ended")
    except TimeoutError:
        pytest.fail(f"after 300 s: {progress}; node log: {faulty.log_text()[-2000:]}")
    # Thousands refused with "queue full": a few lines with counts, not one line each.
    refusals = faulty.log_text().count("queue full")
    assert 0 < refusals < 100, refusals


def test_audio_is_bounded_by_max_audio_seconds_not_by_text_length(faulty):
    client = faulty.client
    assert all(r.successful for r in client.set_parameters(max_audio_seconds=6.0))
    try:
        text = "This sentence is spoken again and again. " * 12
        client.say(text)
        end = end_of(client, text)
        assert end["event"] == "failed" and "stopped at the audio limit of 6 s" in end["error"]
        spoken = sum(len(c.samples) / c.sample_rate for c in client.wait_audio(end["id"], complete=False))
        assert 0 < spoken <= 6.0  # the chunks before the limit were spoken, none past it
    finally:
        assert all(r.successful for r in client.set_parameters(max_audio_seconds=300.0))


def test_two_nodes_with_one_name_the_later_one_stops_serving_and_each_text_is_spoken_once(tmp_path):
    """Both nodes took every text (two utterances for one message); now the one started later yields the name."""
    first = RunningNode(tmp_path, "twin", engine="espeak", warmup=False)
    try:
        (tmp_path / "second").mkdir()
        second = RunningNode(tmp_path / "second", "twin", engine="espeak", warmup=False)
        try:
            client = first.client
            client.wait_for(lambda: "stopped serving" in second.log_text(), 30, "the later node yielding")
            client.wait_for(
                lambda: any("keeps serving" in d.status[0].message for d in client.diagnostics), 30, "the report"
            )
            client.say("Spoken once.")
            assert end_of(client, "Spoken once.")["event"] == "finished"
            time.sleep(1.0)  # a second utterance, if there were one, would be well under way by now
            assert sum(e["event"] == "queued" and e["text"] == "Spoken once." for e in list(client.events)) == 1
            assert "stopped serving" not in first.log_text()
        finally:
            second.close()
    finally:
        first.close()


def test_wyoming_that_cannot_listen_is_reported_and_ros_speech_goes_on(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        node = RunningNode(
            tmp_path, "wyoming_taken", engine="espeak", warmup=False, use_wyoming=True,
            wyoming_uri=f"tcp://127.0.0.1:{port}",
        )  # fmt: skip
        try:
            client = node.client
            client.wait_for(lambda: "cannot listen" in client.diagnostics[-1].status[0].message, 30, "the bind error")
            assert client.diagnostics[-1].status[0].level == b"\x02"
            client.say("Still speaking on ROS.")
            assert end_of(client, "Still speaking on ROS.")["event"] == "finished"
        finally:
            node.close()


ordered = node_fixture("ordered", engine="espeak", queue_size=1000, warmup=False)


def test_a_burst_of_300_texts_is_queued_in_publish_order(ordered):
    """The text subscriptions ran in a reentrant callback group: two callbacks of one topic at once, 13 of 300
    texts queued out of order (with ``interrupt``, an older text could cancel the newer one)."""
    client = ordered.client
    texts = [f"Ordered text number {i}." for i in range(300)]
    wanted = set(texts)
    for text in texts:
        client.say(text)

    def queued_texts() -> list[str] | None:
        found = [e["text"] for e in list(client.events) if e["event"] == "queued" and e["text"] in wanted]
        return found if len(found) == len(texts) else None

    try:
        assert client.wait_for(queued_texts, 120, "300 queued events") == texts
    finally:
        client.call("tts/stop")


def test_a_goal_cancelled_right_after_its_accept_ends_canceled(ordered):
    """A cancel sent the moment a goal is accepted (before the node has queued it) is a cancel done: every accepted
    cancel ends its goal canceled, never succeeded (1 of 30 was spoken in full)."""
    client = ordered.client
    outcomes = []
    for i in range(30):
        goal = client.send_goal(f"Cancel me at once, number {i}. " * 3)
        accepted = goal.cancel()
        status, result = goal.result(60)
        outcomes.append((accepted, status))
        if accepted:
            assert (status, result.success) == ("canceled", False), (i, status, result.reason)
    assert any(accepted for accepted, _ in outcomes)


def test_a_launch_voice_missing_from_the_voices_file_falls_back_to_the_default_and_speaks(tmp_path):
    node = RunningNode(tmp_path, "badvoice", engine="espeak", warmup=False, voice="nobody")
    try:
        client = node.client
        assert client.get_parameters("voice")["voice"] == "nature"  # the voices file's default, set on the node
        client.say("Hello with the default voice.")
        end = end_of(client, "Hello with the default voice.")
        assert end["event"] == "finished" and end["voice"] == "nature"
        assert "voice 'nobody' is not in" in node.log_text()
    finally:
        node.close()


def test_bad_launch_values_are_refused_at_start_and_the_node_speaks_with_the_defaults(tmp_path):
    """Every kind of bad value a launch file can pass to a parameter the node reads at start: out of range, of
    the wrong type, an invalid topic name, an unknown voice. Each is refused with an error naming it."""
    node = RunningNode(
        tmp_path, "badlaunch", engine="espeak", warmup=False, queue_size=0, speed=9.0, volume=9.0,
        max_text_length="long", text_topics=["not a topic!", "robot/alerts"], voice="nobody",
    )  # fmt: skip
    try:
        client = node.client
        values = client.get_parameters("queue_size", "speed", "volume", "max_text_length", "voice")
        assert values == {"queue_size": 16, "speed": 1.0, "volume": 1.0, "max_text_length": 2000, "voice": "nature"}
        log = node.log_text()
        for name in ("queue_size", "speed", "volume", "max_text_length"):
            assert f"launch value of {name} refused" in log, name
        assert "text_topics entry 'not a topic!' refused" in log
        client.say("Spoken with the defaults.")
        assert end_of(client, "Spoken with the defaults.")["event"] == "finished"
        client.say("An alert.", topic="robot/alerts")
        assert end_of(client, "An alert.")["event"] == "finished"
    finally:
        node.close()
