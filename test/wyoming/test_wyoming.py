"""The Wyoming server as Home Assistant uses it: a real server process on loopback, the real wyoming client."""

from __future__ import annotations

import asyncio
import socket
import struct
import time
import uuid

import numpy as np
import pytest
from support.engines import TINY_CHECKPOINT
from support.net import free_port, start_wyoming_server
from wyoming.audio import AudioChunk, AudioStart
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event, async_read_event, async_write_event, write_event
from wyoming.info import Describe, Info
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeStopped, SynthesizeVoice

pytestmark = pytest.mark.slow
TEXT = "Hello from Home Assistant. The front door is open and the kitchen lights are still on."


@pytest.fixture(scope="module")
def f5_server(tmp_path_factory):
    process, port, log = start_wyoming_server(
        tmp_path_factory.mktemp("wyoming"), "--engine", "f5", "--checkpoint", TINY_CHECKPOINT, "--device", "cpu",
        "--nfe", "4", "--seed", "5",
    )  # fmt: skip
    yield port
    process.terminate()
    process.wait(10)
    log.close()


async def exchange(port: int, events, until=("audio-stop", "error", "info"), timeout: float = 60.0):
    """Send events; collect replies until one of ``until`` types (or synthesize-stopped) arrives."""
    received = []
    async with AsyncTcpClient("127.0.0.1", port) as client:
        for event in events:
            await client.write_event(event.event())
        while True:
            event = await asyncio.wait_for(client.read_event(), timeout)
            if event is None:
                break
            received.append(event)
            if event.type in until:
                break
    return received


def run(coro):
    return asyncio.run(coro)


def audio_of(events) -> tuple[np.ndarray, int]:
    chunks = [AudioChunk.from_event(e) for e in events if AudioChunk.is_type(e.type)]
    rates = {c.rate for c in chunks}
    assert len(rates) == 1 and all(c.width == 2 and c.channels == 1 for c in chunks)
    return np.frombuffer(b"".join(c.audio for c in chunks), dtype="<i2"), rates.pop()


def test_describe_lists_every_voice(f5_server):
    events = run(exchange(f5_server, [Describe()]))
    info = Info.from_event(events[-1])
    program = info.tts[0]
    assert program.name == "ishowtts" and program.installed and program.supports_synthesize_streaming
    assert {(v.name, tuple(v.languages)) for v in program.voices} == {("nature", ("en",)), ("nature_zh", ("zh",))}
    assert program.attribution.name and program.version


def test_one_shot_synthesis_event_order_and_format(f5_server):
    events = run(exchange(f5_server, [Synthesize(text=TEXT, voice=SynthesizeVoice(name="nature"))]))
    types = [e.type for e in events]
    assert types[0] == "audio-start" and types[-1] == "audio-stop"
    assert set(types[1:-1]) == {"audio-chunk"} and len(types) >= 4
    start = AudioStart.from_event(events[0])
    samples, rate = audio_of(events)
    assert (start.rate, start.width, start.channels) == (24000, 2, 1) and rate == 24000
    assert len(samples) / rate > 1.0


def test_voice_chosen_by_language(f5_server):
    events = run(exchange(f5_server, [Synthesize(text="你好。", voice=SynthesizeVoice(language="zh-CN"))]))
    assert events[-1].type == "audio-stop"


def test_streaming_speaks_sentence_by_sentence_and_ignores_the_compat_synthesize(f5_server):
    parts = ["Hello from Home ", "Assistant. The front door is open ", "and the kitchen lights are still on."]
    events = run(
        exchange(
            f5_server,
            [
                SynthesizeStart(voice=SynthesizeVoice(name="nature")),
                *[SynthesizeChunk(text=part) for part in parts],
                Synthesize(text="".join(parts)),
                SynthesizeStop(),
            ],
            until=("synthesize-stopped", "error"),
        )
    )
    types = [e.type for e in events]
    assert types[0] == "audio-start" and types[-2:] == ["audio-stop", "synthesize-stopped"]
    assert types.count("audio-start") == 1 and types.count("audio-stop") == 1
    streamed, _ = audio_of(events)
    one_shot, _ = audio_of(run(exchange(f5_server, [Synthesize(text=TEXT)])))
    assert 0.8 < len(streamed) / len(one_shot) < 1.25  # spoken once, not twice


def test_two_clients_at_once_get_their_own_audio(f5_server):
    texts = ["The first client asks for this sentence.", "A second client, at the same time, wants another one."]
    alone = [audio_of(run(exchange(f5_server, [Synthesize(text=t)])))[0] for t in texts]

    async def together():
        return await asyncio.gather(*(exchange(f5_server, [Synthesize(text=t)]) for t in texts))

    for events, expected in zip(run(together()), alone, strict=True):
        got, _ = audio_of(events)
        assert got.shape == expected.shape
        assert np.abs(got.astype(int) - expected.astype(int)).max() <= 2


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ([Synthesize(text="Hi.", voice=SynthesizeVoice(name="robbie"))], "unknown voice 'robbie'"),
        ([Synthesize(text="   ")], "text is empty"),
        ([Synthesize(text="Hi.", voice=SynthesizeVoice(language="tlh"))], "no voice speaks language 'tlh'"),
        ([SynthesizeChunk(text="orphan")], "without synthesize-start"),
        ([Synthesize(text="Hi.", voice=SynthesizeVoice(language=["en"]))], "malformed synthesize event"),
    ],
)
def test_bad_requests_get_an_error_event(f5_server, events, message):
    replies = run(exchange(f5_server, events))
    assert replies[-1].type == "error" and message in Error.from_event(replies[-1]).text


def test_a_refused_stream_gets_one_error_its_remaining_events_are_ignored_and_its_stop_is_answered(f5_server):
    events = run(
        exchange(
            f5_server,
            [
                SynthesizeStart(voice=SynthesizeVoice(name="robbie")),
                SynthesizeChunk(text="Hello there. "),
                Synthesize(text="Hello there. "),
                SynthesizeStop(),
                Describe(),
            ],
            until=("info",),
        )
    )
    assert [e.type for e in events] == ["error", "synthesize-stopped", "info"]
    assert "unknown voice 'robbie'" in Error.from_event(events[0]).text


def test_a_half_closed_client_still_gets_its_audio(f5_server):
    """A client that sends its request and closes its sending side (``nc -N``) is still listening."""

    async def half_close() -> list:
        reader, writer = await asyncio.open_connection("127.0.0.1", f5_server)
        await async_write_event(Synthesize(text=" ".join([TEXT] * 2)).event(), writer)
        writer.write_eof()
        replies = []
        while (event := await asyncio.wait_for(async_read_event(reader), 120)) is not None:
            replies.append(event)
            if event.type == "audio-stop":
                break
        writer.close()
        return replies

    events = run(half_close())
    assert events and events[-1].type == "audio-stop"
    samples, _ = audio_of(events)
    assert samples.size > 0


def test_malformed_event_and_disconnect_leave_the_server_healthy(f5_server):
    async def malformed():
        reader, writer = await asyncio.open_connection("127.0.0.1", f5_server)
        writer.write(b'{"type": "synthesize", "data": {"no_text": 1}}\n')
        await writer.drain()
        header = await asyncio.wait_for(reader.readline(), 30)
        writer.write(b"this is not json\n")
        await writer.drain()
        rest = await asyncio.wait_for(reader.read(), 30)  # returns at EOF: the server closed the connection
        writer.close()
        return header, rest

    header, rest = run(malformed())
    assert b'"error"' in header and b"malformed synthesize event" in rest

    async def hang_up_mid_stream():
        async with AsyncTcpClient("127.0.0.1", f5_server) as client:
            await client.write_event(Synthesize(text=" ".join([TEXT] * 6)).event())
            await client.read_event()

    run(hang_up_mid_stream())
    assert Info.from_event(run(exchange(f5_server, [Describe()]))[-1]).tts


def test_espeak_server(tmp_path):
    process, port, log = start_wyoming_server(tmp_path, "--engine", "espeak")
    try:
        events = run(exchange(port, [Synthesize(text=TEXT)]))
        samples, rate = audio_of(events)
        assert rate == 22050 and np.abs(samples).max() > 1000
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def test_a_community_model_with_its_own_vocabulary_serves_home_assistant(tmp_path):
    """A German model (v0 layout, its vocab.txt beside the checkpoint) through the server's own flags."""
    from support.engines import save_community_model

    model = ('{"dim": 64, "depth": 2, "heads": 4, "ff_mult": 2, "text_dim": 32, "text_mask_padding": false, '
             '"conv_layers": 1, "pe_attn_head": 1}')  # fmt: skip
    checkpoint = save_community_model(tmp_path, model)
    process, port, log = start_wyoming_server(
        tmp_path, "--engine", "f5", "--checkpoint", str(checkpoint), "--model", model, "--device", "cpu",
        "--vocoder", "random", "--nfe-step", "4", "--no-warmup",
    )  # fmt: skip
    try:
        samples, rate = audio_of(run(exchange(port, [Synthesize(text="Grüße aus Köln.")])))
        assert rate == 24000 and len(samples) > rate // 5
    finally:
        process.terminate()
        process.wait(10)
        log.close()
    assert "does not fit" not in (tmp_path / f"wyoming-{port}.log").read_text()


def reset_after_synthesize(port: int, text: str) -> None:
    """A careless client: asks for speech, then drops the connection with a TCP reset before reading anything."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        with sock.makefile("wb") as stream:
            write_event(Synthesize(text=text).event(), stream)
        time.sleep(0.02)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def test_espeak_server_survives_resets_and_a_crowd(tmp_path):
    """Clients that hang up mid-synthesis and 50 clients at once leave the voice serving (an abandoned synthesis
    once kept the engine locked for good)."""
    # The connection limit is not what this is about: room for the crowd and every reset still being cleaned up.
    process, port, log = start_wyoming_server(tmp_path, "--engine", "espeak", "--max-connections", "500")
    try:
        for i in range(100):
            reset_after_synthesize(port, f"Request {i} from a client that will not listen. It hangs up at once.")

        async def crowd() -> list[list]:
            return await asyncio.gather(*(exchange(port, [Synthesize(text=f"Client {i}.")]) for i in range(50)))

        replies = run(asyncio.wait_for(crowd(), 300))
        assert all(events[-1].type == "audio-stop" for events in replies)
        assert all(audio_of(events)[0].size > 0 for events in replies)
        samples, _ = audio_of(run(exchange(port, [Synthesize(text=TEXT)])))
        assert np.abs(samples).max() > 1000
        assert process.poll() is None
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def test_zeroconf_announces_the_server_for_home_assistant(tmp_path):
    """``--zeroconf NAME`` registers ``NAME._wyoming._tcp.local.`` with the server's port, as HA discovers it."""
    from zeroconf import Zeroconf

    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("224.0.0.251", 5353))
    except OSError as exc:
        pytest.skip(f"this machine has no multicast route for mDNS ({exc})")
    name = f"ishowtts-test-{uuid.uuid4().hex[:8]}"
    process, port, log = start_wyoming_server(tmp_path, "--engine", "espeak", "--zeroconf", name)
    zeroconf = Zeroconf()
    try:
        info = None
        deadline = time.monotonic() + 20
        while info is None and time.monotonic() < deadline:
            info = zeroconf.get_service_info("_wyoming._tcp.local.", f"{name}._wyoming._tcp.local.", timeout=2000)
        assert info is not None, f"{name} was not announced: {(tmp_path / f'wyoming-{port}.log').read_text()}"
        assert info.port == port
        assert info.parsed_addresses() == ["127.0.0.1"]  # the address the server listens on, not a guess
    finally:
        zeroconf.close()
        process.terminate()
        process.wait(10)
        log.close()


@pytest.mark.ros
def test_node_serves_wyoming_with_its_own_engine(tmp_path):
    from support.ros import TINY_NODE, RunningNode

    port = free_port()
    node = RunningNode(tmp_path, "wyoming_node", **TINY_NODE, use_wyoming=True, wyoming_uri=f"tcp://127.0.0.1:{port}")
    try:
        events = run(exchange(port, [Synthesize(text=TEXT)]))
        samples, rate = audio_of(events)
        assert rate == 24000 and len(samples) > 0
        assert "sharing this node's engine" in node.log_text()
    finally:
        node.close()


def send_raw(port: int, data: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(data)
    return sock


RESET = b"<connection reset>"


def read_reply(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a server that closes with unread bytes from us
    resets it instead, which may discard what it sent: then ``RESET``). A server that never closes times out."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        return RESET
    return received


def wait_until_served(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not served(port):
        assert time.monotonic() < deadline, "the server still turns clients away"
        time.sleep(0.1)


def speech_or_nothing(port: int, text: str) -> list:
    """A one-shot request's events if the server served it with audio, else [] (turned away as busy)."""
    try:
        events = run(exchange(port, [Synthesize(text=text)]))
    except ConnectionError:
        return []
    return events if events and events[-1].type == "audio-stop" else []


def served(port: int) -> bool:
    """Whether a Describe is answered (a busy server answers "server busy" and closes, which may reset)."""
    try:
        events = run(exchange(port, [Describe()]))
    except ConnectionError:
        return False
    return bool(events) and events[-1].type == "info"


def test_oversized_stalled_and_surplus_clients_are_refused_and_the_server_keeps_serving(tmp_path):
    process, port, log = start_wyoming_server(
        tmp_path, "--engine", "espeak", "--max-text", "100", "--max-connections", "3", "--idle-timeout", "600",
        "--read-timeout", "1",
    )  # fmt: skip
    try:
        # First, while nothing else is open: two idle clients and the third below fill the three connections, so a
        # fourth is turned away.
        idle = [send_raw(port, b"") for _ in range(2)]
        try:
            with send_raw(port, b"") as third, send_raw(port, b"") as fourth:
                assert b"server busy" in read_reply(fourth)
                third.close()
        finally:
            for sock in idle:
                sock.close()
        wait_until_served(port)  # the server has noticed the three leave
        # A header that claims 2 GB of data: refused before anything is read or buffered.
        with send_raw(port, b'{"type": "synthesize", "data_length": 2000000000}\n') as sock:
            assert b"refused (limit" in read_reply(sock)
        # A header longer than the stream limit, without a newline: refused and closed.
        with send_raw(port, b"x" * 70_000) as sock:
            reply = read_reply(sock)
            assert b"event header longer than" in reply or reply == RESET
        # Half a header, then silence: closed once the frame has not completed within the read timeout, long before
        # the idle timeout (a trickled header once held its connection slot for the whole idle timeout).
        started = time.monotonic()
        with send_raw(port, b'{"type": "synth') as sock:
            assert b"not completed within" in read_reply(sock)
        assert time.monotonic() - started < 5 * 60  # bounded, whatever the load; the read timeout is 1 s here
        # Text over the limit: a one-shot text is spoken up to the limit at a sentence end, a stream in full.
        events = run(exchange(port, [Synthesize(text="One two three. " * 12)]))
        assert events[-1].type == "audio-stop" and audio_of(events)[0].size > 0
        chunks = [SynthesizeChunk(text="word " * 15) for _ in range(4)]
        until = ("synthesize-stopped",)
        events = run(exchange(port, [SynthesizeStart(), *chunks, SynthesizeStop()], until=until))
        types = [e.type for e in events if e.type != "audio-chunk"]
        assert types == ["audio-start", "audio-stop", "synthesize-stopped"]
        samples, _ = audio_of(run(exchange(port, [Synthesize(text="Still serving.")])))
        assert samples.size > 0
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def test_audio_limit_then_a_new_request_on_the_same_connection(tmp_path):
    """A request stopped at the audio limit after its audio began ends its audio properly (Home Assistant keeps what
    came); the next request on the same connection gets its own audio-start (a stale flag once swallowed it)."""
    process, port, log = start_wyoming_server(tmp_path, "--engine", "espeak", "--max-audio-seconds", "5")
    long = "Hello. " + "This is a much longer sentence that keeps going on and on for quite a while. " * 5

    async def two_requests() -> list:
        async with AsyncTcpClient("127.0.0.1", port) as client:
            replies = []
            for text in (long, "Hello again."):
                await client.write_event(Synthesize(text=text).event())
                while True:
                    replies.append(await asyncio.wait_for(client.read_event(), 60))
                    if replies[-1] is None or replies[-1].type in ("audio-stop", "error"):
                        break
            return replies

    try:
        replies = run(two_requests())
        types = [e.type for e in replies]
        assert "error" not in types
        first_end = types.index("audio-stop")
        assert types[0] == "audio-start" and "audio-chunk" in types[:first_end]
        first_audio, rate = audio_of(replies[:first_end])
        assert 0 < len(first_audio) / rate <= 5.0
        assert types[first_end + 1] == "audio-start" and types[-1] == "audio-stop"
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def test_error_texts_name_files_without_their_paths(f5_server):
    events = run(exchange(f5_server, [Synthesize(text="Hi.", voice=SynthesizeVoice(name="robbie"))]))
    text = Error.from_event(events[-1]).text
    assert "unknown voice 'robbie'" in text and "voices.yaml" in text and "/" not in text


def test_espeak_voices_are_not_described_as_cloned_voices(tmp_path):
    process, port, log = start_wyoming_server(tmp_path, "--engine", "espeak")
    try:
        program = Info.from_event(run(exchange(port, [Describe()]))[-1]).tts[0]
        assert "espeak" in program.description and "eSpeak" in program.attribution.name
        assert all("F5" not in voice.description and "(espeak)" in voice.description for voice in program.voices)
    finally:
        process.terminate()
        process.wait(10)
        log.close()


@pytest.mark.ros
def test_ros_speech_goes_on_while_the_nodes_wyoming_side_is_abused(tmp_path):
    from support.ros import RunningNode

    port = free_port()
    node = RunningNode(
        tmp_path, "abused", engine="espeak", warmup=False, use_wyoming=True, wyoming_uri=f"tcp://127.0.0.1:{port}"
    )
    try:
        client = node.client
        client.say("Spoken on ROS while Home Assistant misbehaves.")
        for i in range(30):
            reset_after_synthesize(port, f"Abandoned request {i}. It is long enough to take a while to speak.")
        with send_raw(port, b'{"type": "synthesize", "data_length": 2000000000}\n') as sock:
            assert b"refused" in read_reply(sock)
        client.say("And after it.")
        for text in ("Spoken on ROS while Home Assistant misbehaves.", "And after it."):
            assert client.wait_event("finished", 120, text=text)
        client.wait_for(lambda: client.speaking and client.speaking[-1] is False, 60, "speaking false")
        samples, _ = audio_of(run(exchange(port, [Synthesize(text="Home Assistant again.")])))
        assert samples.size > 0
    finally:
        node.close()


@pytest.fixture(scope="module")
def espeak_server(tmp_path_factory):
    process, port, log = start_wyoming_server(
        tmp_path_factory.mktemp("wyoming-espeak"), "--engine", "espeak", "--max-audio-seconds", "60",
        "--max-connections", "4",
    )  # fmt: skip
    yield port
    process.terminate()
    process.wait(10)
    log.close()


LONG_SENTENCES = [
    f"Step {i}: the robot checks shelf {i}, reports what it found, and moves on to the next aisle." for i in range(60)
]


def test_a_long_one_shot_answer_is_spoken_to_its_end(espeak_server):
    """Home Assistant's 2,230-character message: spoken whole (it was refused whole at the old 2,000 limit)."""
    text = " ".join(LONG_SENTENCES[:26])
    assert len(text) > 2230
    events = run(exchange(espeak_server, [Synthesize(text=text)], timeout=120))
    assert events[-1].type == "audio-stop" and "error" not in [e.type for e in events]
    samples, rate = audio_of(events)
    assert len(samples) / rate > 60 * 0.5  # ~24 sentences of ~5 s each; a refusal or a cut gives far less


def test_a_long_streamed_answer_is_spoken_and_the_audio_limit_still_holds(espeak_server):
    """An LLM agent's 5,000-character streamed answer: spoken sentence by sentence until the stream's audio limit
    (60 s here), then ended properly, without an error Home Assistant would drop the audio for."""
    text = " ".join(LONG_SENTENCES)
    assert len(text) > 5000
    parts = [text[i : i + 40] for i in range(0, len(text), 40)]
    events = run(
        exchange(
            espeak_server,
            [SynthesizeStart(), *(SynthesizeChunk(text=p) for p in parts), Synthesize(text=text), SynthesizeStop()],
            until=("synthesize-stopped",),
            timeout=120,
        )
    )
    types = [e.type for e in events if e.type != "audio-chunk"]
    assert types == ["audio-start", "audio-stop", "synthesize-stopped"]
    samples, rate = audio_of(events)
    assert 40 < len(samples) / rate <= 60.0


STREAM_FAILURES = {
    # kind: (events between synthesize-start and synthesize-stop, start voice, the error expected or None)
    "unknown voice": ([SynthesizeChunk(text="Hello there. ").event()], "robbie", "unknown voice"),
    "no speakable text": ([SynthesizeChunk(text="   ").event()], None, "text is empty"),
    "malformed chunk": ([Event(type="synthesize-chunk", data={"no_text": 1})], None, "malformed"),
    "audio limit after audio began": ([SynthesizeChunk(text=" ".join(LONG_SENTENCES) + " ").event()], None, None),
}


@pytest.mark.parametrize("kind", list(STREAM_FAILURES))
def test_every_failed_stream_answers_its_stop(espeak_server, kind):
    """A client that follows the grammar and waits for synthesize-stopped gets it after every failure (it waited
    for the 60 s idle timeout before); an error only where nothing was heard."""
    middle, voice, error = STREAM_FAILURES[kind]

    async def stream() -> tuple[list, float]:
        async with AsyncTcpClient("127.0.0.1", espeak_server) as client:
            start_voice = SynthesizeVoice(name=voice) if voice else None
            for event in (SynthesizeStart(voice=start_voice).event(), *middle, Synthesize(text="x").event()):
                await client.write_event(event)
            await client.write_event(SynthesizeStop().event())
            stopped_at = time.monotonic()
            received = []
            while (event := await asyncio.wait_for(client.read_event(), 120)) is not None:
                received.append(event)
                if SynthesizeStopped.is_type(event.type):
                    return received, time.monotonic() - stopped_at
            return received, float("inf")

    events, waited = run(stream())
    types = [e.type for e in events if e.type != "audio-chunk"]
    assert types[-1] == "synthesize-stopped", types
    if error is None:
        assert types == ["audio-start", "audio-stop", "synthesize-stopped"]
    else:
        assert types == ["error", "synthesize-stopped"] and error in Error.from_event(events[0]).text
    assert waited < 45  # the idle timeout (60 s) is what the client waited before


def test_clients_that_stop_reading_are_dropped_and_others_are_served(tmp_path):
    """Two clients ask for long speech and never read (with --max-connections 2 they held both slots for as long as
    they stayed connected); after the write timeout they are dropped and a third client is served."""
    process, port, log = start_wyoming_server(
        tmp_path, "--engine", "espeak", "--max-connections", "2", "--write-timeout", "2"
    )
    text = " ".join(LONG_SENTENCES[:50])  # ~4 min of audio: far more than the sockets' buffers hold
    sockets = []
    try:
        wait_until_served(port)  # start_server's probe connection has left: both slots are free
        for _ in range(2):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", port))
            with sock.makefile("wb") as stream:
                write_event(Synthesize(text=text).event(), stream)
            sockets.append(sock)
        # Served once a non-reader is dropped (a busy server answers "server busy" and closes, which may reset).
        deadline = time.monotonic() + 240
        while not (events := speech_or_nothing(port, "Still serving.")):
            assert time.monotonic() < deadline, "the server still turns clients away"
            time.sleep(0.2)
        assert audio_of(events)[0].size > 0
        deadline = time.monotonic() + 120
        while "dropped a Wyoming client that stopped reading" not in (
            server_log := (tmp_path / f"wyoming-{port}.log").read_text()
        ):
            assert time.monotonic() < deadline, server_log
            time.sleep(0.1)
    finally:
        for sock in sockets:
            sock.close()
        process.terminate()
        process.wait(10)
        log.close()


def test_the_server_speaks_numbers_as_words(espeak_server):
    """espeak is deterministic: the audio for "12%" is the audio for "twelve percent" (the front end ran)."""
    written = audio_of(run(exchange(espeak_server, [Synthesize(text="Battery at 12%, 1.5 m to go.")])))[0]
    spoken = audio_of(
        run(exchange(espeak_server, [Synthesize(text="Battery at twelve percent, one point five meters to go.")]))
    )[0]
    assert np.array_equal(written, spoken)


def test_a_tiny_streamed_sentence_waits_for_the_next_one(tmp_path):
    """An LLM's "OK." alone would be stretched by an engine that slows short texts (F5 under 10 bytes): the server
    holds it back and speaks it with the sentence after it."""
    from support.engines import GatedEngine

    from ishowtts_ros.wyoming.server import serve_in_thread

    class Recording(GatedEngine):
        min_chunk_bytes = 10

        def __init__(self) -> None:
            super().__init__()
            self.texts: list[str] = []

        def spoken_text(self, text, voice=None, normalize=True):
            self.texts.append(text)
            return super().spoken_text(text, voice, normalize)

    engine = Recording()
    port = free_port()
    serve_in_thread(engine, f"tcp://127.0.0.1:{port}", dict)
    parts = ["OK. ", "The door is open. ", "Bye."]
    events = run(
        exchange(
            port,
            [
                SynthesizeStart(),
                *(SynthesizeChunk(text=p) for p in parts),
                Synthesize(text="".join(parts)),
                SynthesizeStop(),
            ],
            until=("synthesize-stopped",),
        )
    )
    assert events[-1].type == "synthesize-stopped"
    assert engine.texts == ["OK. The door is open.", "Bye."]
