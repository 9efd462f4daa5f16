"""A voice's reference clip prepared once for F5 (load, mono, RMS normalisation, resampling to 24 kHz, mel) and
served from memory afterwards, plus upstream's duration estimate that reads it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ishowtts_ros.core.errors import VoiceError
from ishowtts_ros.core.voices import Voice

LOG = logging.getLogger(__name__)

SAMPLE_RATE = 24000
HOP_LENGTH = 256
TARGET_RMS = 0.1
MIN_REFERENCE_RATE = 16000
MAX_REFERENCE_SECONDS = 30.0
MIN_REFERENCE_SECONDS = 1.0
SILENCE_RMS = 1e-4

#: Mono 24 kHz audio [1, samples] on the CPU -> mel [frames, mels] float32 on the engine's device.
MelFunction = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Reference:
    """A voice's prepared reference: its mel on the device and what the duration estimate needs."""

    cond: torch.Tensor
    frames: int
    rms: float
    text: str
    text_bytes: int

    @property
    def seconds(self) -> float:
        return self.frames * HOP_LENGTH / SAMPLE_RATE


class ReferenceCache:
    """Prepared references by voice name: computed on first use, then served without audio I/O."""

    def __init__(self, mel: MelFunction) -> None:
        self._mel = mel
        self._references: dict[str, Reference] = {}
        self._lock = threading.Lock()

    def get(self, voice: Voice) -> Reference:
        with self._lock:
            cached = self._references.get(voice.name)
            if cached is None:
                cached = prepare_reference(voice, self._mel)
                self._references[voice.name] = cached
            return cached

    def clear(self) -> None:
        with self._lock:
            self._references.clear()


def reference_text(text: str) -> str:
    """The transcript as upstream's ``preprocess_ref_audio_text`` ends it, so it does not run into the generated
    text: kept after ". " or "。", a space after ".", else ". " appended."""
    if text.endswith((". ", "\u3002")):
        return text
    return text + (" " if text.endswith(".") else ". ")


def prepare_reference(voice: Voice, mel: MelFunction) -> Reference:
    """Read and check ``voice``'s clip (every problem is a :class:`VoiceError` naming voice and file)."""
    audio, rate, level = _read_clip(voice)
    if level < TARGET_RMS:
        audio = audio * TARGET_RMS / level
    if rate != SAMPLE_RATE:
        import torchaudio

        audio = torchaudio.transforms.Resample(rate, SAMPLE_RATE)(audio)
    text = reference_text(voice.text)
    frames = audio.shape[-1] // HOP_LENGTH
    return Reference(cond=mel(audio), frames=frames, rms=level, text=text, text_bytes=len(text.encode("utf-8")))


def _read_clip(voice: Voice) -> tuple[torch.Tensor, int, float]:
    """The clip as mono float32 [1, samples], its rate and its RMS level."""
    import soundfile as sf

    path = voice.audio_path()
    where = f"voice {voice.name!r}: reference audio {path}"
    if not path.is_file():
        raise VoiceError(f"{where} does not exist (voices file {voice.source_file})")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise VoiceError(f"{where} cannot be read as audio: {exc}") from None
    seconds = data.shape[0] / rate if rate else 0.0
    if rate < MIN_REFERENCE_RATE:
        raise VoiceError(f"{where} is sampled at {rate} Hz; use a clip recorded at {MIN_REFERENCE_RATE} Hz or more")
    if seconds < MIN_REFERENCE_SECONDS or seconds > MAX_REFERENCE_SECONDS:
        raise VoiceError(
            f"{where} is {seconds:.1f} s long; use a clip of {MIN_REFERENCE_SECONDS:.0f}-12 s "
            f"(at most {MAX_REFERENCE_SECONDS:.0f} s) with its exact transcript"
        )
    audio = torch.from_numpy(np.ascontiguousarray(data.mean(axis=1)))[None]
    level = float(torch.sqrt(torch.mean(torch.square(audio))))
    if not np.isfinite(level) or level < SILENCE_RMS:
        raise VoiceError(f"{where} is silent (RMS {level:.2e}); record a clip of clear speech")
    if seconds > 12:
        LOG.warning("%s is %.1f s; 3-12 s clips clone best and synthesize faster", where, seconds)
    return audio, rate, level
