"""The node's parameters: names, defaults, descriptions and ranges (so rqt_reconfigure shows sliders and rclpy
refuses out-of-range values before the node sees them). The engine's options come from its plugin's specs, so
another engine's own options become parameters with no change here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

from ishowtts_ros.core.options import OptionSpec

Bounds = tuple[float, float] | None
#: Step of every float parameter (rclpy enforces it; rqt's arrow keys move by it): divides each range below.
FLOAT_STEP = 0.01

#: Live parameters besides the engine options: name -> (default, description, range or None).
LIVE_PARAMETERS: dict[str, tuple[Any, str, Bounds]] = {
    "voice": ("", "voice name from the voices file ('' = its default voice)", None),
    "playback": (False, "also play the audio on this machine's speaker (PortAudio)", None),
    "volume": (1.0, "playback gain (the published audio is not scaled)", (0.0, 2.0)),
    "interrupt": (False, "new text cancels the current utterance and the queue instead of queueing", None),
    "normalize_text": (
        True,
        "say numbers, units, times and symbols as words in the voice's language (12% -> twelve percent)",
        None,
    ),
    "max_text_length": (2000, "longest text accepted, in characters", (1, 100000)),
    "max_audio_seconds": (
        300.0,
        "longest audio one request may produce; synthesis stops there (failed)",
        (1.0, 3600.0),
    ),
}
#: Start-up parameters (read-only once the node runs): name -> (default, description, range or None).
STARTUP_PARAMETERS: dict[str, tuple[Any, str, Bounds]] = {
    "engine": ("auto", "f5, espeak or auto (f5 when its checkpoint is at hand, else espeak)", None),
    "device": ("auto", "auto, cuda, cuda:N or cpu", None),
    "precision": ("auto", "auto (fp16 on CUDA, fp32 on CPU), fp32, fp16 or bf16", None),
    "checkpoint": ("", "F5 checkpoint: local .safetensors/.pt, '' for the hub, or random:<arch> for tests", None),
    "vocoder": ("", "local vocos-mel-24khz folder, '' for the hub, or 'random'", None),
    "vocab": (
        "",
        "the checkpoint's vocab.txt (file or hf://...; '' = one beside the checkpoint, else upstream's)",
        None,
    ),
    "model": (
        "",
        "architecture: an upstream config name (F5TTS_v1_Base, F5TTS_Base, F5TTS_Small...) or the model card's "
        "config dict ('' = F5TTS_v1_Base)",
        None,
    ),
    "voices_file": ("", "voices YAML ('' = the package's config/voices.yaml)", None),
    "queue_size": (16, "requests that may wait; more are refused with a failed event", (1, 1000)),
    "playback_device": ("", "PortAudio output device name or index ('' = default)", None),
    "warmup": (True, "synthesize once at start so the first request is fast", None),
    "compile": (True, "torch.compile the model on CUDA (slower start, faster speech)", None),
    "text_topics": ([""], "more text topics, each 'topic' or 'topic=voice'", None),
    "use_wyoming": (False, "also serve Home Assistant over the Wyoming protocol with this node's engine", None),
    "wyoming_uri": (
        "tcp://127.0.0.1:10200",
        "where the Wyoming server listens (loopback; tcp://0.0.0.0:10200 opens it to the network, unauthenticated)",
        None,
    ),
}


def descriptor(
    name: str, default: Any, description: str, bounds: Bounds, read_only: bool = False
) -> ParameterDescriptor:
    """A parameter descriptor with its range, so rqt_reconfigure shows a slider and refuses out-of-range values."""
    desc = ParameterDescriptor(name=name, description=description, read_only=read_only)
    if bounds is not None and not isinstance(default, bool) and isinstance(default, int):
        desc.integer_range = [IntegerRange(from_value=int(bounds[0]), to_value=int(bounds[1]), step=1)]
    elif bounds is not None and isinstance(default, float):
        low, high = float(bounds[0]), float(bounds[1])
        desc.floating_point_range = [FloatingPointRange(from_value=low, to_value=high, step=FLOAT_STEP)]
    return desc


def startup_parameters() -> dict[str, tuple[Any, ParameterDescriptor]]:
    """The read-only parameters, declared first: they choose the engine whose options come next."""
    return {
        name: (default, descriptor(name, default, text, bounds, read_only=True))
        for name, (default, text, bounds) in STARTUP_PARAMETERS.items()
    }


def live_parameters(options: Mapping[str, OptionSpec]) -> dict[str, tuple[Any, ParameterDescriptor]]:
    """The parameters rqt may change: the engine's ``options`` (from its plugin's specs) and the node's own."""
    declared = {}
    for name, spec in options.items():
        bounds = (spec.minimum, spec.maximum) if spec.minimum is not None and spec.maximum is not None else None
        declared[name] = (spec.default, descriptor(name, spec.default, spec.description, bounds))
    for name, (default, text, bounds) in LIVE_PARAMETERS.items():
        declared[name] = (default, descriptor(name, default, text, bounds))
    return declared
