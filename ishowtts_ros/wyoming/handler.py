"""One Wyoming client connection: Describe, one-shot ``synthesize`` and streaming ``synthesize-start`` /
``-chunk`` / ``-stop``; audio goes out sentence by sentence as it is synthesized, one audio format per stream."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from typing import Any

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Attribution, Describe, Info, TtsProgram, TtsVoice
from wyoming.server import AsyncEventHandler
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeStopped

from ishowtts_ros import __version__
from ishowtts_ros.core.engine import Engine
from ishowtts_ros.core.errors import EngineError
from ishowtts_ros.core.text import SENTENCE_BREAK

LOG = logging.getLogger(__name__)
ATTRIBUTION = Attribution(name="ishowtts_ros (F5-TTS by SWivid)", url="https://github.com/SWivid/F5-TTS")
SAMPLE_WIDTH, CHANNELS = 2, 1

OptionsProvider = Callable[[], dict[str, Any]]


def describe_engine(engine: Engine) -> Info:
    voices = [
        TtsVoice(
            name=voice.name,
            description=voice.description or voice.name,
            attribution=ATTRIBUTION,
            installed=True,
            version=None,
            languages=[voice.language],
        )
        for voice in engine.voices()
    ]
    program = TtsProgram(
        name="ishowtts",
        description=f"ishowtts_ros {engine.name} text to speech",
        attribution=ATTRIBUTION,
        installed=True,
        version=__version__,
        voices=voices,
        supports_synthesize_streaming=True,
    )
    return Info(tts=[program])


class TtsEventHandler(AsyncEventHandler):
    """One client connection. Events are handled in order; synthesis runs in worker threads."""

    def __init__(self, engine: Engine, options: OptionsProvider, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.engine = engine
        self.options = options
        self.streaming = False
        self.stream_voice: str | None = None
        self.stream_text = ""
        self.audio_started = False

    async def handle_event(self, event: Event) -> bool:
        try:
            if Describe.is_type(event.type):
                await self.write_event(describe_engine(self.engine).event())
            elif Synthesize.is_type(event.type):
                if not self.streaming:  # while streaming it is the compatibility copy of the same text
                    request = Synthesize.from_event(event)
                    voice = self._voice(request.voice)
                    await self._speak([request.text], voice, finish=True)
            elif SynthesizeStart.is_type(event.type):
                start = SynthesizeStart.from_event(event)
                self.streaming, self.stream_text, self.audio_started = True, "", False
                self.stream_voice = self._voice(start.voice)
            elif SynthesizeChunk.is_type(event.type):
                if not self.streaming:
                    raise EngineError("synthesize-chunk without synthesize-start")
                self.stream_text += SynthesizeChunk.from_event(event).text
                complete, self.stream_text = complete_sentences(self.stream_text)
                if complete:
                    await self._speak([complete], self.stream_voice, finish=False)
            elif SynthesizeStop.is_type(event.type):
                if not self.streaming:
                    raise EngineError("synthesize-stop without synthesize-start")
                remainder, self.streaming = self.stream_text.strip(), False
                await self._speak([remainder] if remainder else [], self.stream_voice, finish=True)
                await self.write_event(SynthesizeStopped().event())
            else:
                LOG.debug("ignoring event %s", event.type)
        except (ConnectionError, asyncio.CancelledError):
            return False
        except (EngineError, KeyError, TypeError, ValueError) as exc:
            message = str(exc) if isinstance(exc, EngineError) else f"malformed {event.type} event: {exc!r}"
            LOG.warning("request refused: %s", message)
            self.streaming = False
            await self.write_event(Error(text=message, code=type(exc).__name__).event())
        return True

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
            chunks = self.engine.synthesize(text, voice, self.options())
            first = await asyncio.to_thread(_next_or_none, chunks)  # validation errors surface here, before audio
            if not self.audio_started:
                await self.write_event(AudioStart(rate=rate, width=SAMPLE_WIDTH, channels=CHANNELS).event())
                self.audio_started = True
            try:
                chunk = first
                while chunk is not None:
                    pcm = chunk.pcm16().tobytes()
                    audio = AudioChunk(rate=rate, width=SAMPLE_WIDTH, channels=CHANNELS, audio=pcm)
                    await self.write_event(audio.event())
                    chunk = await asyncio.to_thread(_next_or_none, chunks)
            finally:
                chunks.close()
        if finish:
            if not self.audio_started:
                await self.write_event(AudioStart(rate=rate, width=SAMPLE_WIDTH, channels=CHANNELS).event())
            await self.write_event(AudioStop().event())
            self.audio_started = False


def _next_or_none(chunks: Iterator) -> Any:
    return next(chunks, None)


def complete_sentences(text: str) -> tuple[str, str]:
    """Streamed text split into its complete sentences so far and the unfinished rest (a sentence is complete
    once whitespace follows its end punctuation; CJK end punctuation completes it at once)."""
    end = 0
    for match in SENTENCE_BREAK.finditer(text):
        end = match.end()
    return text[:end].strip(), text[end:]
