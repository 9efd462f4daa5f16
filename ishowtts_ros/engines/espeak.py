"""espeak-ng as a CPU fallback engine: intelligible formant speech, no GPU, no model weights.

It speaks each voice of the registry in that voice's language (or its ``espeak_voice``), so voice names, topics and
services behave the same whichever engine runs.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ishowtts_ros.core.engine import Engine, EngineConfig
from ishowtts_ros.core.errors import EngineError
from ishowtts_ros.core.options import OptionSpec
from ishowtts_ros.core.plugin import EnginePlugin
from ishowtts_ros.core.voices import Voice

BASE_WORDS_PER_MINUTE = 175
LANGUAGE_VOICES = {"en": "en-us", "zh": "cmn"}
INSTALL_HINT = "install it with: sudo apt-get install espeak-ng"
ESPEAK_OPTIONS = {"speed": OptionSpec("speed", float, 1.0, 0.3, 3.0, "speaking rate (1.0 = 175 words per minute)")}


def find_espeak() -> str | None:
    """The espeak program on the PATH: espeak-ng, else the older espeak (rosdep's ``espeak`` key)."""
    return shutil.which("espeak-ng") or shutil.which("espeak")


class EspeakEngine(Engine):
    """Runs the ``espeak-ng`` program once per text chunk."""

    name = "espeak"
    supported_options = ESPEAK_OPTIONS
    credit = ("eSpeak NG", "https://github.com/espeak-ng/espeak-ng")

    @classmethod
    def available(cls, config: EngineConfig) -> str | None:
        return None if find_espeak() else f"espeak-ng is not installed; {INSTALL_HINT}"

    def __init__(self, config: EngineConfig | None = None) -> None:
        super().__init__(config)
        program = find_espeak()
        if program is None:
            raise EngineError(f"espeak-ng is not installed; {INSTALL_HINT}")
        self.program = program
        self._sample_rate = 22050

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    def describe(self) -> dict[str, Any]:
        return {"engine": self.name, "device": "cpu", "precision": "int16", "program": self.program}

    @staticmethod
    def espeak_voice(voice: Voice) -> str:
        if voice.espeak_voice:
            return voice.espeak_voice
        primary = voice.language.lower().replace("_", "-").split("-")[0]
        return LANGUAGE_VOICES.get(primary, voice.language)

    def render(
        self,
        pieces: Sequence[str],
        voice: Voice,
        options: Mapping[str, Any],
        cancel: threading.Event | None,
    ) -> Iterator[np.ndarray]:
        for piece in pieces:
            if cancel is not None and cancel.is_set():
                return
            yield self._speak(piece, self.espeak_voice(voice), options["speed"])

    def _speak(self, text: str, espeak_voice: str, speed: float) -> np.ndarray:
        words_per_minute = str(round(BASE_WORDS_PER_MINUTE * speed))
        command = [self.program, "--stdout", "-b", "1", "-v", espeak_voice, "-s", words_per_minute, "--stdin"]
        try:
            result = subprocess.run(command, input=text.encode("utf-8"), capture_output=True, timeout=60, check=False)
        except subprocess.TimeoutExpired:
            raise EngineError("espeak-ng took longer than 60 s for one chunk") from None
        if result.returncode != 0 or not result.stdout:
            message = result.stderr.decode("utf-8", "replace").strip() or f"exit code {result.returncode}"
            raise EngineError(f"espeak-ng failed for voice {espeak_voice!r}: {message}")
        rate, pcm = parse_wav_stream(result.stdout)
        self._sample_rate = rate
        return pcm.astype(np.float32) / 32768.0


def parse_wav_stream(data: bytes) -> tuple[int, np.ndarray]:
    """Sample rate and int16 samples of a streamed WAV, whose size fields espeak-ng leaves unset."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise EngineError("espeak-ng did not return WAV audio")
    rate = int.from_bytes(data[24:28], "little")
    offset = 12
    while offset + 8 <= len(data):
        chunk_id, size = data[offset : offset + 4], int.from_bytes(data[offset + 4 : offset + 8], "little")
        if chunk_id == b"data":
            body = data[offset + 8 :]
            return rate, np.frombuffer(body[: len(body) // 2 * 2], dtype="<i2")
        offset += 8 + size
    raise EngineError("espeak-ng WAV output has no data chunk")


PLUGIN = EnginePlugin(
    name="espeak",
    engine_class="ishowtts_ros.engines.espeak:EspeakEngine",
    options=ESPEAK_OPTIONS,
    summary="espeak-ng formant speech: no GPU, no weights (the fallback)",
    unavailable=EspeakEngine.available,
    auto_rank=0,
)
