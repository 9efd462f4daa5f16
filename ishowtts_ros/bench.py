"""``ishowtts bench``: upstream f5-tts and this engine side by side, same weights, texts and NFE, one process.

Upstream runs through ``f5_tts.infer.utils_infer.infer_batch_process`` in fp16 as upstream loads it on CUDA; the
engine through :class:`~ishowtts_ros.f5_engine.F5Engine`, the code the node and the Wyoming server use. Prints a
markdown table (RTF, synth time, time to first audio, per-step ms vs the compute floor, peak memory, speedup) and
writes JSON and a PNG plot. On a CPU it runs a tiny-model smoke version (no timing claims).
"""

from __future__ import annotations

import argparse
import copy
import gc
import itertools
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
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

from ishowtts_ros.engine import EngineConfig
from ishowtts_ros.f5_engine import HOP_LENGTH, SAMPLE_RATE, F5Engine
from ishowtts_ros.f5_models import load_models
from ishowtts_ros.quality import QUALITY_TOLERANCE, mel_relative_error

LOG = logging.getLogger("ishowtts_ros.bench")
console = Console(stderr=True)

TEXTS = {
    "short": "Hello! I am your robot assistant. How can I help you today?",
    "medium": (
        "I don't really care what you call me. I've been a silent spectator, watching species evolve, "
        "empires rise and fall. But always remember, I am mighty and enduring."
    ),
    "long": (
        "Good morning, and welcome to the laboratory. I am the robot that guides visitors through the building. "
        "Today we will start on the ground floor, where the assembly line builds small delivery robots. "
        "After that, we will take the elevator to the second floor and visit the testing area, where every robot "
        "walks ten kilometres before it leaves the factory. Please stay close to me, keep to the marked path, "
        "and do not touch the machines while they are running. If you have a question at any time, just ask, "
        "and I will do my best to answer it. Shall we begin?"
    ),
}


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


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_tflops(device: torch.device) -> float:
    """Measured fp16 (CUDA) / fp32 (CPU) matmul rate: the ceiling of the compute floor."""
    size, dtype = (8192, torch.float16) if device.type == "cuda" else (512, torch.float32)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(device)
    started = time.perf_counter()
    reps = 10
    for _ in range(reps):
        a @ b
    sync(device)
    return reps * 2 * size**3 / (time.perf_counter() - started) / 1e12


def dit_flops(frames: int, dim: int, depth: int, ff_mult: int, batch: int = 2) -> float:
    """FLOPs of one DiT forward over ``frames`` tokens (linear layers plus attention), CFG batch of 2."""
    linear = 2 * frames * (4 * dim * dim + 2 * dim * ff_mult * dim) * depth
    attention = 2 * 2 * frames * frames * dim * depth
    return batch * (linear + attention)


def timed(fn: Callable[[], Any], device: torch.device) -> tuple[float, Any]:
    sync(device)
    started = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - started, out


def median_runs(fn: Callable[[], tuple[float, float, float]], warmup: int, reps: int) -> list[tuple]:
    for _ in range(warmup):
        fn()
    return [fn() for _ in range(reps)]


def upstream_runner(cfm, vocoder, device: torch.device, ref_audio: torch.Tensor, ref_rate: int, ref_text: str):
    """A callable timing upstream's own inference path for (text, nfe): (synth s, audio s, ttfa s)."""
    from f5_tts.infer.utils_infer import chunk_text, infer_batch_process

    def run(text: str, nfe: int) -> tuple[float, float, float]:
        seconds = ref_audio.shape[-1] / ref_rate
        max_chars = int(len(ref_text.encode("utf-8")) / seconds * (22 - seconds))
        batches = chunk_text(text, max_chars=max_chars)
        elapsed, out = timed(
            lambda: next(
                infer_batch_process(
                    (ref_audio, ref_rate), ref_text, batches, cfm, vocoder, nfe_step=nfe, progress=None, device=device
                )
            ),
            device,
        )
        wave, rate, _ = out
        return elapsed, len(wave) / rate, elapsed  # non-streaming: the first audio is the whole utterance

    return run


def engine_runner(engine: F5Engine):
    def run(text: str, nfe: int) -> tuple[float, float, float]:
        sync(engine.device)
        started = time.perf_counter()
        first = None
        samples = 0
        for chunk in engine.synthesize(text, options={"nfe_step": nfe, "seed": 0}):
            if first is None:
                first = time.perf_counter() - started
            samples += len(chunk.samples)
        sync(engine.device)
        return time.perf_counter() - started, samples / engine.sample_rate, first

    return run


def step_time(engine: F5Engine, text: str, nfe: int, reps: int) -> tuple[float, int]:
    """Seconds per flow step for ``text`` as one chunk (the workload upstream runs), and its frame count."""
    ref = engine.reference(engine.registry.get())
    options = engine.resolve_options({"nfe_step": nfe, "seed": 0})
    request = engine.sample_request(ref, text, options)
    engine.sample_mels([request], options)
    times = [timed(lambda: engine.sample_mels([request], options), engine.device)[0] for _ in range(reps)]
    return statistics.median(times) / nfe, request.duration


def concurrency(engine: F5Engine, text: str, nfe: int, streams: int) -> dict[str, Any]:
    """Aggregate throughput of ``streams`` simultaneous requests vs one stream alone (after one untimed round,
    which compiles whatever batch shapes the round forms)."""
    result = {}
    for _ in range(2):
        result = _concurrency_round(engine, text, nfe, streams)
    return result


def _concurrency_round(engine: F5Engine, text: str, nfe: int, streams: int) -> dict[str, Any]:
    single_synth, single_audio, _ = engine_runner(engine)(text, nfe)
    finished: list[float] = []
    audio: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(streams)

    def worker() -> None:
        barrier.wait()
        synth, seconds, _ = engine_runner(engine)(text, nfe)
        with lock:
            finished.append(synth)
            audio.append(seconds)

    threads = [threading.Thread(target=worker) for _ in range(streams)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    single_rate = single_audio / single_synth
    aggregate_rate = sum(audio) / wall
    return {
        "streams": streams,
        "single_stream_audio_s_per_s": single_rate,
        "aggregate_audio_s_per_s": aggregate_rate,
        "throughput_ratio": aggregate_rate / single_rate,
        "slowest_stream_s": max(finished),
        "fastest_stream_s": min(finished),
        "largest_batch": engine.scheduler.largest_batch,
    }


def streaming_gaps(engine: F5Engine, text: str, nfe: int) -> dict[str, Any]:
    """Whether each next chunk is ready before the previous one finishes playing (playback starts at chunk 0)."""
    chunks = list(engine.synthesize(text, options={"nfe_step": nfe, "seed": 0}))
    play_start = chunks[0].elapsed_seconds
    slack = []
    for previous, chunk in itertools.pairwise(chunks):
        play_start += previous.duration
        slack.append(play_start - chunk.elapsed_seconds)
    return {"chunks": len(chunks), "min_slack_s": min(slack) if slack else None, "gapless": all(s > 0 for s in slack)}


def startup_seconds(args: argparse.Namespace) -> dict[str, float]:
    """Load, then compile + graph capture + warm-up, of a fresh engine (this process)."""
    started = time.perf_counter()
    engine = F5Engine(engine_config(args, args.precision))
    loaded = time.perf_counter()
    engine.warmup()
    sync(engine.device)
    ready = time.perf_counter()
    return {"ready_s": ready - started, "load_s": loaded - started, "warmup_s": ready - loaded}


def engine_config(args: argparse.Namespace, precision: str, compile_: bool | None = None) -> EngineConfig:
    return EngineConfig(
        device=args.device,
        precision=precision,
        checkpoint=args.checkpoint,
        vocoder=args.vocoder,
        compile=(False if args.no_compile else None) if compile_ is None else compile_,
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    args.device = str(device)
    smoke = device.type == "cpu"
    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "checkpoint": args.checkpoint,
        "smoke": smoke,
        "command": "ishowtts bench " + " ".join(args.argv),
    }
    peak = matmul_tflops(device)
    report["matmul_tflops"] = peak
    console.log(f"{report['device']}, torch {torch.__version__}, matmul {peak:.0f} TFLOP/s")
    cfm, vocoder = load_models(args.checkpoint, args.vocoder)
    arch = cfm.transformer
    dims = dict(dim=arch.dim, depth=arch.depth, ff_mult=arch.transformer_blocks[0].ff.ff[0][0].out_features // arch.dim)
    rows: list[Row] = []
    texts = {name: TEXTS[name] for name in args.texts}

    engine = F5Engine(engine_config(args, args.precision), models=(copy.deepcopy(cfm), copy.deepcopy(vocoder)))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    engine.warmup()
    sync(device)
    report["engine"] = {**engine.describe(), "warmup_s": time.perf_counter() - started}
    run_engine = engine_runner(engine)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("engine", total=len(texts) * len(args.nfe))
        for text_name, text in texts.items():
            for nfe in args.nfe:
                runs = median_runs(lambda t=text, n=nfe: run_engine(t, n), args.warmup, args.reps)
                synth = statistics.median(r[0] for r in runs)
                audio = runs[0][1]
                per_step, frames = step_time(engine, text, nfe, max(1, args.reps // 2))
                floor = dit_flops(frames, **dims) / (peak * 1e12)
                rows.append(
                    Row(
                        "engine",
                        text_name,
                        nfe,
                        synth,
                        audio,
                        statistics.median(r[2] for r in runs),
                        synth / audio,
                        step_ms=per_step * 1e3,
                        floor_step_ms=floor * 1e3,
                        runs=[r[0] for r in runs],
                    )
                )
                progress.advance(task)
    if device.type == "cuda":
        report["engine_peak_mem_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
        report["engine_peak_reserved_gib"] = torch.cuda.max_memory_reserved(device) / 2**30
        for row in rows:
            row.peak_mem_gib = report["engine_peak_mem_gib"]
    report["streaming"] = streaming_gaps(engine, TEXTS["long"], args.nfe[0])
    if args.streams > 1:
        report["concurrency"] = concurrency(engine, TEXTS["medium"], args.nfe[0], args.streams)
    engine = run_engine = None  # drop the engine's GPU memory before upstream loads
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()

    if args.quality:
        report["quality"] = quality(args, cfm, vocoder)

    if not args.no_upstream:
        dtype = torch.float16 if device.type == "cuda" else torch.float32
        upstream = copy.deepcopy(cfm).to(dtype).to(device).eval()
        upstream_vocoder = copy.deepcopy(vocoder).to(device).eval()
        if args.upstream_compile:
            for block in upstream.transformer.transformer_blocks:
                block.compile(dynamic=False)
        import soundfile as sf

        from ishowtts_ros.voices import VoiceRegistry

        voice = VoiceRegistry.load().get()
        wave, rate = sf.read(str(voice.audio_path()), dtype="float32")
        ref_audio = torch.from_numpy(wave)[None]
        run_upstream = upstream_runner(upstream, upstream_vocoder, device, ref_audio, rate, voice.text)
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("upstream", total=len(texts) * len(args.upstream_nfe))
            for text_name, text in texts.items():
                for nfe in args.upstream_nfe:
                    runs = median_runs(lambda t=text, n=nfe: run_upstream(t, n), 1, max(3, args.reps // 2))
                    synth = statistics.median(r[0] for r in runs)
                    rows.append(Row("upstream", text_name, nfe, synth, runs[0][1], synth, synth / runs[0][1]))
                    progress.advance(task)
        upstream_rtf = {(r.text, r.nfe): r.rtf for r in rows if r.impl == "upstream"}
        for row in rows:
            if row.impl == "engine" and (row.text, row.nfe) in upstream_rtf:
                row.speedup = upstream_rtf[(row.text, row.nfe)] / row.rtf
        report["upstream_default"] = {
            text: rtf for (text, nfe), rtf in upstream_rtf.items() if nfe == max(args.upstream_nfe)
        }
    report["rows"] = [asdict(r) for r in rows]
    report["frames_per_second"] = SAMPLE_RATE / HOP_LENGTH
    return report


def quality(args: argparse.Namespace, cfm, vocoder) -> dict[str, float]:
    """Mel relative error of each reduced precision against the fp32 engine (same weights, seed, NFE)."""
    fp32 = F5Engine(engine_config(args, "fp32", compile_=False), models=(copy.deepcopy(cfm), copy.deepcopy(vocoder)))
    errors = {}
    for precision in args.quality:
        candidate = F5Engine(engine_config(args, precision), models=(copy.deepcopy(cfm), copy.deepcopy(vocoder)))
        errors[precision] = mel_relative_error(candidate, fp32, TEXTS["medium"], nfe=args.nfe[0], seed=4)
        del candidate
    return errors


def _cell(value: float, spec: str) -> str:
    """A table cell: blank where the figure does not apply (NaN: no floor for upstream, no speedup baseline)."""
    return "" if value != value else format(value, spec)


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"device: {report['device']}, torch {report['torch']}, checkpoint {report['checkpoint']}, "
        f"matmul {report['matmul_tflops']:.0f} TFLOP/s",
        "",
        "| impl | text | NFE | audio s | synth s | RTF | TTFA ms | step ms | floor ms | step/floor | peak GiB "
        "| speedup |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        ratio = r["step_ms"] / r["floor_step_ms"]
        lines.append(
            f"| {r['impl']} | {r['text']} | {r['nfe']} | {r['audio_s']:.2f} | {r['synth_s']:.4f} | {r['rtf']:.5f} | "
            f"{r['ttfa_s'] * 1e3:.1f} | {_cell(r['step_ms'], '.2f')} | {_cell(r['floor_step_ms'], '.2f')} | "
            f"{_cell(ratio, '.2f')} | {_cell(r['peak_mem_gib'], '.2f')} | {_cell(r['speedup'], '.1f')} |"
        )
    for key in ("engine", "streaming", "concurrency", "quality", "upstream_default"):
        if key in report:
            lines.append(f"\n{key}: {json.dumps(report[key], default=float)}")
    for key in ("engine_peak_mem_gib", "engine_peak_reserved_gib", "startup"):
        if key in report:
            lines.append(f"{key}: {report[key]}")
    return "\n".join(lines)


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_rtf, ax_ttfa) = plt.subplots(1, 2, figsize=(11, 4))
    rows = report["rows"]
    for impl in sorted({r["impl"] for r in rows}):
        for text in sorted({r["text"] for r in rows}):
            chosen = sorted((r for r in rows if r["impl"] == impl and r["text"] == text), key=lambda r: r["nfe"])
            if not chosen:
                continue
            nfe = [r["nfe"] for r in chosen]
            style = "-o" if impl == "engine" else "--s"
            ax_rtf.plot(nfe, [r["rtf"] for r in chosen], style, label=f"{impl} {text}")
            ax_ttfa.plot(nfe, [r["ttfa_s"] * 1e3 for r in chosen], style, label=f"{impl} {text}")
    for axis, label in ((ax_rtf, "RTF (lower is faster)"), (ax_ttfa, "time to first audio, ms")):
        axis.set_xlabel("NFE (flow steps)")
        axis.set_ylabel(label)
        axis.set_yscale("log")
        axis.grid(True, which="both", alpha=0.3)
    ax_rtf.legend(fontsize=7)
    fig.suptitle(f"ishowtts_ros vs upstream f5-tts on {report['device']}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ishowtts bench", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto", help="engine precision (auto: fp16 on CUDA)")
    parser.add_argument("--checkpoint", default=None, help="default: random:F5TTS_v1_Base on CUDA, random:tiny on CPU")
    parser.add_argument("--vocoder", default="")
    parser.add_argument("--nfe", type=lambda s: [int(x) for x in s.split(",")], default=None)
    parser.add_argument("--upstream-nfe", type=lambda s: [int(x) for x in s.split(",")], default=None)
    parser.add_argument("--texts", type=lambda s: s.split(","), default=list(TEXTS))
    parser.add_argument("--reps", type=int, default=5, help="timed runs per configuration (median reported)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--streams", type=int, default=4, help="concurrent requests for the throughput test")
    parser.add_argument("--quality", type=lambda s: s.split(",") if s else [], default=None)
    parser.add_argument("--no-upstream", action="store_true")
    parser.add_argument("--upstream-compile", action="store_true", help="also torch.compile upstream's DiT blocks")
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--startup", action="store_true", help="only time load+compile+warm-up, twice, in subprocesses")
    parser.add_argument("--startup-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=Path("bench_output"))
    args = parser.parse_args(argv)
    args.argv = list(argv)
    cuda = torch.cuda.is_available() and args.device != "cpu"
    if args.checkpoint is None:
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


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[RichHandler(console=console)])
    if args.startup_child:
        print(json.dumps(startup_seconds(args)))
        return 0
    if args.startup:
        child = [sys.executable, "-m", "ishowtts_ros.bench", *args.argv, "--startup-child"]
        child.remove("--startup")
        times = {}
        with tempfile.TemporaryDirectory(prefix="ishowtts-startup-") as cache:  # cold means no compiled kernels
            env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": f"{cache}/inductor", "TRITON_CACHE_DIR": f"{cache}/triton"}
            for attempt in ("cold_cache", "warm_cache"):
                out = subprocess.run(child, capture_output=True, text=True, check=True, env=env)
                times[attempt] = json.loads(out.stdout.strip().splitlines()[-1])
                console.log(f"time to ready ({attempt}): {times[attempt]}")
        print(json.dumps(times))
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
