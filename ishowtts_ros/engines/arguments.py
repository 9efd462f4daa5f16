"""Engine settings and synthesis options as command-line arguments: one path from flags to an
:class:`EngineConfig` and an options dict for every command that builds an engine (``ishowtts say``, ``wyoming``,
``bench``). The option flags come from the installed engines' specs, so a plugin's own option gets its flag."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from ishowtts_ros.core.engine import Engine, EngineConfig
from ishowtts_ros.engines.registry import all_options

LOG = logging.getLogger(__name__)
CHECKPOINT_HELP = "F5 checkpoint: local .safetensors/.pt, 'hub' (default) or random:<arch>"
OPTION_PREFIX = "option_"  # argparse destinations of the option flags, apart from the commands' own arguments


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
    group.add_argument(
        "--vocab", default="", help="the checkpoint's vocab.txt (default: one beside it, else upstream's)"
    )
    group.add_argument(
        "--model", default="", help="architecture: F5TTS_v1_Base (default), F5TTS_Base, F5TTS_Small... or the model "
        "card's config dict",
    )  # fmt: skip
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
        vocab=args.vocab,
        model=args.model,
    )


def add_option_arguments(parser: argparse.ArgumentParser, purpose: str = "") -> None:
    """A flag for each synthesis option of the installed engines (``--nfe-step``/``--nfe``, ``--speed``, a
    plugin's own), with its range; unset flags leave the engine's default."""
    group = parser.add_argument_group("synthesis options" + (f" ({purpose})" if purpose else ""))
    for name, (spec, engines) in all_options().items():
        text = ", ".join(part for part in (spec.range_text, "engines: " + ", ".join(engines)) if part)
        try:
            group.add_argument(
                *spec.flags,
                dest=OPTION_PREFIX + name,
                type=spec.kind if spec.kind in (int, float, str) else str,
                default=None,
                metavar=spec.kind.__name__.upper(),
                help=f"{spec.description} ({text})",
            )
        except argparse.ArgumentError as exc:  # a plugin's option named like one of the command's own flags
            LOG.warning("option %s of %s has no flag here: %s", name, ", ".join(engines), exc)


def chosen_options(args: argparse.Namespace, engine: Engine) -> dict[str, Any]:
    """The options set on the command line that ``engine`` takes; one it does not take is named in a warning and
    left out (``--engine auto`` may have fallen back to an engine with fewer options)."""
    chosen: dict[str, Any] = {}
    for key, value in vars(args).items():
        if not key.startswith(OPTION_PREFIX) or value is None:
            continue
        name = key[len(OPTION_PREFIX) :]
        if name in engine.supported_options:
            chosen[name] = value
        else:
            LOG.warning("engine %s has no option %s: --%s is ignored", engine.name, name, name.replace("_", "-"))
    return chosen
