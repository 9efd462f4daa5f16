"""Engines by name: the ``ishowtts_ros.engines`` entry points (in the spirit of Home Assistant's TTS platforms),
each an :class:`EnginePlugin` read without importing the engine, plus ``auto``: the available engine of highest
rank (F5 when its weights are at hand, else espeak).

``$ISHOWTTS_EXTRA_ENGINES`` (``name=module:attribute,...``) adds engines that are not installed as entry points: the
tests register their fault-injecting engine this way, so users never see it.
"""

from __future__ import annotations

import importlib
import logging
import os
from importlib.metadata import entry_points
from typing import Any

from ishowtts_ros.core.engine import Engine, EngineConfig
from ishowtts_ros.core.errors import EngineError
from ishowtts_ros.core.options import OptionSpec
from ishowtts_ros.core.plugin import EnginePlugin

LOG = logging.getLogger(__name__)
ENTRY_POINT_GROUP = "ishowtts_ros.engines"
EXTRA_ENGINES_ENV = "ISHOWTTS_EXTRA_ENGINES"
AUTO = "auto"


def available_engines() -> dict[str, str]:
    """Installed engines by name, each as its entry point's ``module:attribute`` target."""
    found = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    for entry in os.environ.get(EXTRA_ENGINES_ENV, "").split(","):
        name, _, target = entry.partition("=")
        if name.strip() and target.strip():
            found[name.strip()] = target.strip()
    return found


def _load_target(target: str) -> Any:
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def plugins() -> dict[str, EnginePlugin]:
    """Every installed engine's plugin by name; one that cannot be read is left out with a warning."""
    found: dict[str, EnginePlugin] = {}
    for name, target in available_engines().items():
        try:
            found[name] = EnginePlugin.of(name, _load_target(target))
        except Exception as exc:  # a broken third-party package must not take the others down
            LOG.warning("engine %s (%s) is left out: %s", name, target, exc)
    return found


def all_options() -> dict[str, tuple[OptionSpec, list[str]]]:
    """Every installed engine's options, each with the engines that take it (the first to name an option gives its
    spec): the command-line flags of ``ishowtts say`` and ``ishowtts wyoming``."""
    options: dict[str, tuple[OptionSpec, list[str]]] = {}
    for plugin in plugins().values():
        for name, spec in plugin.options.items():
            options.setdefault(name, (spec, []))[1].append(plugin.name)
    return options


def choose_engine(name: str, config: EngineConfig) -> tuple[EnginePlugin, str | None]:
    """The plugin ``name`` means with ``config``, and for ``auto`` why an engine ranked higher was passed over
    (None when the best one was available). Unknown names raise :class:`EngineError` listing the installed ones."""
    found = plugins()
    if name != AUTO:
        if name not in found:
            known = ", ".join([*sorted(found), AUTO])
            raise EngineError(f"unknown engine {name!r}; available: {known}")
        return found[name], None
    ranked = sorted((p for p in found.values() if p.auto_rank is not None), key=lambda p: -(p.auto_rank or 0))
    passed_over: list[str] = []
    for plugin in ranked:
        reason = plugin.available(config)
        if reason is None:
            return plugin, "; ".join(passed_over) or None
        passed_over.append(f"{plugin.name} is not ready: {reason}")
    raise EngineError("engine auto: no installed engine can run here (" + ("; ".join(passed_over) or "none") + ")")


def create_engine(name: str, config: EngineConfig | None = None) -> Engine:
    """Create an engine by name; ``auto`` takes the best available one and warns about the ones passed over."""
    config = config or EngineConfig()
    plugin, passed_over = choose_engine(name, config)
    if passed_over:
        LOG.warning("engine auto: using %s because %s", plugin.name, passed_over)
    return plugin.load()(config)
