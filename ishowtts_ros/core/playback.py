"""Local playback through PortAudio (sounddevice), fed chunk by chunk so sound starts with the first chunk.

A missing library or audio device is a warning, never an error: the topics keep working without a speaker.
"""

from __future__ import annotations

import contextlib
import logging
import threading

import numpy as np

LOG = logging.getLogger(__name__)


class AudioPlayer:
    """Plays mono float32 chunks in order on one output device; reopens the stream when the rate changes."""

    def __init__(self, device: str | int | None = None, volume: float = 1.0) -> None:
        self.device = _device_arg(device)
        self.volume = volume
        self.available = True
        self.last_error = ""
        self._stream = None
        self._rate = 0
        self._aborted = threading.Event()
        self._lock = threading.Lock()

    def play(self, samples: np.ndarray, sample_rate: int) -> bool:
        """Write a chunk in 50 ms blocks (each blocks while the device buffer is full); after :meth:`abort`, nothing
        more is written until :meth:`reset`. False when playback is unavailable."""
        if not self.available:
            return False
        with self._lock:
            try:
                stream = self._open(sample_rate)
                data = np.clip(samples * self.volume, -1.0, 1.0).astype(np.float32)
                block = max(1, sample_rate // 20)
                for start in range(0, len(data), block):
                    if self._aborted.is_set():
                        return True
                    stream.write(data[start : start + block].reshape(-1, 1))
            except Exception as exc:
                self._disable(exc)
                return False
        return True

    def drain(self) -> None:
        """Wait until what was written has been heard."""
        with self._lock:
            if self._stream is not None:
                try:
                    self._stream.stop()
                    self._stream.start()
                except Exception as exc:
                    self._disable(exc)

    def reset(self) -> None:
        """Play again after :meth:`abort`: called when the next utterance starts. ``play`` never clears an abort
        itself, so a stop that lands just before a chunk's ``play`` still silences that chunk."""
        self._aborted.clear()

    def abort(self) -> None:
        """Stop at once (stop service, interrupt): drop what is buffered, and play nothing until :meth:`reset`."""
        self._aborted.set()
        stream = self._stream
        if stream is not None:
            try:
                stream.abort()
                stream.start()
            except Exception as exc:
                self._disable(exc)

    def close(self) -> None:
        with self._lock:
            if self._stream is not None:
                with contextlib.suppress(Exception):
                    self._stream.close()
                self._stream = None

    def _open(self, sample_rate: int):
        if self._stream is not None and self._rate == sample_rate:
            return self._stream
        import sounddevice

        if self._stream is not None:
            self._stream.close()
        stream = sounddevice.OutputStream(samplerate=sample_rate, channels=1, dtype="float32", device=self.device)
        stream.start()
        self._stream, self._rate = stream, sample_rate
        return stream

    def _disable(self, exc: BaseException) -> None:
        self.available = False
        self.last_error = f"{type(exc).__name__}: {exc}"
        self._stream = None
        LOG.warning("audio playback disabled (%s); audio is still published on the topic", self.last_error)


def _device_arg(device: str | int | None) -> str | int | None:
    if device in (None, "", "default"):
        return None
    if isinstance(device, str) and device.isdigit():
        return int(device)
    return device
