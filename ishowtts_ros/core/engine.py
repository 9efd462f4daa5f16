"""Engine plugin API shared by the CLI, the ROS node, the Wyoming server and the benchmark.

An engine turns text into a stream of :class:`AudioChunk` objects, one per text chunk, so callers can start playing
the first sentence while later ones are still being synthesized. Engines are found by name through
:mod:`ishowtts_ros.engines.registry`.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np

from ishowtts_ros.core.audio import StreamingCrossfader
from ishowtts_ros.core.errors import AudioLimitExceeded, EngineError, SynthesisCancelled, VoiceError
from ishowtts_ros.core.frontend import speakable
from ishowtts_ros.core.options import OptionSpec
from ishowtts_ros.core.text import EMPTY_TEXT, normalize_text, split_text
from ishowtts_ros.core.voices import Voice, VoiceRegistry

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class AudioChunk:
    """One piece of an utterance's audio: mono float32 PCM in [-1, 1] plus where it sits and how long it took."""

    samples: np.ndarray
    sample_rate: int
    index: int
    utterance_id: str
    is_last: bool
    text: str
    synth_seconds: float
    elapsed_seconds: float

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate

    def pcm16(self) -> np.ndarray:
        """The chunk as signed 16-bit PCM (clipped), the wire format of the ROS topic and Wyoming."""
        return (np.clip(self.samples, -1.0, 1.0) * 32767.0).round().astype("<i2")


class TextLimit(NamedTuple):
    """The longest text a front door accepts, and the setting that says so (named in the refusal)."""

    chars: int
    setting: str


@dataclass(frozen=True)
class Plan:
    """A request checked and ready to stream (:meth:`Engine.prepare`)."""

    text: str  # as it was sent
    spoken: str  # exactly what is said: cleaned, numbers and symbols written out
    voice: Voice
    options: dict[str, Any]  # every option of the engine, resolved
    #: Characters of ``spoken`` the engine's model has no token for: they are not heard (:meth:`Engine.unsayable`).
    unsayable: tuple[str, ...] = ()


@dataclass
class SynthesisResult:
    """A whole utterance, joined from its chunks, with the figures every caller reports."""

    samples: np.ndarray
    sample_rate: int
    utterance_id: str
    synth_seconds: float
    first_audio_seconds: float
    chunks: int

    @property
    def audio_seconds(self) -> float:
        return len(self.samples) / self.sample_rate

    @property
    def rtf(self) -> float:
        return self.synth_seconds / self.audio_seconds if self.audio_seconds else float("inf")


@dataclass
class EngineConfig:
    """Start-up settings common to all engines (an engine may take a subclass with its own, as F5 does)."""

    voices_file: Path | str | None = None
    device: str = "auto"
    precision: str = "auto"
    checkpoint: str = ""
    vocoder: str = ""
    compile: bool | None = None
    #: The model's vocabulary and architecture, set with its checkpoint (engines with one model ignore them).
    vocab: str = ""
    model: str = ""


class Engine(ABC):
    """Base class of every TTS engine: validation, text splitting and chunk streaming live here, once."""

    name: ClassVar[str]
    supported_options: ClassVar[Mapping[str, OptionSpec]]
    crossfade_seconds: ClassVar[float] = 0.15
    first_chunk_chars: ClassVar[int] = 60
    max_chunk_chars: ClassVar[int] = 180
    #: Chunks shorter than this (UTF-8 bytes) are joined to a neighbour unless the whole text is that short: an
    #: engine that slows short texts down says so here (F5: 10).
    min_chunk_bytes: ClassVar[int] = 0
    serialize_requests: ClassVar[bool] = True
    uses_reference_audio: ClassVar[bool] = False  # clones voices from their clips (so a voice needs a readable one)
    #: Whose speech this is and where it comes from (Home Assistant shows it): (name, URL).
    credit: ClassVar[tuple[str, str]] = ("", "")

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self.registry = VoiceRegistry.load(self.config.voices_file)
        self._lock = threading.Lock() if self.serialize_requests else contextlib.nullcontext()

    @classmethod
    def available(cls, config: EngineConfig) -> str | None:
        """None when this engine can run with ``config``, else why not; cheap (``auto`` asks every engine)."""
        return None

    @property
    @abstractmethod
    def sample_rate(self) -> int:
        """Output sample rate in Hz."""

    @property
    def default_options(self) -> dict[str, Any]:
        return {name: spec.default for name, spec in self.supported_options.items()}

    def voices(self) -> list[Voice]:
        return self.registry.voices()

    def describe(self) -> dict[str, Any]:
        """What diagnostics show about this engine (device, precision...)."""
        return {"engine": self.name}

    def supported_subset(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The entries of ``values`` this engine understands, dropping unset (``None``) ones: callers such as the
        node and the CLI hold settings for every engine."""
        return {key: value for key, value in values.items() if value is not None and key in self.supported_options}

    def resolve_options(self, options: Mapping[str, Any] | None) -> dict[str, Any]:
        """Merge ``options`` over the defaults; unknown names and bad values raise :class:`EngineError`."""
        resolved = self.default_options
        for key, value in (options or {}).items():
            spec = self.supported_options.get(key)
            if spec is None:
                known = ", ".join(sorted(self.supported_options)) or "none"
                raise EngineError(f"engine {self.name!r} has no option {key!r} (supported: {known})")
            resolved[key] = spec.validate(value)
        return resolved

    def reload_voices(self, keep: str | None = None) -> None:
        """Re-read the voices file, keeping the old voices (:class:`VoiceError`) if the new file lacks voice
        ``keep`` (the one a caller has selected) or, for engines that clone, names a clip that cannot be read.
        Engines drop cached per-voice work in :meth:`_voices_changed`."""
        registry = VoiceRegistry.load(self.config.voices_file)
        if keep and keep not in registry:
            raise VoiceError(f"voices file {registry.source} has no voice {keep!r}, the voice selected now")
        if self.uses_reference_audio:
            registry.check_clips()
        self.registry = registry
        self._voices_changed()

    def prepare(
        self,
        text: str,
        voice: str | None = None,
        options: Mapping[str, Any] | None = None,
        *,
        normalize: bool = True,
        text_limit: TextLimit | None = None,
    ) -> Plan:
        """The one check of a request, made by every front door (the node for topic text and goals, the Wyoming
        server, the CLI) before anything is queued, and again by :meth:`synthesize`: length, voice, options, and
        that something speakable is left. A bad request raises :class:`EngineError` with the same reason whichever
        door it came through."""
        if text_limit is not None and len(text) > text_limit.chars:
            raise EngineError(f"text is {len(text)} characters; {text_limit.setting} is {text_limit.chars}")
        resolved_voice = self.registry.get(voice)
        resolved = self.resolve_options(options)
        spoken = self.spoken_text(text, resolved_voice, normalize)
        return Plan(text, spoken, resolved_voice, resolved, tuple(self.unsayable(spoken)))

    def unsayable(self, spoken: str) -> list[str]:
        """The characters (or tokens) of ``spoken`` this engine's model has no entry for, in order of first
        appearance: F5 would map each to its padding token, so they would silently become nothing. Reported, never
        dropped quietly (events, logs, ``ishowtts say``)."""
        return []

    def spoken_text(self, text: str, voice: Voice | str | None = None, normalize: bool = True) -> str:
        """Exactly the text this engine speaks for ``text`` in ``voice``: control characters and extra whitespace
        dropped, then (``normalize``) numbers, units, times and symbols written out in the voice's language
        (:mod:`.frontend`). Raises :class:`EngineError` when nothing speakable is left."""
        resolved = voice if isinstance(voice, Voice) else self.registry.get(voice)
        clean = normalize_text(text)
        if normalize:
            clean = speakable(clean, resolved.language)
        if not clean:
            raise EngineError(EMPTY_TEXT)
        return clean

    def _voices_changed(self) -> None:
        """Hook for engines with per-voice caches."""

    def split(self, text: str, voice: Voice) -> list[str]:
        """Sentence-sized chunks, the first kept short so audio starts early."""
        return split_text(
            text, first_max_chars=self.first_chunk_chars, max_chars=self.max_chunk_chars, min_chars=self.min_chunk_bytes
        )

    def warmup(self) -> None:
        """Run one short synthesis so the first real request is not slow."""
        for _ in self.synthesize("Ready.", options=None):
            pass

    def close(self) -> None:
        """Release the engine's resources."""

    def synthesize(
        self,
        text: str,
        voice: str | None = None,
        options: Mapping[str, Any] | None = None,
        *,
        utterance_id: str | None = None,
        cancel: threading.Event | None = None,
        max_audio_seconds: float | None = None,
        normalize: bool = True,
    ) -> Generator[AudioChunk, None, None]:
        """Stream ``text`` as audio chunks in order; the concatenation is the cross-faded whole utterance.

        Validation happens before the first chunk is produced, so a bad request raises :class:`EngineError`
        on the first ``next()``; a set ``cancel`` event raises :class:`SynthesisCancelled` between chunks; a chunk
        that would take the utterance past ``max_audio_seconds`` raises :class:`AudioLimitExceeded` instead of
        being yielded (text length does not bound audio: an emoji is four bytes and a long spoken name).
        """
        start = time.perf_counter()
        plan = self.prepare(text, voice, options, normalize=normalize)
        if plan.unsayable:
            LOG.warning("not in the %s model's vocabulary, so not spoken: %s", self.name, " ".join(plan.unsayable))
        resolved_voice, resolved = plan.voice, plan.options
        pieces = self.split(plan.spoken, resolved_voice)
        utterance_id = utterance_id or uuid.uuid4().hex[:12]
        fader = StreamingCrossfader(int(self.crossfade_seconds * self.sample_rate))
        last_mark = start
        done = produced = 0
        retried = False
        sample_limit = None if max_audio_seconds is None else int(max_audio_seconds * self.sample_rate)
        while done < len(pieces):
            try:
                with contextlib.closing(self._serialized(pieces[done:], resolved_voice, resolved, cancel)) as waves:
                    for wave in waves:
                        if cancel is not None and cancel.is_set():
                            raise SynthesisCancelled(f"utterance {utterance_id} cancelled")
                        is_last = done == len(pieces) - 1
                        out = fader.push(wave, is_last)
                        produced += len(out)
                        if sample_limit is not None and produced > sample_limit:
                            raise AudioLimitExceeded(f"stopped at the audio limit of {max_audio_seconds:g} s")
                        now = time.perf_counter()
                        yield AudioChunk(
                            samples=out,
                            sample_rate=self.sample_rate,
                            index=done,
                            utterance_id=utterance_id,
                            is_last=is_last,
                            text=pieces[done],
                            synth_seconds=now - last_mark,
                            elapsed_seconds=now - start,
                        )
                        done += 1
                        last_mark = time.perf_counter()
                if cancel is not None and cancel.is_set() and done < len(pieces):
                    raise SynthesisCancelled(f"utterance {utterance_id} cancelled")
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                if retried:
                    raise EngineError(f"out of accelerator memory even with smaller chunks: {exc}") from exc
                retried = True
                pieces = pieces[:done] + self._smaller_pieces(pieces[done:])
                LOG.warning("out of accelerator memory; released cached memory, retrying with smaller chunks")
                self.release_memory()

    def _serialized(
        self, pieces: Sequence[str], voice: Voice, options: Mapping[str, Any], cancel: threading.Event | None
    ) -> Generator[np.ndarray, None, None]:
        """:meth:`render`'s waves, each rendered under the engine lock, which is never held while a caller holds a
        chunk: a consumer that stops, hangs up or never resumes cannot leave the engine locked."""
        waves = self.render(pieces, voice, options, cancel)
        try:
            while True:
                with self._lock:
                    wave = next(waves, None)
                if wave is None:
                    return
                yield wave
        finally:
            close = getattr(waves, "close", None)
            if close is not None:
                with self._lock:
                    close()

    def _smaller_pieces(self, pieces: Sequence[str]) -> list[str]:
        """The same text re-split into chunks half as long as the longest one that failed."""
        limit = max(16, max(len(p.encode("utf-8")) for p in pieces) // 2)
        return split_text(" ".join(pieces), first_max_chars=limit, max_chars=limit)

    def release_memory(self) -> None:
        """Give cached accelerator memory back (after an out-of-memory error)."""

    def synthesize_all(
        self,
        text: str,
        voice: str | None = None,
        options: Mapping[str, Any] | None = None,
        on_chunk: Callable[[AudioChunk], None] | None = None,
        normalize: bool = True,
    ) -> SynthesisResult:
        """Synthesize a whole utterance (non-streaming callers: CLI, benchmark, tests); ``on_chunk`` sees each
        chunk as it arrives (progress)."""
        start = time.perf_counter()
        chunks: list[AudioChunk] = []
        first_audio = 0.0
        for chunk in self.synthesize(text, voice, options, normalize=normalize):
            if not chunks:
                first_audio = time.perf_counter() - start
            chunks.append(chunk)
            if on_chunk is not None:
                on_chunk(chunk)
        synth = time.perf_counter() - start
        return SynthesisResult(
            samples=np.concatenate([c.samples for c in chunks]).astype(np.float32),
            sample_rate=self.sample_rate,
            utterance_id=chunks[0].utterance_id,
            synth_seconds=synth,
            first_audio_seconds=first_audio,
            chunks=len(chunks),
        )

    @abstractmethod
    def render(
        self,
        pieces: Sequence[str],
        voice: Voice,
        options: Mapping[str, Any],
        cancel: threading.Event | None,
    ) -> Iterator[np.ndarray]:
        """Yield one mono float32 waveform per text piece, in order, as soon as each is ready."""


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is torch's CUDA out-of-memory error (without importing torch where it is not loaded)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(exc, torch.cuda.OutOfMemoryError)
