"""What every front door knows of an engine before building it: its name, its options, whether it can run with the
given settings, and where its class is. Reading it imports neither the engine nor torch, so the node declares its
ROS parameters (with ranges), the CLI and the Wyoming server their flags, and ``auto`` picks an engine in
milliseconds, from one description per engine.

An engine package registers an :class:`EnginePlugin` (or, more simply, its :class:`Engine` subclass, which is then
imported to read the same facts) under the ``ishowtts_ros.engines`` entry point group.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ishowtts_ros.core.engine import Engine, EngineConfig
from ishowtts_ros.core.errors import EngineError
from ishowtts_ros.core.options import OptionSpec

Unavailable = Callable[[EngineConfig], "str | None"]


def _always_available(config: EngineConfig) -> str | None:
    return None


@dataclass(frozen=True)
class EnginePlugin:
    """One engine as the registry lists it (torch-free)."""

    name: str
    #: ``"module:Class"`` of the :class:`Engine` subclass; imported only when an engine is built.
    engine_class: str
    #: The engine's synthesis options: the node's live parameters, the CLI's and Wyoming server's flags.
    options: Mapping[str, OptionSpec] = field(default_factory=dict)
    summary: str = ""
    #: Why the engine cannot run with a configuration (weights missing, program not installed), or None if it can.
    unavailable: Unavailable = _always_available
    #: ``auto`` takes the available engine with the highest rank; None: never chosen by ``auto``.
    auto_rank: int | None = None

    def available(self, config: EngineConfig) -> str | None:
        """None when the engine can run with ``config``, else why not (cheap: no model is loaded)."""
        return self.unavailable(config)

    def load(self) -> type[Engine]:
        """The engine class (this imports the engine's module, torch and all)."""
        module_name, _, class_name = self.engine_class.partition(":")
        try:
            engine_class = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as exc:
            raise EngineError(f"engine {self.name!r} cannot be imported from {self.engine_class}: {exc}") from exc
        if not (isinstance(engine_class, type) and issubclass(engine_class, Engine)):
            raise EngineError(f"engine {self.name!r}: {self.engine_class} is not an Engine subclass")
        return engine_class

    @classmethod
    def of_class(cls, name: str, engine_class: type[Engine]) -> EnginePlugin:
        """The plugin an :class:`Engine` subclass registered directly describes (its class attributes)."""
        return cls(
            name=name,
            engine_class=f"{engine_class.__module__}:{engine_class.__qualname__}",
            options=engine_class.supported_options,
            summary=(engine_class.__doc__ or "").strip().splitlines()[0] if engine_class.__doc__ else "",
            unavailable=engine_class.available,
        )

    @classmethod
    def of(cls, name: str, target: Any) -> EnginePlugin:
        """The plugin an entry point's target is: an :class:`EnginePlugin` (named ``name``) or an Engine class."""
        if isinstance(target, EnginePlugin):
            return target if target.name == name else replace(target, name=name)
        if isinstance(target, type) and issubclass(target, Engine):
            return cls.of_class(name, target)
        raise EngineError(f"engine {name!r}: {target!r} is neither an EnginePlugin nor an Engine subclass")
