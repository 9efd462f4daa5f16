"""Synthesis options of each engine, with types and ranges: used for validation by the engines and for the ROS
parameter descriptors (so rqt shows sliders), without importing torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ishowtts_ros.errors import EngineError


@dataclass(frozen=True)
class OptionSpec:
    """One tunable synthesis option with its type and valid range (used for validation and ROS descriptors)."""

    name: str
    kind: type
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    description: str = ""

    def validate(self, value: Any) -> Any:
        """Return ``value`` coerced to the option's type, or raise :class:`EngineError` saying why it is refused."""
        if self.kind is int:
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                if isinstance(value, float) and value.is_integer():
                    value = int(value)
                else:
                    raise EngineError(f"option {self.name} must be an integer, got {value!r}")
            value = int(value)
        elif self.kind is float:
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise EngineError(f"option {self.name} must be a number, got {value!r}")
            value = float(value)
            if not np.isfinite(value):
                raise EngineError(f"option {self.name} must be finite, got {value!r}")
        if self.minimum is not None and value < self.minimum:
            raise EngineError(f"option {self.name}={value} is below the minimum {self.minimum}")
        if self.maximum is not None and value > self.maximum:
            raise EngineError(f"option {self.name}={value} is above the maximum {self.maximum}")
        return value


F5_OPTIONS = {
    "nfe_step": OptionSpec("nfe_step", int, 8, 2, 64, "flow steps (NFE): fewer is faster, more is cleaner"),
    "cfg_strength": OptionSpec("cfg_strength", float, 2.0, 0.0, 10.0, "classifier-free guidance strength"),
    "sway_sampling_coef": OptionSpec(
        "sway_sampling_coef", float, -1.0, -1.0, 1.0, "sway sampling: below 0 spends more steps early"
    ),
    "speed": OptionSpec("speed", float, 1.0, 0.3, 3.0, "speaking rate relative to the reference"),
    "seed": OptionSpec("seed", int, -1, -1, 2**31 - 1, "noise seed; -1 draws a new one per chunk"),
}
ESPEAK_OPTIONS = {"speed": OptionSpec("speed", float, 1.0, 0.3, 3.0, "speaking rate (1.0 = 175 words per minute)")}
