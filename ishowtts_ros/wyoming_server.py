"""``ishowtts wyoming``: the engine as a Home Assistant Wyoming TTS server.

One-shot (``synthesize``) and streaming (``synthesize-start`` / ``-chunk`` / ``-stop``) requests; audio goes out
sentence by sentence as it is synthesized, one audio format per stream. Quality knobs (NFE...) are server settings,
since Home Assistant only forwards the voice. The ROS node can run this on its own engine (``use_wyoming``), so
the GPU holds one model.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any
from urllib.parse import urlparse

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Attribution, Describe, Info, TtsProgram, TtsVoice
from wyoming.server import AsyncEventHandler, AsyncServer
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeStopped

from ishowtts_ros import __version__
from ishowtts_ros.engine import Engine, create_engine
from ishowtts_ros.errors import EngineError
from ishowtts_ros.text import SENTENCE_BREAK

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


async def serve(engine: Engine, uri: str, options: OptionsProvider, zeroconf_name: str | None = None) -> None:
    """Serve until cancelled."""
    server = AsyncServer.from_uri(uri)
    if zeroconf_name is not None:
        from wyoming.zeroconf import HomeAssistantZeroconf

        parsed = urlparse(uri)
        if parsed.scheme != "tcp" or not parsed.port:
            raise EngineError("--zeroconf needs a tcp://host:port URI")
        try:
            discovery = HomeAssistantZeroconf(port=parsed.port, name=zeroconf_name or None)
            await discovery.register_server()
            LOG.info("announced _wyoming._tcp.local. as %s", discovery.name)
        except OSError as exc:  # no multicast route: still serve, Home Assistant can add host and port by hand
            LOG.warning("zeroconf announcement failed (%s); add the server in Home Assistant by host and port", exc)
    LOG.info("Wyoming TTS server ready on %s (engine %s)", uri, engine.name)
    await server.run(partial(TtsEventHandler, engine, options))


def serve_in_thread(engine: Engine, uri: str, options: OptionsProvider, timeout: float = 10.0) -> threading.Thread:
    """Run the server on its own event loop in a daemon thread (the ROS node shares its engine this way); returns
    once it accepts connections, so whoever reports "ready" next is telling the truth."""

    def run() -> None:
        try:
            asyncio.run(serve(engine, uri, options))
        except Exception:  # report and let the node keep serving ROS
            LOG.exception("Wyoming server on %s stopped", uri)

    thread = threading.Thread(target=run, name="wyoming", daemon=True)
    thread.start()
    _wait_listening(uri, thread, timeout)
    return thread


def _wait_listening(uri: str, thread: threading.Thread, timeout: float) -> None:
    parsed = urlparse(uri)
    deadline = time.monotonic() + timeout
    while thread.is_alive() and time.monotonic() < deadline:
        try:
            if parsed.scheme == "tcp":
                host = "127.0.0.1" if parsed.hostname in ("0.0.0.0", "", None) else parsed.hostname
                socket.create_connection((host, parsed.port), timeout=1).close()
                return
            if parsed.scheme == "unix" and os.path.exists(parsed.path):
                return
        except OSError:
            pass
        time.sleep(0.05)
    LOG.warning("Wyoming server on %s is not accepting connections yet", uri)


def main(argv: Sequence[str] | None = None) -> int:
    from ishowtts_ros.cli import add_engine_arguments, engine_config

    parser = argparse.ArgumentParser(prog="ishowtts wyoming", description=__doc__.splitlines()[0])
    parser.add_argument("--uri", default="tcp://127.0.0.1:10200", help="tcp://host:port or unix:///path")
    parser.add_argument("--zeroconf", nargs="?", const="", default=None, metavar="NAME", help="announce via mDNS")
    parser.add_argument("--nfe", type=int, default=None, help="flow steps for every request (f5)")
    parser.add_argument("--seed", type=int, default=None, help="fixed noise seed (repeatable audio)")
    parser.add_argument("--no-warmup", action="store_true")
    parser.add_argument("-v", "--verbose", action="store_true")
    add_engine_arguments(parser)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    try:
        engine = create_engine(args.engine, engine_config(args))
        options = engine.supported_subset({"nfe_step": args.nfe, "seed": args.seed})
        engine.resolve_options(options)
        if not args.no_warmup:
            engine.warmup()
        asyncio.run(serve(engine, args.uri, lambda: dict(options), args.zeroconf))
    except EngineError as exc:
        LOG.error("%s", exc)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
