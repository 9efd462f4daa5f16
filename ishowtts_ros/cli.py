"""``ishowtts``: synthesize from the command line, list voices, benchmark, serve Wyoming.

Exit codes: 0 success, 2 bad input or configuration (the message says what to change), 1 unexpected failure.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from ishowtts_ros.engine import EngineConfig, available_engines, create_engine
from ishowtts_ros.errors import EngineError

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2
console = Console(stderr=True)


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """Engine settings shared by every subcommand that synthesizes."""
    group = parser.add_argument_group("engine")
    group.add_argument("--engine", default="auto", help="f5, espeak or auto (f5 when its checkpoint is at hand)")
    group.add_argument("--voices-file", type=Path, default=None, help="voices YAML (default: config/voices.yaml)")
    group.add_argument("--device", default="auto", help="auto, cuda, cuda:N or cpu")
    group.add_argument("--precision", default="auto", help="auto, fp32, fp16 or bf16")
    group.add_argument(
        "--checkpoint", default="", help="F5 checkpoint: local .safetensors/.pt, 'hub' (default) or random:<arch>"
    )
    group.add_argument("--vocoder", default="", help="local vocos-mel-24khz folder, '' for the hub, or 'random'")
    group.add_argument("--no-compile", action="store_true", help="skip torch.compile on CUDA (faster start)")


def engine_config(args: argparse.Namespace) -> EngineConfig:
    return EngineConfig(
        voices_file=args.voices_file,
        device=args.device,
        precision=args.precision,
        checkpoint=args.checkpoint,
        vocoder=args.vocoder,
        compile=False if args.no_compile else None,
    )


def _say(args: argparse.Namespace) -> int:
    with console.status(f"loading engine {args.engine}..."):
        started = time.perf_counter()
        engine = create_engine(args.engine, engine_config(args))
        load_seconds = time.perf_counter() - started
    console.log(f"engine {engine.name} ready in {load_seconds:.1f} s ({engine.describe()})")
    options = engine.supported_subset({"nfe_step": args.nfe, "seed": args.seed, "speed": args.speed})
    if args.warmup:
        with console.status("warming up..."):
            engine.warmup()
    started = time.perf_counter()
    chunks = []
    first_audio = 0.0
    with console.status("synthesizing...") as status:
        for chunk in engine.synthesize(args.text, args.voice, options):
            if not chunks:
                first_audio = time.perf_counter() - started
            chunks.append(chunk)
            status.update(f"synthesizing... chunk {chunk.index + 1}: {chunk.duration:.2f} s of audio")
    synth_seconds = time.perf_counter() - started
    import numpy as np

    from ishowtts_ros.audio import write_wav

    samples = np.concatenate([c.samples for c in chunks])
    audio_seconds = len(samples) / engine.sample_rate
    path = write_wav(args.out, samples, engine.sample_rate)
    print(f"wrote {path}")
    print(f"engine:             {engine.name}")
    print(f"audio seconds:      {audio_seconds:.3f}")
    print(f"synthesis seconds:  {synth_seconds:.3f}")
    print(f"RTF:                {synth_seconds / audio_seconds:.4f}")
    print(f"time to first audio: {first_audio * 1000:.1f} ms")
    if args.play:
        _play(samples, engine.sample_rate)
    return EXIT_OK


def _play(samples, sample_rate: int) -> None:
    try:
        import sounddevice

        sounddevice.play(samples, sample_rate, blocking=True)
    except Exception as exc:
        console.log(f"[yellow]warning:[/] could not play audio ({exc}); the WAV file was written")


def _voices(args: argparse.Namespace) -> int:
    """Lists voices as a table on a terminal and as tab-separated lines when piped, never cutting a path short."""
    from ishowtts_ros.voices import VoiceRegistry

    registry = VoiceRegistry.load(args.voices_file)
    rows = []
    for voice in registry.voices():
        try:
            path = voice.audio_path()
            status = str(path) if path.is_file() else f"missing: {path}"
        except EngineError as exc:
            status = str(exc)
        name = f"{voice.name} (default)" if voice.name == registry.default else voice.name
        rows.append((name, voice.language, voice.description, status))
    console = Console()
    if not console.is_terminal:
        for row in rows:
            print("\t".join(row))
        return EXIT_OK
    table = Table(title=f"voices in {registry.source}")
    for column in ("name", "language", "description", "reference audio"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ishowtts", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)

    say = commands.add_parser("say", help="synthesize text to a WAV file")
    say.add_argument("text")
    say.add_argument("--voice", default=None, help="voice name from the voices file (default: its default voice)")
    say.add_argument("--nfe", type=int, default=None, help="flow steps, 2-64 (f5 only)")
    say.add_argument("--seed", type=int, default=None, help="noise seed for repeatable output (f5 only)")
    say.add_argument("--speed", type=float, default=None, help="speaking rate, 0.3-3.0")
    say.add_argument("--out", type=Path, default=Path("ishowtts.wav"), help="output WAV (default ishowtts.wav)")
    say.add_argument("--play", action="store_true", help="also play it on the default audio device")
    say.add_argument("--warmup", action="store_true", help="warm up first, so the timing shows steady state")
    add_engine_arguments(say)
    say.set_defaults(handler=_say)

    voices = commands.add_parser("voices", help="list the voices of a voices file")
    voices.add_argument("--voices-file", type=Path, default=None)
    voices.set_defaults(handler=_voices)

    for name, help_text, module in (
        ("bench", "benchmark the engine against upstream f5-tts", "ishowtts_ros.bench"),
        ("wyoming", "serve the engine to Home Assistant over the Wyoming protocol", "ishowtts_ros.wyoming_server"),
    ):
        sub = commands.add_parser(name, help=help_text, add_help=False)
        sub.set_defaults(delegate=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv and argv[0] in ("bench", "wyoming"):
        import importlib

        module = importlib.import_module(parser.parse_args(argv[:1]).delegate)
        return module.main(argv[1:])
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False)],
    )
    try:
        return args.handler(args)
    except EngineError as exc:
        console.print(f"[red]error:[/] {exc}")
        if "unknown engine" in str(exc):
            console.print(f"installed engines: {', '.join(sorted(available_engines()))}")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
