"""``ishowtts bench``: upstream f5-tts and this engine side by side, same weights, texts and NFE, one process.

Upstream runs through ``f5_tts.infer.utils_infer.infer_batch_process`` in fp16 as upstream loads it on CUDA; the
engine through :class:`~ishowtts_ros.engines.f5.engine.F5Engine`, the code the node and the Wyoming server use.
Prints a markdown table (RTF, synth time, time to first audio, per-step ms vs the compute floor, peak memory,
speedup) and writes JSON and a PNG plot. On a CPU it runs a tiny-model smoke version (no timing claims).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import functools
import gc
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import Progress

from ishowtts_ros.bench.report import markdown, plot
from ishowtts_ros.bench.workloads import (
    STARTUP_EPOCH,
    TEXTS,
    Runner,
    concurrency,
    dit_flops,
    engine_runner,
    matmul_tflops,
    median_runs,
    startup_seconds,
    step_time,
    streaming_gaps,
    upstream_runner,
    write_model_files,
)
from ishowtts_ros.core.engine import EngineConfig
from ishowtts_ros.engines.arguments import add_engine_arguments, engine_config
from ishowtts_ros.engines.f5.engine import F5Engine
from ishowtts_ros.engines.f5.models import load_models
from ishowtts_ros.engines.f5.quality import QUALITY_TOLERANCE, mel_relative_error
from ishowtts_ros.engines.f5.reference import HOP_LENGTH, SAMPLE_RATE

LOG = logging.getLogger(__name__)
console = Console(stderr=True)


@dataclass
class Row:
    """One measured configuration."""

    impl: str
    text: str
    nfe: int
    synth_s: float
    audio_s: float
    ttfa_s: float
    rtf: float
    step_ms: float = float("nan")
    floor_step_ms: float = float("nan")
    peak_mem_gib: float = float("nan")
    speedup: float = float("nan")
    runs: list[float] = field(default_factory=list)


def config_for(args: argparse.Namespace, precision: str, compile_: bool | None = None) -> EngineConfig:
    """The benchmark's engine settings at ``precision`` (``compile_`` overrides ``--no-compile``)."""
    config = dataclasses.replace(engine_config(args), precision=precision)
    return config if compile_ is None else dataclasses.replace(config, compile=compile_)


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    args.device = str(device)
    peak = matmul_tflops(device)
    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "checkpoint": args.checkpoint,
        "smoke": device.type == "cpu",
        "command": "ishowtts bench " + " ".join(args.argv),
        "matmul_tflops": peak,
    }
    console.log(f"{report['device']}, torch {torch.__version__}, matmul {peak:.0f} TFLOP/s")
    cfm, vocoder = load_models(args.checkpoint, args.vocoder)
    texts = {name: TEXTS[name] for name in args.texts}
    rows = measure_engine(args, report, (cfm, vocoder), texts, peak)
    gc.collect()  # drop the engine's GPU memory before upstream loads
    if device.type == "cuda":
        torch.cuda.empty_cache()
    if args.quality:
        report["quality"] = quality(args, cfm, vocoder)
    if not args.no_upstream:
        rows += measure_upstream(args, (cfm, vocoder), texts, device)
        report["upstream_default"] = add_speedups(rows, max(args.upstream_nfe))
    report["rows"] = [asdict(r) for r in rows]
    report["frames_per_second"] = SAMPLE_RATE / HOP_LENGTH
    return report


def measure_engine(
    args: argparse.Namespace, report: dict[str, Any], models: tuple[Any, Any], texts: dict[str, str], peak: float
) -> list[Row]:
    """The engine's rows (and its warm-up, streaming and concurrency figures in ``report``)."""
    cfm, vocoder = models
    engine = F5Engine(config_for(args, args.precision), models=(copy.deepcopy(cfm), copy.deepcopy(vocoder)))
    device = engine.device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    engine.warmup()
    ready_s = time.perf_counter() - started
    engine.wait_compiled()  # figures below are of the compiled engine; what it serves before is --startup's
    report["engine"] = {**engine.describe(), "warmup_s": ready_s, "compiled_s": time.perf_counter() - started}
    floor = functools.partial(floor_seconds, dit_dims(cfm), peak)
    rows = [
        _engine_row(args, engine, name, text, nfe, floor) for name, text, nfe in _progress("engine", texts, args.nfe)
    ]
    if device.type == "cuda":
        report["engine_peak_mem_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
        report["engine_peak_reserved_gib"] = torch.cuda.max_memory_reserved(device) / 2**30
        for row in rows:
            row.peak_mem_gib = report["engine_peak_mem_gib"]
    report["streaming"] = streaming_gaps(engine, TEXTS["long"], args.nfe[0])
    if args.streams > 1:
        report["concurrency"] = concurrency(engine, TEXTS["medium"], args.nfe[0], args.streams)
    engine.close()
    return rows


def dit_dims(cfm: Any) -> dict[str, int]:
    """The DiT's width, depth and feed-forward multiple, read from upstream's model (the engine adapts a copy)."""
    dit = cfm.transformer
    return {
        "dim": dit.dim,
        "depth": dit.depth,
        "ff_mult": dit.transformer_blocks[0].ff.ff[0][0].out_features // dit.dim,
    }


def floor_seconds(dims: dict[str, int], peak_tflops: float, frames: int) -> float:
    """The compute floor of one CFG DiT forward over ``frames`` at the measured matmul rate."""
    return dit_flops(frames, **dims) / (peak_tflops * 1e12)


def _engine_row(
    args: argparse.Namespace, engine: F5Engine, name: str, text: str, nfe: int, floor_of: Callable[[int], float]
) -> Row:
    runs = median_runs(lambda: engine_runner(engine)(text, nfe), args.warmup, args.reps)
    synth = statistics.median(r[0] for r in runs)
    per_step, frames = step_time(engine, text, nfe, max(1, args.reps // 2))
    floor = floor_of(frames)
    return Row(
        "engine",
        name,
        nfe,
        synth,
        runs[0][1],
        statistics.median(r[2] for r in runs),
        synth / runs[0][1],
        step_ms=per_step * 1e3,
        floor_step_ms=floor * 1e3,
        runs=[r[0] for r in runs],
    )


def measure_upstream(
    args: argparse.Namespace, models: tuple[Any, Any], texts: dict[str, str], device: torch.device
) -> list[Row]:
    """Upstream's rows: its own inference function on copies of the same weights."""
    run_upstream = _upstream(args, models, device)
    rows = []
    for name, text, nfe in _progress("upstream", texts, args.upstream_nfe):
        runs = median_runs(functools.partial(run_upstream, text, nfe), 1, max(3, args.reps // 2))
        synth = statistics.median(r[0] for r in runs)
        rows.append(Row("upstream", name, nfe, synth, runs[0][1], synth, synth / runs[0][1]))
    return rows


def _upstream(args: argparse.Namespace, models: tuple[Any, Any], device: torch.device) -> Runner:
    import soundfile as sf

    from ishowtts_ros.core.voices import VoiceRegistry

    cfm, vocoder = models
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    upstream = copy.deepcopy(cfm).to(dtype).to(device).eval()
    if args.upstream_compile:
        for block in upstream.transformer.transformer_blocks:
            block.compile(dynamic=False)
    voice = VoiceRegistry.load().get()
    wave, rate = sf.read(str(voice.audio_path()), dtype="float32")
    upstream_vocoder = copy.deepcopy(vocoder).to(device).eval()
    return upstream_runner(upstream, upstream_vocoder, device, torch.from_numpy(wave)[None], rate, voice.text)


def add_speedups(rows: list[Row], default_nfe: int) -> dict[str, float]:
    """Set each engine row's speedup over upstream at the same text and NFE; upstream's RTF at its default NFE."""
    upstream_rtf = {(r.text, r.nfe): r.rtf for r in rows if r.impl == "upstream"}
    for row in rows:
        if row.impl == "engine" and (row.text, row.nfe) in upstream_rtf:
            row.speedup = upstream_rtf[(row.text, row.nfe)] / row.rtf
    return {text: rtf for (text, nfe), rtf in upstream_rtf.items() if nfe == default_nfe}


def _progress(label: str, texts: dict[str, str], nfes: list[int]):
    """(text name, text, NFE) for every configuration, with a progress bar."""
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(label, total=len(texts) * len(nfes))
        for name, text in texts.items():
            for nfe in nfes:
                yield name, text, nfe
                progress.advance(task)


def quality(args: argparse.Namespace, cfm: Any, vocoder: Any) -> dict[str, float]:
    """Mel relative error of each reduced precision against the fp32 engine (same weights, seed, NFE)."""
    fp32 = F5Engine(config_for(args, "fp32", compile_=False), models=(copy.deepcopy(cfm), copy.deepcopy(vocoder)))
    errors = {}
    for precision in args.quality:
        candidate = F5Engine(config_for(args, precision), models=(copy.deepcopy(cfm), copy.deepcopy(vocoder)))
        errors[precision] = mel_relative_error(candidate, fp32, TEXTS["medium"], nfe=args.nfe[0], seed=4)
        candidate.close()
    fp32.close()
    return errors


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ishowtts bench", description=__doc__.splitlines()[0])
    add_engine_arguments(
        parser, choose_engine=False, checkpoint_help="default: random:F5TTS_v1_Base on CUDA, random:tiny on CPU"
    )
    parser.add_argument("--nfe", type=lambda s: [int(x) for x in s.split(",")], default=None)
    parser.add_argument("--upstream-nfe", type=lambda s: [int(x) for x in s.split(",")], default=None)
    parser.add_argument("--texts", type=lambda s: s.split(","), default=list(TEXTS))
    parser.add_argument("--reps", type=int, default=5, help="timed runs per configuration (median reported)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--streams", type=int, default=4, help="concurrent requests for the throughput test")
    parser.add_argument("--quality", type=lambda s: s.split(",") if s else [], default=None)
    parser.add_argument("--no-upstream", action="store_true")
    parser.add_argument("--upstream-compile", action="store_true", help="also torch.compile upstream's DiT blocks")
    parser.add_argument("--startup", action="store_true", help="only time load+compile+warm-up, twice, in subprocesses")
    parser.add_argument("--startup-warm-runs", type=int, default=1, help="fresh processes timed with the warm cache")
    parser.add_argument(
        "--startup-files", action="store_true", help="--startup reads the random model from a checkpoint file and a "
        "Vocos folder, as a robot reads real weights"
    )  # fmt: skip
    parser.add_argument("--startup-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=Path("bench_output"))
    args = parser.parse_args(argv)
    args.argv = list(argv)
    cuda = torch.cuda.is_available() and args.device != "cpu"
    if not args.checkpoint:
        args.checkpoint = "random:F5TTS_v1_Base" if cuda else "random:tiny"
    if args.vocoder == "" and args.checkpoint.startswith("random:"):
        args.vocoder = "random"
    args.nfe = args.nfe or ([8, 16, 32] if cuda else [4])
    args.upstream_nfe = args.upstream_nfe or ([8, 32] if cuda else [4])
    if args.quality is None:
        args.quality = ["fp16", "bf16"] if cuda else ["bf16"]
    if not cuda:
        args.reps, args.warmup, args.streams = min(args.reps, 1), min(args.warmup, 1), min(args.streams, 2)
    return args


def startup(args: argparse.Namespace) -> dict[str, Any]:
    """Time to ready of fresh processes: first with an empty compile cache, then (``--startup-warm-runs`` times)
    with the cache it left."""
    child = [sys.executable, "-m", "ishowtts_ros.bench.run", *args.argv, "--startup-child"]
    child.remove("--startup")
    times = {}
    warm = ["warm_cache"] + [f"warm_cache_{run}" for run in range(2, args.startup_warm_runs + 1)]
    with tempfile.TemporaryDirectory(prefix="ishowtts-startup-") as cache:  # cold means no compiled kernels
        if args.startup_files:
            checkpoint, vocoder = write_model_files(Path(cache) / "model", args.checkpoint)
            child += ["--checkpoint", checkpoint, "--vocoder", vocoder]  # the last of a repeated option counts
        env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": f"{cache}/inductor", "TRITON_CACHE_DIR": f"{cache}/triton"}
        for attempt in ("cold_cache", *warm):
            env[STARTUP_EPOCH] = repr(time.time())
            out = subprocess.run(child, capture_output=True, text=True, check=True, env=env)
            times[attempt] = json.loads(out.stdout.strip().splitlines()[-1])
            console.log(f"time to ready ({attempt}): {times[attempt]}")
    return times


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[RichHandler(console=console)])
    if args.startup_child:
        print(json.dumps(startup_seconds(config_for(args, args.precision), float(os.environ[STARTUP_EPOCH]))))
        return 0
    if args.startup:
        print(json.dumps(startup(args)))
        return 0
    report = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(report, indent=2, default=float), encoding="utf-8")
    plot(report, args.out / "bench.png")
    table = markdown(report)
    (args.out / "bench.md").write_text(table + "\n", encoding="utf-8")
    print(table)
    ok = all(np.isfinite(v) and v <= QUALITY_TOLERANCE for v in report.get("quality", {}).values())
    if not ok:
        console.log(f"[red]quality guard failed:[/] {report['quality']}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
