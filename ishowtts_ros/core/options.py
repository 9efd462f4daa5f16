"""Typed synthesis options with ranges: one spec validates a request's value and describes the ROS parameter
(so rqt shows a slider), without importing torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ishowtts_ros.core.errors import EngineError


@dataclass(frozen=True)
class OptionSpec:
    """One tunable synthesis option with its type and valid range (used for validation and ROS descriptors)."""

    name: str
    kind: type
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    description: str = ""
    #: Shorter command-line flags kept for this option (``--nfe`` for ``nfe_step``).
    aliases: tuple[str, ...] = ()

    @property
    def flags(self) -> list[str]:
        """The command-line flags of this option: ``--nfe-step`` for ``nfe_step``, then the aliases."""
        return [f"--{name.replace('_', '-')}" for name in (self.name, *self.aliases)]

    @property
    def range_text(self) -> str:
        """``2 to 64``, or ``''`` when unbounded."""
        if self.minimum is None or self.maximum is None:
            return ""
        return f"{self.minimum:g} to {self.maximum:g}"

    def validate(self, value: Any) -> Any:
        """Return ``value`` coerced to the option's type, or raise :class:`EngineError` saying why it is refused."""
        if self.kind is int:
            value = self._integer(value)
        elif self.kind is float:
            value = self._number(value)
        if self.minimum is not None and value < self.minimum:
            raise EngineError(f"option {self.name}={value} is below the minimum {self.minimum}")
        if self.maximum is not None and value > self.maximum:
            raise EngineError(f"option {self.name}={value} is above the maximum {self.maximum}")
        return value

    def _integer(self, value: Any) -> int:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise EngineError(f"option {self.name} must be an integer, got {value!r}")
        return int(value)

    def _number(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise EngineError(f"option {self.name} must be a number, got {value!r}")
        if not np.isfinite(value):
            raise EngineError(f"option {self.name} must be finite, got {value!r}")
        return float(value)
