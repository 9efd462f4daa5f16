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

from ishowtts_ros.core.errors import EngineError
from ishowtts_ros.engines.arguments import add_engine_arguments, add_option_arguments, chosen_options, engine_config
from ishowtts_ros.engines.registry import create_engine, plugins

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2
console = Console(stderr=True)


def _say(args: argparse.Namespace) -> int:
    with console.status(f"loading engine {args.engine}..."):
        started = time.perf_counter()
        engine = create_engine(args.engine, engine_config(args))
        load_seconds = time.perf_counter() - started
    console.log(f"engine {engine.name} ready in {load_seconds:.1f} s ({engine.describe()})")
    options = chosen_options(args, engine)
    normalize = not args.no_normalize
    plan = engine.prepare(args.text, args.voice, options, normalize=normalize)
    console.log(f"speaking: {plan.spoken}")
    if plan.unsayable:
        console.log(f"[yellow]not in the model's vocabulary, so not spoken:[/] {' '.join(plan.unsayable)}")
    if args.dry_run:
        return EXIT_OK
    if args.warmup:
        with console.status("warming up..."):
            engine.warmup()
    with console.status("synthesizing...") as status:
        result = engine.synthesize_all(
            args.text,
            args.voice,
            options,
            on_chunk=lambda c: status.update(f"synthesizing... chunk {c.index + 1}: {c.duration:.2f} s of audio"),
            normalize=normalize,
        )
    from ishowtts_ros.core.audio import write_wav

    path = write_wav(args.out, result.samples, result.sample_rate)
    print(f"wrote {path}")
    print(f"engine:             {engine.name}")
    print(f"audio seconds:      {result.audio_seconds:.3f}")
    print(f"synthesis seconds:  {result.synth_seconds:.3f}")
    print(f"RTF:                {result.rtf:.4f}")
    print(f"time to first audio: {result.first_audio_seconds * 1000:.1f} ms")
    if args.play:
        _play(result.samples, result.sample_rate)
    return EXIT_OK


def _play(samples, sample_rate: int) -> None:
    try:
        import sounddevice

        sounddevice.play(samples, sample_rate, blocking=True)
    except Exception as exc:
        console.log(f"[yellow]warning:[/] could not play audio ({exc}); the WAV file was written")


def _normalize(args: argparse.Namespace) -> int:
    """Prints exactly the text an engine speaks for TEXT: in the voice's language, or in ``--language``."""
    from ishowtts_ros.core.frontend import speakable
    from ishowtts_ros.core.text import EMPTY_TEXT, normalize_text
    from ishowtts_ros.core.voices import VoiceRegistry

    language = args.language or VoiceRegistry.load(args.voices_file).get(args.voice).language
    spoken = speakable(normalize_text(args.text), language)
    if not spoken:
        raise EngineError(EMPTY_TEXT)
    print(spoken)
    return EXIT_OK


def _voices(args: argparse.Namespace) -> int:
    """Lists voices as a table on a terminal and as tab-separated lines when piped, never cutting a path short."""
    from ishowtts_ros.core.voices import VoiceRegistry

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
    say.add_argument("--out", type=Path, default=Path("ishowtts.wav"), help="output WAV (default ishowtts.wav)")
    say.add_argument("--play", action="store_true", help="also play it on the default audio device")
    say.add_argument(
        "--dry-run", action="store_true", help="only print what would be said (and what the model cannot say)"
    )
    say.add_argument("--warmup", action="store_true", help="warm up first, so the timing shows steady state")
    say.add_argument(
        "--no-normalize", action="store_true", help="speak the text as written (no numbers, units or symbols as words)"
    )
    add_engine_arguments(say)
    add_option_arguments(say)
    say.set_defaults(handler=_say)

    normalize = commands.add_parser("normalize", help="print the text exactly as it will be spoken")
    normalize.add_argument("text")
    normalize.add_argument("--language", default=None, help="en, zh, ... (default: the voice's language)")
    normalize.add_argument("--voice", default=None, help="voice whose language decides (default: the default voice)")
    normalize.add_argument("--voices-file", type=Path, default=None)
    normalize.set_defaults(handler=_normalize)

    voices = commands.add_parser("voices", help="list the voices of a voices file")
    voices.add_argument("--voices-file", type=Path, default=None)
    voices.set_defaults(handler=_voices)

    for name, help_text, module in (
        ("bench", "benchmark the engine against upstream f5-tts", "ishowtts_ros.bench.run"),
        ("wyoming", "serve the engine to Home Assistant over the Wyoming protocol", "ishowtts_ros.wyoming.server"),
        ("doctor", "what this machine can run and why (paste it into a bug report)", "ishowtts_ros.doctor"),
        ("download", "fetch the F5 checkpoint and the vocoder (or prepare an offline copy)", "ishowtts_ros.download"),
    ):
        sub = commands.add_parser(name, help=help_text, add_help=False)
        sub.set_defaults(delegate=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv and argv[0] in ("bench", "wyoming", "doctor", "download"):
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
            for plugin in plugins().values():
                console.print(f"  {plugin.name}: {plugin.summary}")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
