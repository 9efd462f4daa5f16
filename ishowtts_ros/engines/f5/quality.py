"""The quality guard: how far a reduced-precision (or otherwise optimised) engine's mel is from the fp32 engine's.

An optimisation ships only if this stays within :data:`QUALITY_TOLERANCE` (and finite) for the same weights,
seed, NFE and text; the tests and the benchmark both use this one measure.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # the engine itself uses the guard (fp16 Vocos)
    from ishowtts_ros.engines.f5.engine import F5Engine

QUALITY_TOLERANCE = 2e-2


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    """‖got − want‖ / ‖want‖, computed in float64."""
    return float((got.double() - want.double()).norm() / want.double().norm())


def generated_mel(engine: F5Engine, text: str, nfe: int, seed: int, sway: float = -1.0) -> torch.Tensor:
    """The generated part of the mel for ``text`` as one chunk with the default voice."""
    options = engine.resolve_options({"nfe_step": nfe, "seed": seed, "sway_sampling_coef": sway})
    ref = engine.reference(engine.registry.get())
    request = engine.sample_request(ref, text, options)
    mel, durations = engine.sample_mels([request], options)
    return mel[0, ref.frames : durations[0]].double().cpu()


def mel_relative_error(
    candidate: F5Engine, reference: F5Engine, text: str, nfe: int, seed: int, sway: float = -1.0
) -> float:
    """‖candidate − reference‖ / ‖reference‖ over the generated mel; ``inf`` when the candidate is not finite."""
    got = generated_mel(candidate, text, nfe, seed, sway)
    want = generated_mel(reference, text, nfe, seed, sway)
    if not torch.isfinite(got).all():
        return math.inf
    return relative_error(got, want)
