"""Tiny random-init F5 engines (upstream classes, tiny dims), throwaway voices files and the fault-injecting engine.

Every test runs the real engine code on a CPU in seconds with these; the speed runs use the same code with the full
F5TTS_v1_Base architecture (``random:F5TTS_v1_Base``).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ishowtts_ros.core.engine import Engine, EngineConfig
from ishowtts_ros.core.options import OptionSpec
from ishowtts_ros.core.voices import Voice, VoiceRegistry
from ishowtts_ros.engines.espeak import EspeakEngine

TINY_CHECKPOINT = "random:tiny"
#: How test processes (nodes, servers) find the test-only engines: see ishowtts_ros.engines.registry.
TEST_ENGINES = "faulty=support.engines:FaultyEngine,slowload=support.engines:SlowLoadingEngine"


def tiny_f5(**settings: Any):
    """A tiny random-init F5 engine on the CPU (fp32); ``settings`` override :class:`F5Config` fields."""
    from ishowtts_ros.engines.f5.engine import F5Engine
    from ishowtts_ros.engines.f5.options import F5Config

    return F5Engine(F5Config(**{"checkpoint": TINY_CHECKPOINT, "device": "cpu", **settings}))


#: A German model's vocabulary as a community vocab.txt lists it: one character per line, the space first.
GERMAN_CHARACTERS = [" ", *"abcdefghijklmnopqrstuvwxyzäöüß", *"ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÜ", *".,!?;:'-"]


def save_community_model(folder: Path, model: str, seed: int = 5) -> Path:
    """A random model of the ``model`` setting (a config name or a model card's config) with the German vocabulary,
    saved as upstream's trainer saves one (EMA-prefixed fp16 safetensors, with its counters) beside its vocab.txt, as
    the model cards ship them; returns the checkpoint's path."""
    import torch
    from safetensors.torch import save_file

    from ishowtts_ros.engines.f5.checkpoint import ModelSpec
    from ishowtts_ros.engines.f5.models import random_models

    vocab = folder / "vocab.txt"
    vocab.write_text("".join(f"{character}\n" for character in GERMAN_CHARACTERS), encoding="utf-8")
    spec = ModelSpec.parse("random:tiny", "", model)
    cfm, _ = random_models(spec.arch, seed, keys=spec.keys, vocab_file=str(vocab))
    weights = {f"ema_model.{name}": value.half().contiguous() for name, value in cfm.state_dict().items()}
    path = folder / "model_last.safetensors"
    save_file({**weights, "initted": torch.tensor(True), "step": torch.tensor(1000)}, str(path))
    return path


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
    """Test engine (``faulty``, registered for test processes only): espeak speech with faults injected through
    the plugin API.

    A chunk containing ``FAULT`` raises mid-utterance; one containing ``OOM`` raises torch's CUDA out-of-memory
    error while it is longer than 40 bytes (so the smaller-chunk retry succeeds), ``OOMALWAYS`` at any length.
    """

    name = "faulty"
    OOM_BYTES = 40

    def render(
        self, pieces: Sequence[str], voice: Voice, options: Mapping[str, Any], cancel: threading.Event | None
    ) -> Iterator[np.ndarray]:
        import torch

        for piece in pieces:
            if "FAULT" in piece:
                raise RuntimeError("injected engine fault")
            if "OOMALWAYS" in piece or ("OOM" in piece and len(piece.encode()) > self.OOM_BYTES):
                raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")
            yield from super().render([piece], voice, options, cancel)


class GatedEngine(Engine):
    """In-process test engine (plugin API, no subprocess, no model): each text piece becomes a short tone, and
    with ``hold`` set every piece first waits for ``release``, so a test decides exactly when audio is produced."""

    name = "gated"
    supported_options: Mapping[str, OptionSpec] = {}
    max_chunk_chars = 8  # "One. Two." is two pieces
    first_chunk_chars = 8
    crossfade_seconds = 0.01

    def __init__(self, hold: bool = False) -> None:
        super().__init__(EngineConfig())
        self.hold = hold
        self.release = threading.Semaphore(0)
        self.pieces_started = threading.Semaphore(0)

    @property
    def sample_rate(self) -> int:
        return 8000

    def render(
        self, pieces: Sequence[str], voice: Voice, options: Mapping[str, Any], cancel: threading.Event | None
    ) -> Iterator[np.ndarray]:
        for piece in pieces:
            self.pieces_started.release()
            if "FAULT" in piece:
                raise RuntimeError("injected engine fault")
            if self.hold:
                while not self.release.acquire(timeout=0.05):
                    if cancel is not None and cancel.is_set():
                        return
            yield np.sin(np.arange(800, dtype=np.float32) / 4.0) * 0.1


class SlowLoadingEngine(EspeakEngine):
    """Test engine (``slowload``): espeak that takes ``$ISHOWTTS_TEST_LOAD_SECONDS`` to load, like F5 compiling, or,
    with ``$ISHOWTTS_TEST_LOAD_GATE``, once that file exists (the test decides when, whatever the machine's load)."""

    name = "slowload"

    def __init__(self, config: EngineConfig | None = None) -> None:
        gate = os.environ.get("ISHOWTTS_TEST_LOAD_GATE")
        deadline = time.monotonic() + 300
        while gate and not os.path.exists(gate) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not gate:
            time.sleep(float(os.environ.get("ISHOWTTS_TEST_LOAD_SECONDS", "5")))
        super().__init__(config)


#: A third-party engine package (``ishowtts_tone_engine``, with its dist-info entry point): on the path of the
#: processes the plugin tests start, and of no other.
PLUGIN_FOLDER = Path(__file__).resolve().parent / "plugins"


def with_plugin_package(env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's) with the tone engine's package on the Python path."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PLUGIN_FOLDER), env.get("PYTHONPATH", "")) if p)
    return env


def dominant_hz(samples: np.ndarray, sample_rate: int) -> float:
    """The strongest frequency of ``samples`` (the tone engine's pitch, read back from its audio)."""
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.fft.rfftfreq(len(samples), 1.0 / sample_rate)[int(np.argmax(spectrum[1:])) + 1])
