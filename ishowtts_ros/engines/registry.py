"""Engines by name: the ``ishowtts_ros.engines`` entry points (in the spirit of Home Assistant's TTS platforms),
plus ``auto``, which picks F5 when its weights are at hand and espeak otherwise.

``$ISHOWTTS_EXTRA_ENGINES`` (``name=module:Class,...``) adds engines that are not installed as entry points: the
tests register their fault-injecting engine this way, so users never see it.
"""

from __future__ import annotations

import importlib
import logging
import os
from importlib.metadata import entry_points

from ishowtts_ros.core.engine import Engine, EngineConfig
from ishowtts_ros.core.errors import EngineError

LOG = logging.getLogger(__name__)
ENTRY_POINT_GROUP = "ishowtts_ros.engines"
EXTRA_ENGINES_ENV = "ISHOWTTS_EXTRA_ENGINES"


def available_engines() -> dict[str, str]:
    """Installed engines by name, each as its ``module:Class`` target."""
    found = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    for entry in os.environ.get(EXTRA_ENGINES_ENV, "").split(","):
        name, _, target = entry.partition("=")
        if name.strip() and target.strip():
            found[name.strip()] = target.strip()
    return found


def resolve_auto(config: EngineConfig) -> tuple[str, str | None]:
    """The engine ``auto`` means for ``config``, and why F5 was not chosen (``None`` when it was)."""
    from ishowtts_ros.engines.f5.checkpoint import f5_unavailable_reason

    reason = f5_unavailable_reason(config.checkpoint, config.vocoder)
    if reason is None and "f5" in available_engines():
        return "f5", None
    return "espeak", reason or "the f5 engine is not installed"


def create_engine(name: str, config: EngineConfig | None = None) -> Engine:
    """Create an engine by name; ``auto`` picks f5 when a checkpoint is at hand, else espeak (with a warning)."""
    config = config or EngineConfig()
    engines = available_engines()
    if name == "auto":
        name, reason = resolve_auto(config)
        if reason is not None:
            LOG.warning(
                "engine auto: using espeak because F5-TTS is not ready: %s. To use F5, set checkpoint to a local "
                "model_1250000.safetensors (and vocoder to a local vocos-mel-24khz folder) or download them once "
                "while online (huggingface SWivid/F5-TTS).",
                reason,
            )
    if name not in engines:
        known = ", ".join(sorted(engines)) + ", auto"
        raise EngineError(f"unknown engine {name!r}; available: {known}")
    module_name, _, class_name = engines[name].partition(":")
    engine_cls = getattr(importlib.import_module(module_name), class_name)
    return engine_cls(config)
