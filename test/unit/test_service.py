"""The speech service in-process (no DDS): queue order, refusals, stop, interrupt, failures and statistics, with an
engine whose audio the test releases piece by piece."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from support.engines import GatedEngine

from ishowtts_ros.core.engine import AudioChunk
from ishowtts_ros.core.playback import AudioPlayer
from ishowtts_ros.core.service import SpeechService, Utterance

TERMINAL = {"finished", "failed", "cancelled"}
WAIT = 30.0  # generous: the bound only guards against a hang, the assertions are about order and counts


class Recorder:
    """Collects what the service reports, and waits for it."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []
        self.chunks: list[tuple[str, AudioChunk]] = []
        self.speaking: list[bool] = []
        self._changed = threading.Condition()

    def on_event(self, name: str, payload: dict) -> None:
        with self._changed:
            self.events.append((name, payload))
            self._changed.notify_all()

    def on_chunk(self, utterance: Utterance, chunk: AudioChunk) -> None:
        self.chunks.append((utterance.id, chunk))

    def on_speaking(self, speaking: bool) -> None:
        with self._changed:
            self.speaking.append(speaking)
            self._changed.notify_all()

    def names(self, utterance: Utterance) -> list[str]:
        return [name for name, payload in self.events if payload["id"] == utterance.id]

    def wait_terminal(self, *utterances: Utterance) -> None:
        def done() -> bool:
            return all(TERMINAL & set(self.names(u)) for u in utterances)

        with self._changed:
            assert self._changed.wait_for(done, WAIT), self.events

    def wait_idle(self) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: self.speaking and self.speaking[-1] is False, WAIT), self.speaking


@pytest.fixture
def gated() -> GatedEngine:
    return GatedEngine(hold=True)


def start_service(
    engine: GatedEngine | None, queue_size: int = 2, engine_error: str = "", recorder: Recorder | None = None, **hooks
):
    """A service reporting to a recorder; ``hooks`` replace its callbacks or add a ``player``."""
    recorder = recorder or Recorder()
    callbacks = {"on_event": recorder.on_event, "on_chunk": recorder.on_chunk, "on_speaking": recorder.on_speaking}
    speech = SpeechService(engine, queue_size=queue_size, engine_error=engine_error, **{**callbacks, **hooks})
    return speech, recorder


@pytest.fixture
def service(gated: GatedEngine) -> Iterator[tuple[SpeechService, Recorder]]:
    speech, recorder = start_service(gated)
    yield speech, recorder
    speech.close()


def utterance(text: str) -> Utterance:
    return Utterance(text=text, voice="", options={})


def release_all(engine: GatedEngine, pieces: int) -> None:
    for _ in range(pieces):
        engine.release.release()


def test_requests_are_spoken_in_order_with_one_event_sequence_each(service, gated):
    speech, recorder = service
    first, second = utterance("One. Two."), utterance("Three.")
    assert speech.submit(first) and speech.submit(second)
    release_all(gated, 3)
    recorder.wait_terminal(first, second)
    assert recorder.names(first) == ["queued", "started", "first_audio", "finished"]
    assert recorder.names(second) == ["queued", "started", "first_audio", "finished"]
    assert [uid for uid, _ in recorder.chunks] == [first.id, first.id, second.id]
    assert [c.is_last for _, c in recorder.chunks] == [False, True, True]
    recorder.wait_idle()
    assert recorder.speaking == [True, False]
    stats = speech.stats.summary()
    assert (stats["utterances"], stats["finished"], stats["failures"], stats["cancelled"]) == (2, 2, 0, 0)
    assert stats["last_rtf"] > 0


def test_a_full_queue_refuses_with_a_failed_event(service, gated):
    speech, recorder = service
    speaking = utterance("Held.")
    assert speech.submit(speaking)
    assert gated.pieces_started.acquire(timeout=WAIT)  # the first one left the queue and is being spoken
    waiting = [utterance("A."), utterance("B.")]
    assert all(speech.submit(u) for u in waiting)
    refused = utterance("C.")
    assert not speech.submit(refused)
    assert recorder.names(refused) == ["failed"]
    assert "queue full (2 waiting)" in dict(recorder.events)["failed"]["error"]
    release_all(gated, 3)
    recorder.wait_terminal(speaking, *waiting)
    assert speech.stats.failures == 1 and speech.stats.finished == 3


def test_stop_cancels_the_current_utterance_and_the_queue(service, gated):
    speech, recorder = service
    speaking, queued = utterance("One. Two. Three."), utterance("Queued.")
    speech.submit(speaking)
    speech.submit(queued)
    assert gated.pieces_started.acquire(timeout=WAIT)
    assert speech.stop() == 2
    recorder.wait_terminal(speaking, queued)
    assert recorder.names(speaking)[-1] == "cancelled" and recorder.names(queued) == ["queued", "cancelled"]
    recorder.wait_idle()
    after = utterance("Again.")
    speech.submit(after)
    release_all(gated, 1)
    recorder.wait_terminal(after)
    assert recorder.names(after)[-1] == "finished"


def test_interrupt_replaces_what_is_spoken_and_queued(service, gated):
    speech, recorder = service
    old, queued, urgent = utterance("Old news."), utterance("Also old."), utterance("Urgent!")
    speech.submit(old)
    speech.submit(queued)
    assert gated.pieces_started.acquire(timeout=WAIT)
    assert speech.submit(urgent, interrupt=True)
    release_all(gated, 2)
    recorder.wait_terminal(old, queued, urgent)
    assert recorder.names(old)[-1] == "cancelled" and recorder.names(queued)[-1] == "cancelled"
    assert recorder.names(urgent)[-1] == "finished"
    assert {uid for uid, _ in recorder.chunks} <= {old.id, urgent.id}


def test_an_engine_fault_fails_that_request_and_the_next_is_spoken():
    speech, recorder = start_service(GatedEngine(), queue_size=4)
    try:
        broken, fine = utterance("FAULT here."), utterance("Fine.")
        speech.submit(broken)
        speech.submit(fine)
        recorder.wait_terminal(broken, fine)
        failed = [p for n, p in recorder.events if n == "failed"]
        assert len(failed) == 1 and "injected engine fault" in failed[0]["error"]
        assert recorder.names(fine)[-1] == "finished"
        assert speech.stats.failures == 1 and "injected engine fault" in speech.stats.last_error
    finally:
        speech.close()


def test_closing_while_speaking_cancels_and_reports_not_speaking(service, gated):
    speech, recorder = service
    speaking = utterance("Never finished.")
    speech.submit(speaking)
    assert gated.pieces_started.acquire(timeout=WAIT)
    speech.close()
    recorder.wait_terminal(speaking)
    assert recorder.names(speaking)[-1] == "cancelled"
    assert recorder.speaking[-1] is False
    late = utterance("Too late.")
    assert not speech.submit(late)
    assert "shutting down" in next(p for _, p in recorder.events if p["id"] == late.id)["error"]


def test_without_an_engine_every_request_fails_with_the_load_error():
    speech, recorder = start_service(None, engine_error="checkpoint missing")
    try:
        request = utterance("Hello?")
        assert not speech.submit(request)
        assert recorder.names(request) == ["failed"]
        assert "engine failed to load: checkpoint missing" in recorder.events[0][1]["error"]
    finally:
        speech.close()


class RecordingStream:
    """An output stream that takes every block (this machine has no sound card), counting the samples played."""

    def __init__(self) -> None:
        self.written = 0

    def write(self, block) -> None:
        self.written += len(block)

    def abort(self) -> None:
        pass

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def close(self) -> None:
        pass


class StopBeforePlay(AudioPlayer):
    """A player on which a stop lands at the worst moment: after the speech thread's last cancel check, just
    before the chunk is written (forcing the window a stop from tts/stop or an interrupt can fall into)."""

    def __init__(self, stop) -> None:
        super().__init__()
        self._stream, self._rate = RecordingStream(), 8000
        self.stop = stop

    def play(self, samples, sample_rate: int) -> bool:
        self.stop()
        return super().play(samples, sample_rate)


def test_a_stop_just_before_a_chunk_plays_silences_it(gated):
    """The player once cleared its abort flag when a chunk began, so such a stop was forgotten and the whole chunk
    (seconds of F5 audio) played."""
    recorder = Recorder()
    holder: dict = {}
    player = StopBeforePlay(lambda: holder["speech"].stop())
    speech, _ = start_service(gated, recorder=recorder, player=player)
    holder["speech"] = speech
    try:
        request = utterance("One. Two.")
        speech.submit(request)
        release_all(gated, 2)
        recorder.wait_terminal(request)
        assert recorder.names(request)[-1] == "cancelled"
        assert player._stream.written == 0, "a chunk played after the stop"
        player.stop = lambda: None  # the next utterance plays again
        after = utterance("Three.")
        speech.submit(after)
        release_all(gated, 1)
        recorder.wait_terminal(after)
        assert recorder.names(after)[-1] == "finished" and player._stream.written == 800
    finally:
        speech.close()


def test_queued_is_always_announced_before_started(gated):
    """Forced interleaving: the ``queued`` listener is still busy (a slow publish) when the speech thread takes the
    request. ``started`` used to go out first, so a goal's feedback went SPEAKING -> QUEUED."""
    recorder = Recorder()
    holder: dict = {}

    def on_event(name: str, payload: dict) -> None:
        if name == "queued":
            speech = holder["speech"]
            deadline = time.monotonic() + WAIT
            while not speech.busy and time.monotonic() < deadline:  # the speech thread has taken the request
                time.sleep(0.005)
            time.sleep(0.2)  # time for a ``started`` to overtake us, if it could
        recorder.on_event(name, payload)

    speech, _ = start_service(gated, recorder=recorder, on_event=on_event)
    holder["speech"] = speech
    try:
        request = utterance("One.")
        speech.submit(request)
        release_all(gated, 1)
        recorder.wait_terminal(request)
        assert recorder.names(request) == ["queued", "started", "first_audio", "finished"]
    finally:
        speech.close()


class CountingPlayer(AudioPlayer):
    """A player on this machine's missing sound card: counts the samples it would have played."""

    def __init__(self) -> None:
        super().__init__()
        self._stream, self._rate = RecordingStream(), 8000


@pytest.mark.parametrize("how", ["stop", "interrupt"])
def test_a_stop_or_interrupt_during_a_chunks_publish_keeps_it_from_playing(gated, how):
    """The window between a chunk's publish (``on_chunk``: a DDS publish can take milliseconds) and its playback."""
    recorder = Recorder()
    player = CountingPlayer()
    holder: dict = {}
    urgent = utterance("Urgent.")

    def on_chunk(request: Utterance, chunk: AudioChunk) -> None:
        recorder.on_chunk(request, chunk)
        if request.id == holder["first"].id and len(recorder.chunks) == 1:
            holder["speech"].stop() if how == "stop" else holder["speech"].submit(urgent, interrupt=True)

    speech, _ = start_service(gated, recorder=recorder, on_chunk=on_chunk, player=player)
    holder["speech"], holder["first"] = speech, utterance("One. Two.")
    try:
        speech.submit(holder["first"])
        release_all(gated, 3)
        recorder.wait_terminal(holder["first"], *([urgent] if how == "interrupt" else []))
        assert recorder.names(holder["first"])[-1] == "cancelled"
        played_by_urgent = 800 if how == "interrupt" else 0
        assert player._stream.written == played_by_urgent, "the first utterance's chunk played after the stop"
    finally:
        speech.close()
