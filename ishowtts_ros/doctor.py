"""``ishowtts doctor``: one screen on what this machine can run and why, to paste into a bug report.

Each check is a :class:`Finding` (``ok``, ``warn``, ``fail`` or ``info``); the exit code is non-zero when the
configured engine cannot run here. A table on a terminal, plain lines when piped, ``--json`` for tools.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from ishowtts_ros.core.engine import EngineConfig
from ishowtts_ros.core.errors import EngineError
from ishowtts_ros.engines.arguments import add_engine_arguments, engine_config
from ishowtts_ros.engines.espeak import find_espeak

RCLPY_DISTROS = {3: "humble", 4: "iron", 7: "jazzy", 9: "kilted", 10: "rolling"}


@dataclass(frozen=True)
class Finding:
    check: str
    status: str  # ok | warn | fail | info
    detail: str


def version_of(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def python_findings() -> list[Finding]:
    return [Finding("python", "ok", f"{platform.python_version()} ({sys.executable})")]


def torch_findings() -> list[Finding]:
    if importlib.util.find_spec("torch") is None:
        return [
            Finding("torch", "warn", "not installed: only the espeak engine can run (pip install 'ishowtts_ros[f5]')")
        ]
    import torch

    found = [Finding("torch", "ok", torch.__version__)]
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        found.append(Finding("cuda", "ok", f"{torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}"))
        found.append(
            Finding("gpu", "ok", f"{props.name}, sm_{props.major}{props.minor}, {props.total_memory / 2**30:.1f} GiB")
        )
    else:
        found.append(Finding("cuda", "info", "no CUDA device: F5 runs on the CPU (slow); espeak is the fast choice"))
    triton = version_of("triton")
    found.append(
        Finding("triton", "ok", triton)
        if triton
        else Finding("triton", "warn" if torch.cuda.is_available() else "info", "not installed: no torch.compile")
    )
    return found


def compile_finding() -> Finding:
    """Whether torch.compile works here (a one-line function, on the device the engine would use)."""
    if importlib.util.find_spec("torch") is None:
        return Finding("torch.compile", "info", "no torch")
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        torch.compile(lambda x: x * 2 + 1)(torch.ones(4, device=device))
    except Exception as exc:  # any backend failure is the finding itself
        return Finding("torch.compile", "warn", f"fails on {device}: {type(exc).__name__}: {str(exc)[:160]}")
    return Finding("torch.compile", "ok", f"works on {device}")


def weights_findings(config: EngineConfig) -> list[Finding]:
    from ishowtts_ros.engines.f5.checkpoint import f5_unavailable_reason

    reason = f5_unavailable_reason(config.checkpoint, config.vocoder, config.vocab, config.model)
    hub = hub_cache()
    model = model_finding(config)
    if reason is None:
        return [Finding("f5 weights", "ok", f"found (checkpoint {config.checkpoint or 'hub'}; hub cache {hub})"), model]
    return [Finding("f5 weights", "warn", f"{reason}; looked in {hub}; get them with: ishowtts download"), model]


def model_finding(config: EngineConfig) -> Finding:
    """The F5 model the settings name, without loading it: its three settings, vocabulary size where the file is
    at hand, and the license its model card states."""
    from ishowtts_ros.engines.f5.cards import model_license
    from ishowtts_ros.engines.f5.checkpoint import ModelSpec

    try:
        spec = ModelSpec.parse(config.checkpoint, config.vocab, config.model)
    except ValueError as exc:
        return Finding("f5 model", "fail", str(exc))
    vocab = Path(spec.vocab) if spec.vocab and not spec.vocab.startswith("hf://") else None
    size = (
        f"; vocab of {len(vocab.read_text(encoding='utf-8').splitlines())} characters"
        if vocab and vocab.is_file()
        else ""
    )
    return Finding("f5 model", "info", f"{spec.settings}{size}; license: {model_license(spec)}")


def hub_cache() -> str:
    """Where huggingface_hub keeps downloads (it honours HF_HUB_CACHE, HF_HOME and XDG_CACHE_HOME)."""
    try:
        from huggingface_hub.constants import HF_HUB_CACHE
    except ImportError:  # no f5-tts, so no huggingface_hub: no hub weights to look for
        return "(huggingface_hub is not installed)"
    return HF_HUB_CACHE


def compile_cache_finding() -> Finding:
    from ishowtts_ros.engines.f5.cache import compile_cache_dir

    folder = Path(compile_cache_dir())
    warm = folder.is_dir() and any(folder.iterdir())
    detail = f"{folder}: " + ("warm (start-up reuses compiled kernels)" if warm else "cold (first start compiles)")
    return Finding("compile cache", "info", detail)


def espeak_finding() -> Finding:
    program = find_espeak()
    if program is None:
        return Finding("espeak-ng", "fail", "not installed: sudo apt-get install espeak-ng")
    return Finding("espeak-ng", "ok", program)


def audio_finding() -> Finding:
    try:
        import sounddevice

        outputs = [d["name"] for d in sounddevice.query_devices() if d["max_output_channels"] > 0]
    except Exception as exc:  # PortAudio missing or broken is what this reports
        return Finding("audio output", "warn", f"PortAudio unavailable ({exc}); topics work, playback does not")
    if not outputs:
        return Finding("audio output", "warn", "no output device: topics work, playback does not")
    return Finding("audio output", "ok", f"{len(outputs)} device(s): {', '.join(outputs[:3])}")


def ros_finding() -> Finding:
    rclpy = version_of("ros-rclpy") or version_of("rclpy")
    if rclpy is None and importlib.util.find_spec("rclpy") is None:
        return Finding("ros 2", "info", "rclpy not found: the node needs a ROS 2 install (the CLI and Wyoming work)")
    distro = os.environ.get("ROS_DISTRO") or (RCLPY_DISTROS.get(int(rclpy.split(".")[0]), "?") if rclpy else "?")
    return Finding("ros 2", "ok", f"rclpy {rclpy or '(system)'}, distro {distro}")


def wyoming_finding() -> Finding:
    version = version_of("wyoming")
    if version is None:
        return Finding("wyoming", "info", "not installed (pip install 'ishowtts_ros[wyoming]' for Home Assistant)")
    return Finding("wyoming", "ok", version)


def engine_finding(name: str, config: EngineConfig) -> Finding:
    """Which engine ``name`` resolves to here and whether it can run: the finding that sets the exit code."""
    from ishowtts_ros.engines.registry import choose_engine

    try:
        plugin, passed_over = choose_engine(name, config)
    except EngineError as exc:
        return Finding("engine", "fail", f"{name}: {exc}")
    problem = plugin.available(config)
    if problem:
        return Finding("engine", "fail", f"{name} -> {plugin.name} cannot run: {problem}")
    because = f" ({passed_over})" if passed_over else ""
    return Finding("engine", "ok", f"{name} -> {plugin.name}{because}")


def diagnose(name: str, config: EngineConfig, probe_compile: bool = True) -> list[Finding]:
    found = [*python_findings(), compile_cache_finding(), *torch_findings()]  # the cache before torch touches it
    found += [compile_finding()] if probe_compile else []
    found += [*weights_findings(config), espeak_finding(), audio_finding(), ros_finding(), wyoming_finding()]
    return [*found, engine_finding(name, config)]


def report(findings: list[Finding], as_json: bool) -> None:
    if as_json:
        print(json.dumps([asdict(f) for f in findings], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        for f in findings:
            print(f"{f.check}\t{f.status}\t{f.detail}")
        return
    table = Table(title="ishowtts doctor")
    for column in ("check", "status", "detail"):
        table.add_column(column, overflow="fold")
    colours = {"ok": "green", "warn": "yellow", "fail": "red", "info": "cyan"}
    for f in findings:
        table.add_row(f.check, f"[{colours[f.status]}]{f.status}[/]", f.detail)
    console.print(table)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ishowtts doctor", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--quick", action="store_true", help="skip the torch.compile probe (seconds to a minute)")
    add_engine_arguments(parser)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    findings = diagnose(args.engine, engine_config(args), probe_compile=not args.quick)
    report(findings, args.json)
    return 1 if findings[-1].status == "fail" else 0


if __name__ == "__main__":
    sys.exit(main())
