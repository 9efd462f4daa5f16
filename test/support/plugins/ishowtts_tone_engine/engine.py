"""The tone engine: each word a sine tone at ``220 Hz * 2 ** (pitch / 12)``, so a test reads ``pitch`` back from
the audio's frequency."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ishowtts_ros.core.engine import Engine
from ishowtts_ros.core.voices import Voice

from . import PLUGIN

BASE_HZ = 220.0
SAMPLE_RATE = 16000
WORD_SECONDS = 0.2


def frequency(pitch: float) -> float:
    return BASE_HZ * 2.0 ** (pitch / 12.0)


class ToneEngine(Engine):
    """One sine tone per word."""

    name = "tone"
    supported_options = PLUGIN.options

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    def render(
        self, pieces: Sequence[str], voice: Voice, options: Mapping[str, Any], cancel: threading.Event | None
    ) -> Iterator[np.ndarray]:
        for piece in pieces:
            if cancel is not None and cancel.is_set():
                return
            seconds = max(1, len(piece.split())) * WORD_SECONDS / options["speed"]
            time = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
            yield (0.5 * np.sin(2 * np.pi * frequency(options["pitch"]) * time)).astype(np.float32)
