"""One Wyoming client connection: Describe, one-shot ``synthesize`` and streaming ``synthesize-start`` /
``-chunk`` / ``-stop``; audio goes out sentence by sentence as it is synthesized, one audio format per stream."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Attribution, Describe, Info, TtsProgram, TtsVoice
from wyoming.server import AsyncEventHandler
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeStopped

from ishowtts_ros import __version__
from ishowtts_ros.core.engine import AudioChunk as EngineChunk
from ishowtts_ros.core.engine import Engine
from ishowtts_ros.core.errors import EngineError
from ishowtts_ros.core.text import EMPTY_TEXT, SENTENCE_BREAK, normalize_text
from ishowtts_ros.wyoming.limits import FrameError, Limits, RateLimitedLog, client_message, read_event

LOG = logging.getLogger(__name__)
FRAME_LOG = RateLimitedLog(LOG)
CLIENT_CHECK_SECONDS = 0.2
ATTRIBUTIONS = {
    "f5": Attribution(name="ishowtts_ros (F5-TTS by SWivid)", url="https://github.com/SWivid/F5-TTS"),
    "espeak": Attribution(name="ishowtts_ros (eSpeak NG)", url="https://github.com/espeak-ng/espeak-ng"),
}
SAMPLE_WIDTH, CHANNELS = 2, 1

OptionsProvider = Callable[[], dict[str, Any]]


def describe_engine(engine: Engine) -> Info:
    """The voices as the running engine speaks them: F5 clones each reference clip; other engines (espeak) only
    borrow the voice's name and language, so the clip's description would promise a voice they do not have."""
    attribution = ATTRIBUTIONS.get(engine.name, Attribution(name=f"ishowtts_ros ({engine.name})", url=""))
    voices = [
        TtsVoice(
            name=voice.name,
            description=(voice.description or voice.name) if engine.name == "f5" else f"{voice.name} ({engine.name})",
            attribution=attribution,
            installed=True,
            version=None,
            languages=[voice.language],
        )
        for voice in engine.voices()
    ]
    program = TtsProgram(
        name="ishowtts",
        description=f"ishowtts_ros {engine.name} text to speech",
        attribution=attribution,
        installed=True,
        version=__version__,
        voices=voices,
        supports_synthesize_streaming=True,
    )
    return Info(tts=[program])


class TtsEventHandler(AsyncEventHandler):
    """One client connection. Events are handled in order; synthesis runs in worker threads."""

    def __init__(
        self, engine: Engine, options: OptionsProvider, workers: Executor, limits: Limits, *args: Any, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.engine = engine
        self.options = options
        self.workers = workers
        self.limits = limits
        self.streaming = False
        self.stream_voice: str | None = None
        self.stream_text = ""
        self.audio_started = False
        self.stream_failed = False  # a refused stream: its remaining events are ignored, not refused again
        self.stream_chars = 0
        self.stream_spoken = False

    async def run(self) -> None:
        """Read events with :func:`read_event`'s limits until the client leaves, stalls or oversteps them."""
        try:
            while (event := await read_event(self.reader, self.limits)) is not None:
                if not await self.handle_event(event):
                    break
        except FrameError as exc:
            FRAME_LOG.warning(f"closing a Wyoming connection: {exc}")
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.write_event(Error(text=str(exc), code="FrameError").event())
        except (asyncio.TimeoutError, asyncio.IncompleteReadError):
            FRAME_LOG.warning("closing a Wyoming connection that stalled or ended inside a frame")
        except ConnectionError:
            pass
        finally:
            await self.disconnect()
            self.writer.close()

    async def handle_event(self, event: Event) -> bool:
        try:
            await self._handle(event)
        except (ConnectionError, asyncio.CancelledError):
            return False
        except (EngineError, KeyError, TypeError, ValueError, AttributeError) as exc:
            message = str(exc) if isinstance(exc, EngineError) else f"malformed {event.type} event: {exc!r}"
            LOG.warning("request refused: %s", message)
            message = client_message(message)
            self.stream_failed = self.streaming or SynthesizeStart.is_type(event.type)
            self.streaming = self.audio_started = False  # the next request starts its own audio
            try:
                await self.write_event(Error(text=message, code=type(exc).__name__).event())
            except ConnectionError:  # the client already left: nobody to tell
                return False
        return True

    async def _handle(self, event: Event) -> None:
        if Describe.is_type(event.type):
            await self.write_event(describe_engine(self.engine).event())
        elif self.stream_failed and _is_stream_event(event):
            # The rest of a refused stream (its chunks, the compatibility synthesize Home Assistant sends after
            # them, its stop) was answered by the one error already sent; the stop ends it.
            self.stream_failed = not SynthesizeStop.is_type(event.type)
        elif Synthesize.is_type(event.type):
            if not self.streaming:  # while streaming it is the compatibility copy of the same text
                request = Synthesize.from_event(event)
                self._check_length(len(request.text))
                await self._speak([request.text], self._voice(request.voice), finish=True)
        elif SynthesizeStart.is_type(event.type):
            start = SynthesizeStart.from_event(event)
            self.stream_voice = self._voice(start.voice)
            self.streaming, self.stream_text, self.audio_started = True, "", False
            self.stream_chars, self.stream_spoken = 0, False
        elif SynthesizeChunk.is_type(event.type):
            if not self.streaming:
                raise EngineError("synthesize-chunk without synthesize-start")
            scanned = len(self.stream_text)
            text = SynthesizeChunk.from_event(event).text
            self.stream_chars += len(text)
            self._check_length(self.stream_chars)
            self.stream_text += text
            complete, self.stream_text = complete_sentences(self.stream_text, scanned)
            if complete:
                self.stream_spoken = True
                await self._speak([complete], self.stream_voice, finish=False)
        elif SynthesizeStop.is_type(event.type):
            if not self.streaming:
                raise EngineError("synthesize-stop without synthesize-start")
            remainder, self.streaming = self.stream_text.strip(), False
            if not self.stream_spoken and not normalize_text(remainder):
                raise EngineError(EMPTY_TEXT)  # as for a one-shot request: no speakable text is an error
            await self._speak([remainder] if remainder else [], self.stream_voice, finish=True)
            await self.write_event(SynthesizeStopped().event())
        else:
            LOG.debug("ignoring event %s", event.type)

    def _check_length(self, chars: int) -> None:
        if chars > self.limits.max_text_chars:
            raise EngineError(f"text longer than {self.limits.max_text_chars} characters refused")

    def _voice(self, requested: Any) -> str | None:
        if requested is None:
            return None
        if requested.name:
            return self.engine.registry.get(requested.name).name  # unknown names raise with the list
        if requested.language:
            found = self.engine.registry.find_by_language(requested.language)
            if found is None:
                raise EngineError(f"no voice speaks language {requested.language!r}")
            return found.name
        return None

    async def _speak(self, texts: list[str], voice: str | None, finish: bool) -> None:
        rate = self.engine.sample_rate
        for text in texts:
            stream = ChunkStream(self.engine, text, voice, self.options(), self.limits.max_audio_seconds)
            try:
                first = await self._next_chunk(stream)  # validation errors surface here, before any audio
                if not self.audio_started:
                    await self.write_event(AudioStart(rate=rate, width=SAMPLE_WIDTH, channels=CHANNELS).event())
                    self.audio_started = True
                chunk = first
                while chunk is not None:
                    pcm = chunk.pcm16().tobytes()
                    audio = AudioChunk(rate=rate, width=SAMPLE_WIDTH, channels=CHANNELS, audio=pcm)
                    await self.write_event(audio.event())
                    chunk = await self._next_chunk(stream)
            finally:
                self.workers.submit(stream.close)  # never awaited: a client that left must not hold us up
        if finish:
            if not self.audio_started:
                await self.write_event(AudioStart(rate=rate, width=SAMPLE_WIDTH, channels=CHANNELS).event())
            await self.write_event(AudioStop().event())
            self.audio_started = False

    async def _next_chunk(self, stream: ChunkStream) -> EngineChunk | None:
        """The next chunk from a worker thread; if the client leaves meanwhile, the synthesis is cancelled at once
        rather than when its next chunk could not be delivered."""
        pending = asyncio.get_running_loop().run_in_executor(self.workers, stream.next)
        while True:
            done, _ = await asyncio.wait({pending}, timeout=CLIENT_CHECK_SECONDS)
            if done:
                return pending.result()
            if self.reader.exception() is not None or self.reader.at_eof() or self.writer.is_closing():
                stream.cancel.set()
                pending.add_done_callback(_retrieve)  # its outcome (likely "cancelled") has no one to go to
                raise ConnectionResetError("the client left during synthesis")


class ChunkStream:
    """One synthesis driven from worker threads: ``next`` and ``close`` never run at once (a generator cannot be
    closed while another thread is inside it), and ``close`` first asks the engine to stop between chunks, so a
    request whose client left frees the engine promptly."""

    def __init__(
        self, engine: Engine, text: str, voice: str | None, options: dict[str, Any], max_audio_seconds: float
    ) -> None:
        self.cancel = threading.Event()
        self._chunks = engine.synthesize(text, voice, options, cancel=self.cancel, max_audio_seconds=max_audio_seconds)
        self._lock = threading.Lock()

    def next(self) -> EngineChunk | None:
        with self._lock:
            return next(self._chunks, None)

    def close(self) -> None:
        self.cancel.set()
        with self._lock:
            self._chunks.close()


def complete_sentences(text: str, scanned: int = 0) -> tuple[str, str]:
    """Streamed text split into its complete sentences so far and the unfinished rest (a sentence is complete
    once whitespace follows its end punctuation; CJK end punctuation completes it at once). ``scanned``: how much
    of ``text`` an earlier call already found no break in, so a long stream is not rescanned on every chunk."""
    end = 0
    for match in SENTENCE_BREAK.finditer(text, max(0, scanned - 1)):
        end = match.end()
    return text[:end].strip(), text[end:]


def _is_stream_event(event: Event) -> bool:
    return any(kind.is_type(event.type) for kind in (SynthesizeChunk, SynthesizeStop, Synthesize))


def _retrieve(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()
