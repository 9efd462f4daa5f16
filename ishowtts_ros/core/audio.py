"""Small audio helpers: cross-fading (streamed and whole), PCM conversion and WAV output."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def crossfade_join(waves: list[np.ndarray], fade_samples: int) -> np.ndarray:
    """Join waves with a linear cross-fade, the way upstream f5-tts joins its text batches."""
    if not waves:
        return np.zeros(0, dtype=np.float32)
    out = np.asarray(waves[0], dtype=np.float32)
    for wave in waves[1:]:
        wave = np.asarray(wave, dtype=np.float32)
        overlap = min(fade_samples, len(out), len(wave))
        if overlap <= 0:
            out = np.concatenate([out, wave])
            continue
        mixed = out[-overlap:] * np.linspace(1, 0, overlap) + wave[:overlap] * np.linspace(0, 1, overlap)
        out = np.concatenate([out[:-overlap], mixed.astype(np.float32), wave[overlap:]])
    return out


class StreamingCrossfader:
    """Streams the same result as :func:`crossfade_join` while holding back only one fade's worth of samples."""

    def __init__(self, fade_samples: int) -> None:
        self.fade_samples = max(0, fade_samples)
        self._held = np.zeros(0, dtype=np.float32)
        self._started = False

    def push(self, wave: np.ndarray, is_last: bool) -> np.ndarray:
        """Take the next piece's wave and return the samples that are final now."""
        wave = np.asarray(wave, dtype=np.float32)
        if self._started:
            overlap = min(self.fade_samples, len(self._held), len(wave))
            if overlap > 0:
                mixed = self._held[-overlap:] * np.linspace(1, 0, overlap) + wave[:overlap] * np.linspace(0, 1, overlap)
                wave = np.concatenate([self._held[:-overlap], mixed.astype(np.float32), wave[overlap:]])
            else:
                wave = np.concatenate([self._held, wave])
        self._started = True
        if is_last or self.fade_samples == 0:
            self._held = np.zeros(0, dtype=np.float32)
            return wave
        keep = min(self.fade_samples, len(wave))
        self._held = wave[len(wave) - keep :].copy()
        return wave[: len(wave) - keep]


def pcm16_to_float(data: bytes | np.ndarray) -> np.ndarray:
    """Signed 16-bit little-endian PCM (the wire format of ROS and Wyoming audio) as float32 in [-1, 1)."""
    return np.frombuffer(bytes(data), dtype="<i2").astype(np.float32) / 32768.0


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int) -> Path:
    """Write mono 16-bit PCM WAV, creating the folder."""
    import soundfile as sf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(samples, -1.0, 1.0), sample_rate, subtype="PCM_16")
    return path
