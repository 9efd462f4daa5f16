"""F5-TTS: upstream's model classes driven by an own sampler, split by optimisation axis (attention, graphs,
kernels). Importing this package does not import torch: :data:`PLUGIN` (the registry's entry) and the modules it
reads, ``options`` and ``checkpoint``, are torch-free."""

from __future__ import annotations

from ishowtts_ros.core.engine import EngineConfig
from ishowtts_ros.core.plugin import EnginePlugin
from ishowtts_ros.engines.f5.checkpoint import f5_unavailable_reason
from ishowtts_ros.engines.f5.options import F5_OPTIONS

WEIGHTS_HINT = (
    "to use F5, set checkpoint to a local model_1250000.safetensors (and vocoder to a local vocos-mel-24khz "
    "folder) or download them once while online (ishowtts download)"
)


def unavailable(config: EngineConfig) -> str | None:
    """Why F5 cannot start with ``config`` without a download (with what to do), or None."""
    reason = f5_unavailable_reason(config.checkpoint, config.vocoder, config.vocab, config.model)
    return None if reason is None else f"{reason}; {WEIGHTS_HINT}"


PLUGIN = EnginePlugin(
    name="f5",
    engine_class="ishowtts_ros.engines.f5.engine:F5Engine",
    options=F5_OPTIONS,
    summary="F5-TTS flow matching: voice cloning from a short reference clip (CUDA; CPU for tests)",
    unavailable=unavailable,
    auto_rank=100,
)
