"""Engine settings as command-line arguments: one path from flags to an :class:`EngineConfig` for every command
that builds an engine (``ishowtts say``, ``wyoming``, ``bench``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ishowtts_ros.core.engine import EngineConfig

CHECKPOINT_HELP = "F5 checkpoint: local .safetensors/.pt, 'hub' (default) or random:<arch>"


def add_engine_arguments(
    parser: argparse.ArgumentParser, choose_engine: bool = True, checkpoint_help: str = CHECKPOINT_HELP
) -> None:
    """Engine settings shared by every subcommand that builds an engine (``choose_engine``: also ``--engine``)."""
    group = parser.add_argument_group("engine")
    if choose_engine:
        group.add_argument("--engine", default="auto", help="f5, espeak or auto (f5 when its checkpoint is at hand)")
    group.add_argument("--voices-file", type=Path, default=None, help="voices YAML (default: config/voices.yaml)")
    group.add_argument("--device", default="auto", help="auto, cuda, cuda:N or cpu")
    group.add_argument("--precision", default="auto", help="auto, fp32, fp16 or bf16")
    group.add_argument("--checkpoint", default="", help=checkpoint_help)
    group.add_argument("--vocoder", default="", help="local vocos-mel-24khz folder, '' for the hub, or 'random'")
    group.add_argument("--no-compile", action="store_true", help="skip torch.compile on CUDA (faster start)")


def engine_config(args: argparse.Namespace) -> EngineConfig:
    """The engine settings ``args`` (from :func:`add_engine_arguments`) describe."""
    return EngineConfig(
        voices_file=args.voices_file,
        device=args.device,
        precision=args.precision,
        checkpoint=args.checkpoint,
        vocoder=args.vocoder,
        compile=False if args.no_compile else None,
    )
