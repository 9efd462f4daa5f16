"""tts_node as robots use it: a real subprocess, real rclpy and Fast DDS, a tiny random-init F5 model on the CPU."""

from __future__ import annotations

import json
import signal

import pytest
from support.ros import TINY_NODE, RunningNode, node_fixture

from ishowtts_ros.ros.client import TtsClient, start_node, stop_node

pytestmark = [pytest.mark.ros, pytest.mark.slow]

PARAGRAPH = (
    "Good morning. I am the robot at the front desk, and I will take you to the meeting room upstairs. "
    "Please follow me to the elevator."
)
LONG = " ".join(f"This is sentence number {i} of a very long announcement that goes on." for i in range(25))

tiny = node_fixture("tiny", **TINY_NODE)


def events_for(client, utterance_id):
    return [e["event"] for e in client.events_of(utterance_id=utterance_id)]


def test_text_in_ordered_chunks_events_rtf_speaking_and_diagnostics(tiny):
    client = tiny.client
    client.say(PARAGRAPH)
    finished = client.wait_event("finished", 60)
    uid = finished["id"]
    assert events_for(client, uid) == ["queued", "started", "first_audio", "finished"]
    chunks = client.wait_audio(uid)
    assert [c.index for c in chunks] == list(range(len(chunks))) and len(chunks) >= 2
    assert all(c.sample_rate == 24000 and len(c.samples) > 0 for c in chunks)
    first_audio = client.events_of("first_audio", uid)[0]
    # Streamed: the first audio was out before the utterance finished (one topic, so in order; audio and events
    # are two topics, whose relative arrival DDS does not order).
    assert first_audio["received_at"] <= finished["received_at"]
    assert finished["audio_seconds"] == pytest.approx(sum(len(c.samples) for c in chunks) / 24000, abs=1e-3)
    assert finished["rtf"] > 0 and finished["voice"] == "nature" and finished["nfe"] == 4
    assert finished["options"]["nfe_step"] == 4 and finished["options"]["seed"] == 3  # every option of the request
    client.wait_for(lambda: client.rtf, 5, "rtf")
    assert client.rtf[-1] == pytest.approx(finished["rtf"], rel=1e-3)
    client.wait_for(lambda: client.speaking and client.speaking[-1] is False and True in client.speaking, 5, "speaking")
    client.wait_for(lambda: client.diagnostics and int(client.diagnostic_values()["finished"]) >= 1, 5, "diagnostics")
    values = client.diagnostic_values()
    assert client.diagnostics[-1].status[0].level == b"\x00"
    for key in ("engine", "device", "precision", "voice", "nfe_step", "last_rtf", "mean_rtf", "ttfa_p50_ms",
                "ttfa_p95_ms", "utterances", "failures", "queue_depth", "gpu_memory_mib"):  # fmt: skip
        assert key in values, key


def test_live_parameters_apply_to_the_next_utterance(tiny):
    client = tiny.client
    results = client.set_parameters(nfe_step=3, voice="nature_zh")
    assert all(r.successful for r in results), results
    client.say("This one uses the new settings.")
    finished = client.wait_event("finished", 60, text="This one uses the new settings.")
    assert finished["nfe"] == 3 and finished["voice"] == "nature_zh"
    assert all(r.successful for r in client.set_parameters(nfe_step=4, voice=""))


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"nfe_step": 1}, "out of range"),
        ({"nfe_step": 65}, "out of range"),
        ({"speed": 9.0}, "out of range"),
        ({"voice": "nobody"}, "unknown voice 'nobody'; available: nature, nature_zh"),
        ({"engine": "espeak"}, "read-only"),
        ({"nfe_step": "eight"}, "type"),
    ],
)
def test_bad_parameter_values_are_refused_with_a_reason(tiny, values, reason):
    results = tiny.client.set_parameters(**values)
    assert not results[0].successful
    assert reason in results[0].reason
    assert tiny.client.get_parameters("nfe_step")["nfe_step"] == 4


def test_stop_cancels_mid_utterance_and_clears_the_queue(tiny):
    client = tiny.client
    client.say(LONG)
    client.say("Queued behind the long one.")
    started = client.wait_event("first_audio", 60, text=LONG[:79] + "\u2026")
    reply = client.call("tts/stop")
    assert reply.success and "cancelled 2" in reply.message
    cancelled = client.wait_event("cancelled", 10, id=started["id"])
    client.wait_event("cancelled", 10, text="Queued behind the long one.")
    assert "finished" not in events_for(client, started["id"])
    pieces = LONG.count(".")
    assert len(client.audio_of(started["id"])) < pieces, cancelled
    client.say("After the stop, speech works again.")
    client.wait_event("finished", 60, text="After the stop, speech works again.")


def test_bad_text_gets_a_failed_event_and_the_next_one_works(tiny):
    client = tiny.client
    client.say("   \n\t ")
    assert "text is empty" in client.wait_event("failed", 10, text="   \n\t ")["error"]
    huge = "word " * 1000
    client.set_parameters(max_text_length=100)
    client.say(huge)
    failed = client.wait_for(lambda: [e for e in client.events_of("failed") if "max_text_length" in e["error"]], 10)
    assert "5000 characters; max_text_length is 100" in failed[0]["error"]
    client.set_parameters(max_text_length=2000)
    client.say("Good text still works.")
    client.wait_event("finished", 60, text="Good text still works.")


def test_numbers_and_units_are_spoken_as_words_and_the_queued_event_says_so(tiny):
    client = tiny.client
    text = "Battery at 12%, obstacle in 1.5 m."
    client.say(text)
    queued = client.wait_event("queued", 60, text=text)
    assert queued["spoken"] == "Battery at twelve percent, obstacle in one point five meters."
    assert client.wait_event("finished", 120, id=queued["id"])["text"] == text  # events keep the text as sent
    assert all(r.successful for r in client.set_parameters(normalize_text=False))
    try:
        client.say("Room 12.")
        assert client.wait_event("queued", 60, text="Room 12.")["spoken"] == "Room 12."
    finally:
        assert all(r.successful for r in client.set_parameters(normalize_text=True))


def test_services_list_and_reload_voices(tiny):
    voices = json.loads(tiny.client.call("tts/list_voices").message)
    assert {v["name"] for v in voices} == {"nature", "nature_zh"}
    assert [v["name"] for v in voices if v["default"]] == ["nature"]
    reply = tiny.client.call("tts/reload_voices")
    assert reply.success and "2 voices" in reply.message


queued = node_fixture("queued", **{**TINY_NODE, "queue_size": 2, "text_topics": ["alerts=nature_zh"]})


def test_queue_overflow_is_reported_and_counts_add_up(queued):
    client = queued.client
    texts = [f"Request number {i} in a burst." for i in range(8)]
    for text in texts:
        client.say(text)

    def ended():
        done = [e for e in client.events if e["event"] in ("finished", "failed", "cancelled") and e["text"] in texts]
        return done if len(done) == len(texts) else None

    done = client.wait_for(ended, 120, "every request to end")
    overflow = [e for e in done if e["event"] == "failed"]
    assert overflow and all("queue full (2 waiting)" in e["error"] for e in overflow)
    assert len({e["text"] for e in done}) == len(texts)


def test_text_topics_route_to_their_voice(queued):
    queued.client.say("Attention please.", topic="alerts")
    finished = queued.client.wait_event("finished", 60, text="Attention please.")
    assert finished["voice"] == "nature_zh" and finished["source"] == "alerts"


def test_engine_that_fails_to_load_is_reported_not_fatal(tmp_path):
    node = RunningNode(tmp_path, "broken", engine="f5", checkpoint="/nonexistent/model.safetensors", device="cpu")
    try:
        client = node.client
        client.wait_for(lambda: client.diagnostics, 10, "diagnostics")
        status = client.diagnostics[-1].status[0]
        assert status.level == b"\x02" and "does not exist" in status.message
        client.say("Hello?")
        assert "engine failed to load" in client.wait_event("failed", 10)["error"]
    finally:
        assert node.close() < 10  # ~1 s idle; headroom for a loaded 2-core machine


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_mid_utterance_exits_cleanly_and_promptly(tmp_path, sig):
    node = RunningNode(tmp_path, f"sig{int(sig)}", **TINY_NODE)
    node.client.say(LONG)
    node.client.wait_event("first_audio", 60)
    node.client.close()
    took = stop_node(node.process, sig)
    assert node.process.returncode == 0, node.log_text()
    assert took < 10  # ~1 s idle (the node waits at most one chunk); headroom for a loaded 2-core machine
    assert "shut down in" in node.log_text()


def test_node_answers_while_loading_queues_text_and_speaks_it_once_ready(tmp_path):
    """Parameters, services and diagnostics work from the start; text sent while the engine loads is spoken after."""
    gate = tmp_path / "load"  # the engine finishes loading once this exists
    process = start_node(
        {"engine": "slowload"}, str(tmp_path / "slow.log"), {"ISHOWTTS_TEST_LOAD_GATE": str(gate)}, "/slow"
    )
    client = TtsClient(namespace="/slow")
    try:
        client.wait_for(lambda: client.diagnostic_values().get("state") == "loading", 30, "loading diagnostics")
        status = client.diagnostics[-1].status[0]
        assert status.level == b"\x00" and "loading engine slowload" in status.message
        assert client.get_parameters("speed")["speed"] == 1.0  # the engine's options are parameters at once
        assert "still loading" in client.call("tts/list_voices").message
        sent = "Spoken once the engine is ready."
        client.say(sent)
        client.wait_event("queued", 30, text=sent)
        assert client.diagnostic_values().get("state") == "loading"
        gate.touch()
        client.wait_event("finished", 120, text=sent)
        assert client.wait_ready(timeout=30) == "ready"
    finally:
        client.close()
        stop_node(process)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_while_loading_exits_promptly_and_reports_not_speaking(tmp_path, sig):
    process = start_node(
        {"engine": "slowload"}, str(tmp_path / "load.log"), {"ISHOWTTS_TEST_LOAD_SECONDS": "60"}, f"/load{int(sig)}"
    )
    client = TtsClient(namespace=f"/load{int(sig)}")
    try:
        client.wait_for(lambda: client.diagnostic_values().get("state") == "loading", 30, "loading diagnostics")
    finally:
        client.close()
    took = stop_node(process, sig, timeout=20)
    assert process.returncode == 0, (tmp_path / "load.log").read_text()
    assert took < 10  # 2 s on an idle machine; the bound only proves the 60 s load did not have to finish
