"""Test support: tiny random-init F5 engines (upstream classes, tiny dims) and throwaway voices files.

Every test runs the real engine code on a CPU in seconds with these; the speed runs use the same code with the full
F5TTS_v1_Base architecture (``random:F5TTS_v1_Base``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

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
