"""One Wyoming client connection: Describe, one-shot ``synthesize`` and streaming ``synthesize-start`` /
``-chunk`` / ``-stop``; audio goes out sentence by sentence as it is synthesized, one audio format per stream.

The event grammar, as the ``wyoming`` library defines it and Home Assistant's ``components/wyoming/tts.py`` uses it:

- ``describe`` -> ``info``.
- One-shot: ``synthesize`` -> ``audio-start``, ``audio-chunk``..., ``audio-stop``. Home Assistant reads until
  ``audio-stop`` and keeps the audio it got.
- Streaming: ``synthesize-start``, ``synthesize-chunk``..., ``synthesize`` (the whole text again, "for backwards
  compatibility": ignored here), ``synthesize-stop`` -> ``audio-start``, ``audio-chunk``... (as sentences complete),
  ``audio-stop``, ``synthesize-stopped``. Home Assistant plays the chunks as they come and ends at
  ``synthesize-stopped``; an ``error`` makes it drop the connection and, with it, the audio it had.

Failures, and what the client gets (decided for the listener):

- Refused before any audio (unknown voice, no speakable text, a malformed event): one ``error`` saying why, since
  there is nothing to hear. In a stream, the rest of its events are read and ignored, and its ``synthesize-stop`` is
  still answered with ``synthesize-stopped``.
- Failed after audio began (the audio limit, an engine failure): no ``error``, which would make Home Assistant drop
  what was already made. The audio ends properly (``audio-stop``, and ``synthesize-stopped`` for a stream at its
  stop), and the failure is logged.
- A one-shot text over ``max_text_chars`` is spoken up to the limit, cut at a sentence end, with a warning. A stream
  is bounded by its unfinished sentence (spoken at a word break once it reaches ``max_text_chars``) and by the audio
  limit over the whole stream, never by its total length: a long LLM answer is spoken to its end.
- A client that half-closes after its request keeps getting its audio; one that stops reading is dropped after
  ``write_timeout`` (:meth:`TtsEventHandler.write_event`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
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
from ishowtts_ros.core.errors import AudioLimitExceeded, EngineError
from ishowtts_ros.core.text import EMPTY_TEXT, SENTENCE_BREAK, normalize_text
from ishowtts_ros.wyoming.limits import FrameError, Limits, RateLimitedLog, client_message, read_event

LOG = logging.getLogger(__name__)
FRAME_LOG = RateLimitedLog(LOG)
WRITE_LOG = RateLimitedLog(LOG)
CLIENT_CHECK_SECONDS = 0.2
SAMPLE_WIDTH, CHANNELS = 2, 1

OptionsProvider = Callable[[], dict[str, Any]]


def describe_engine(engine: Engine) -> Info:
    """The voices as the running engine speaks them: an engine that clones (F5) speaks each reference clip; others
    (espeak) only borrow the voice's name and language, so the clip's description would promise a voice they lack."""
    credit, url = engine.credit
    attribution = Attribution(name=f"ishowtts_ros ({credit or engine.name})", url=url)
    cloned = engine.uses_reference_audio
    voices = [
        TtsVoice(
            name=voice.name,
            description=(voice.description or voice.name) if cloned else f"{voice.name} ({engine.name})",
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


@dataclass
class _Stream:
    """A streamed request between its ``synthesize-start`` and ``synthesize-stop``."""

    audio_left: float  # seconds of audio the rest of the stream may still add
    voice: str | None = None
    text: str = ""  # the unfinished sentence
    spoken: bool = False
    failed: bool = False  # its remaining events are read and ignored; its stop is still answered


#: What refuses or ends a request with a reason: the engine's errors, and malformed events.
REFUSALS = (EngineError, KeyError, TypeError, ValueError, AttributeError)


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
        self.stream: _Stream | None = None
        self.audio_started = False

    async def run(self) -> None:
        """Read events with :func:`read_event`'s limits until the client leaves, stalls or oversteps them."""
        try:
            while (event := await read_event(self.reader, self.limits)) is not None:
                if not await self.handle_event(event):
                    break
        except FrameError as exc:
            FRAME_LOG.warning(f"closing a Wyoming connection: {exc}")
            with contextlib.suppress(ConnectionError, RuntimeError, asyncio.TimeoutError):
                await self.write_event(Error(text=str(exc), code="FrameError").event())
        except asyncio.IncompleteReadError:
            FRAME_LOG.warning("a Wyoming client closed its connection in the middle of an event")
        except ConnectionError:
            pass
        finally:
            await self.disconnect()
            self.writer.close()

    async def write_event(self, event: Event) -> None:
        """Write one event; a client that takes nothing for ``write_timeout`` seconds is dropped (its connection
        aborted, its slot freed), so a client that stops reading cannot hold a slot or the server's memory."""
        try:
            await asyncio.wait_for(super().write_event(event), self.limits.write_timeout)
        except asyncio.TimeoutError:
            WRITE_LOG.warning(
                f"dropped a Wyoming client that stopped reading (nothing taken for {self.limits.write_timeout:g} s)"
            )
            self.writer.transport.abort()
            raise ConnectionResetError("the client stopped reading") from None

    async def handle_event(self, event: Event) -> bool:
        try:
            await self._handle(event)
        except (ConnectionError, asyncio.CancelledError):
            return False
        except REFUSALS as exc:
            message = str(exc) if isinstance(exc, EngineError) else f"malformed {event.type} event: {exc!r}"
            try:
                await self._failed(message, type(exc).__name__)
            except ConnectionError:  # the client already left: nobody to tell
                return False
        return True

    async def _failed(self, message: str, code: str) -> None:
        """A request that cannot go on (see the module's table): an ``error`` if nothing was heard, else its audio
        ended properly; in a stream, the rest of the stream is ignored until its stop."""
        if self.stream is not None:
            self.stream.failed = True
        if not self.audio_started:
            LOG.warning("request refused: %s", message)
            await self.write_event(Error(text=client_message(message), code=code).event())
            return
        LOG.warning("request ended early, after its audio began (the audio so far is kept): %s", message)
        if self.stream is None:
            await self._end_audio()

    async def _handle(self, event: Event) -> None:
        if Describe.is_type(event.type):
            await self.write_event(describe_engine(self.engine).event())
        elif Synthesize.is_type(event.type):
            if self.stream is None:  # while streaming it is the compatibility copy of the same text
                await self._one_shot(Synthesize.from_event(event))
        elif SynthesizeStart.is_type(event.type):
            self.stream, self.audio_started = _Stream(audio_left=self.limits.max_audio_seconds), False
            self.stream.voice = self._voice(SynthesizeStart.from_event(event).voice)
        elif SynthesizeChunk.is_type(event.type):
            if self.stream is None:
                raise EngineError("synthesize-chunk without synthesize-start")
            if not self.stream.failed:
                await self._stream_text(self.stream, SynthesizeChunk.from_event(event).text)
        elif SynthesizeStop.is_type(event.type):
            if self.stream is None:
                raise EngineError("synthesize-stop without synthesize-start")
            await self._stop_stream(self.stream)
        else:
            LOG.debug("ignoring event %s", event.type)

    async def _one_shot(self, request: Synthesize) -> None:
        self.audio_started = False
        voice = self._voice(request.voice)
        text = request.text
        if len(text) > self.limits.max_text_chars:
            text = cut_at_sentence(text, self.limits.max_text_chars)
            LOG.warning("a %d-character text was cut to %d characters at a sentence end (--max-text %d)",
                        len(request.text), len(text), self.limits.max_text_chars)  # fmt: skip
        self.engine.prepare(text, voice, self.options(), normalize=self.limits.normalize)  # refused as everywhere
        await self._speak(text, voice, self.limits.max_audio_seconds)
        await self._end_audio()

    async def _stream_text(self, stream: _Stream, text: str) -> None:
        """Speak each sentence of the stream as soon as it is complete (an unfinished one at a word break once it
        reaches ``max_text_chars``)."""
        scanned = len(stream.text)
        stream.text += text
        complete, stream.text = complete_sentences(stream.text, scanned)
        if not complete and len(stream.text) > self.limits.max_text_chars:
            complete, stream.text = cut_at_word(stream.text, self.limits.max_text_chars)
        if complete and len(complete.encode("utf-8")) < self.engine.min_chunk_bytes:
            # A tiny sentence ("OK.") alone would be stretched (F5 slows texts this short): it waits for the next
            # sentence or the end of the stream.
            stream.text, complete = f"{complete} {stream.text}", ""
        if complete:
            stream.spoken = True
            stream.audio_left -= await self._speak(complete, stream.voice, stream.audio_left)

    async def _stop_stream(self, stream: _Stream) -> None:
        """The rest of the stream's text, then ``audio-stop`` (unless nothing was heard of a failed stream) and
        ``synthesize-stopped``, whatever happened before."""
        if not stream.failed:
            remainder = stream.text.strip()
            try:
                if not stream.spoken and not normalize_text(remainder):
                    raise EngineError(EMPTY_TEXT)  # as for a one-shot request: no speakable text is an error
                if remainder:
                    await self._speak(remainder, stream.voice, stream.audio_left)
            except REFUSALS as exc:
                await self._failed(str(exc) if isinstance(exc, EngineError) else repr(exc), type(exc).__name__)
        if self.audio_started or not stream.failed:
            await self._end_audio()
        self.stream = None
        await self.write_event(SynthesizeStopped().event())

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

    async def _speak(self, text: str, voice: str | None, max_audio_seconds: float) -> float:
        """Write ``text``'s audio as it is synthesized; returns its seconds. Raises what the engine raises (a
        refusal before any audio, the audio limit after some)."""
        if max_audio_seconds <= 0:
            raise AudioLimitExceeded(f"stopped at the audio limit of {self.limits.max_audio_seconds:g} s")
        rate = self.engine.sample_rate
        stream = ChunkStream(self.engine, text, voice, self.options(), max_audio_seconds, self.limits.normalize)
        seconds = 0.0
        try:
            while (chunk := await self._next_chunk(stream)) is not None:
                if not self.audio_started:
                    await self.write_event(AudioStart(rate=rate, width=SAMPLE_WIDTH, channels=CHANNELS).event())
                    self.audio_started = True
                pcm = chunk.pcm16().tobytes()
                await self.write_event(AudioChunk(rate=rate, width=SAMPLE_WIDTH, channels=CHANNELS, audio=pcm).event())
                seconds += chunk.duration
        finally:
            self.workers.submit(stream.close)  # never awaited: a client that left must not hold us up
        return seconds

    async def _end_audio(self) -> None:
        rate = self.engine.sample_rate
        if not self.audio_started:
            await self.write_event(AudioStart(rate=rate, width=SAMPLE_WIDTH, channels=CHANNELS).event())
        await self.write_event(AudioStop().event())
        self.audio_started = False

    async def _next_chunk(self, stream: ChunkStream) -> EngineChunk | None:
        """The next chunk from a worker thread; if the connection breaks meanwhile, the synthesis is cancelled at
        once rather than when its next chunk could not be delivered. A client that only half-closed (it has no
        more to send) is still listening: its audio goes on."""
        pending = asyncio.get_running_loop().run_in_executor(self.workers, stream.next)
        while True:
            done, _ = await asyncio.wait({pending}, timeout=CLIENT_CHECK_SECONDS)
            if done:
                return pending.result()
            if self.reader.exception() is not None or self.writer.is_closing():
                stream.cancel.set()
                pending.add_done_callback(_retrieve)  # its outcome (likely "cancelled") has no one to go to
                raise ConnectionResetError("the client left during synthesis")


class ChunkStream:
    """One synthesis driven from worker threads: ``next`` and ``close`` never run at once (a generator cannot be
    closed while another thread is inside it), and ``close`` first asks the engine to stop between chunks, so a
    request whose client left frees the engine promptly."""

    def __init__(
        self,
        engine: Engine,
        text: str,
        voice: str | None,
        options: dict[str, Any],
        max_audio_seconds: float,
        normalize: bool = True,
    ) -> None:
        self.cancel = threading.Event()
        self._chunks = engine.synthesize(
            text, voice, options, cancel=self.cancel, max_audio_seconds=max_audio_seconds, normalize=normalize
        )
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


def cut_at_sentence(text: str, limit: int) -> str:
    """``text`` up to ``limit`` characters, cut after the last sentence end within them (at a word break if there
    is none)."""
    head, _ = complete_sentences(text[: limit + 1])
    return head if head else cut_at_word(text, limit)[0]


def cut_at_word(text: str, limit: int) -> tuple[str, str]:
    """``text`` split at the last whitespace within ``limit`` characters (at ``limit`` if there is none)."""
    cut = text.rfind(" ", 0, limit + 1)
    cut = cut if cut > 0 else limit
    return text[:cut].strip(), text[cut:].lstrip()


def _retrieve(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()
