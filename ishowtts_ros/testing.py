"""Test support: tiny random-init F5 engines (upstream classes, tiny dims) and throwaway voices files.

Every test runs the real engine code on a CPU in seconds with these; the speed runs use the same code with the full
F5TTS_v1_Base architecture (``random:F5TTS_v1_Base``).
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ishowtts_ros.espeak_engine import EspeakEngine
from ishowtts_ros.voices import VoiceRegistry

TINY_CHECKPOINT = "random:tiny"
REFERENCE_TEXT = "Some call me nature, others call me mother nature."


def reference_clip() -> Path:
    """The English reference clip that f5-tts ships."""
    return VoiceRegistry.load().get("nature").audio_path()


def write_voices_file(folder: Path, voices: dict[str, dict] | None = None, default: str | None = None) -> Path:
    """A voices file in ``folder``; by default one voice ``tester`` with a copy of the shipped clip."""
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    if voices is None:
        shutil.copy(reference_clip(), folder / "tester.wav")
        voices = {"tester": {"audio": "tester.wav", "text": REFERENCE_TEXT, "language": "en"}}
    path = folder / "voices.yaml"
    path.write_text(yaml.safe_dump({"default": default or next(iter(voices)), "voices": voices}), encoding="utf-8")
    return path


class FaultyEngine(EspeakEngine):
    """Test engine (entry point ``faulty``): espeak speech with faults injected through the plugin API.

    A chunk containing ``FAULT`` raises mid-utterance; one containing ``OOM`` raises torch's CUDA out-of-memory
    error while it is longer than 40 bytes (so the smaller-chunk retry succeeds), ``OOMALWAYS`` at any length.
    """

    name = "faulty"
    OOM_BYTES = 40

    def _render(
        self, pieces: Sequence[str], voice, options: Mapping[str, Any], cancel: threading.Event | None
    ) -> Iterator[np.ndarray]:
        import torch

        for piece in pieces:
            if "FAULT" in piece:
                raise RuntimeError("injected engine fault")
            if "OOMALWAYS" in piece or ("OOM" in piece and len(piece.encode()) > self.OOM_BYTES):
                raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")
            yield from super()._render([piece], voice, options, cancel)
