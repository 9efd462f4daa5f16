"""F5's synthesis options and start-up settings, torch-free: the node declares its ROS parameters from
:data:`F5_OPTIONS` and validates settings before any model is built."""

from __future__ import annotations

from dataclasses import dataclass, fields

from ishowtts_ros.core.engine import EngineConfig
from ishowtts_ros.core.errors import EngineError
from ishowtts_ros.core.options import OptionSpec

F5_OPTIONS = {
    "nfe_step": OptionSpec(
        "nfe_step", int, 8, 2, 64, "flow steps (NFE): fewer is faster, more is cleaner", aliases=("nfe",)
    ),
    "cfg_strength": OptionSpec("cfg_strength", float, 2.0, 0.0, 10.0, "classifier-free guidance strength"),
    "sway_sampling_coef": OptionSpec(
        "sway_sampling_coef", float, -1.0, -1.0, 1.0, "sway sampling: below 0 spends more steps early"
    ),
    "speed": OptionSpec("speed", float, 1.0, 0.3, 3.0, "speaking rate relative to the reference"),
    "seed": OptionSpec("seed", int, -1, -1, 65535, "noise seed for repeatable speech; -1 draws a new one per chunk"),
}

#: How padded keys are kept out of attention on CUDA (see :mod:`.attention`).
ATTENTION_KINDS = ("auto", "lse", "sdpa", "varlen")
#: How the positional convolutions run inside captured graphs (see :mod:`.kernels.position_conv`).
POSITION_CONV_KINDS = ("auto", "triton", "cudnn")
VOCODER_PRECISIONS = ("auto", "fp32", "fp16")


@dataclass
class F5Config(EngineConfig):
    """:class:`EngineConfig` plus the F5 engine's own start-up choices (``None``/``auto``: pick for the device)."""

    cuda_graphs: bool | None = None
    attention: str = "auto"
    position_conv: str = "auto"
    max_batch: int | None = None  # concurrent chunks per forward pass (default: 1 with graphs, else 4)
    vocoder_precision: str = "auto"  # Vocos backbone: auto (fp16 on CUDA where the quality guard holds), fp32, fp16

    @classmethod
    def from_config(cls, config: EngineConfig | None) -> F5Config:
        if isinstance(config, F5Config):
            return config
        base = config or EngineConfig()
        return cls(**{f.name: getattr(base, f.name) for f in fields(EngineConfig)})

    def validate(self) -> None:
        """Refuse unknown kinds when the engine is built, not at warm-up."""
        if self.attention not in ATTENTION_KINDS:
            raise EngineError(f"attention must be one of {', '.join(ATTENTION_KINDS)}, not {self.attention!r}")
        if self.position_conv not in POSITION_CONV_KINDS:
            kinds = ", ".join(POSITION_CONV_KINDS)
            raise EngineError(f"position_conv must be one of {kinds}, not {self.position_conv!r}")
        if self.vocoder_precision not in VOCODER_PRECISIONS:
            kinds = ", ".join(VOCODER_PRECISIONS)
            raise EngineError(f"vocoder_precision must be one of {kinds}, not {self.vocoder_precision!r}")
        if self.max_batch is not None and self.max_batch < 1:
            raise EngineError(f"max_batch must be at least 1, not {self.max_batch}")
