"""What the benchmark runs and how it times it: the texts, upstream's and the engine's runners, per-step time,
concurrency, streaming gaps and start-up."""

from __future__ import annotations

import itertools
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ishowtts_ros.core.engine import EngineConfig
from ishowtts_ros.engines.f5.checkpoint import DEFAULT_MODEL, CheckpointSpec
from ishowtts_ros.engines.f5.engine import F5Engine, resolve_device
from ishowtts_ros.engines.f5.models import load_models, random_models, vocos_config

Runner = Callable[[str, int], tuple[float, float, float]]

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


def upstream_runner(
    cfm: Any, vocoder: Any, device: torch.device, ref_audio: torch.Tensor, ref_rate: int, ref_text: str
) -> Runner:
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


def engine_runner(engine: F5Engine, device_sync: bool = True) -> Runner:
    """``run(text, nfe) -> (seconds, audio seconds, time to first audio)``. ``device_sync=False`` while the engine
    may be capturing a graph on another thread (a device-wide sync would break the capture): the last chunk's audio
    is on the host when its loop ends anyway."""

    def run(text: str, nfe: int) -> tuple[float, float, float]:
        if device_sync:
            sync(engine.device)
        started = time.perf_counter()
        first = None
        samples = 0
        for chunk in engine.synthesize(text, options={"nfe_step": nfe, "seed": 0}):
            if first is None:
                first = time.perf_counter() - started
            samples += len(chunk.samples)
        if device_sync:
            sync(engine.device)
        return time.perf_counter() - started, samples / engine.sample_rate, first or 0.0

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


#: Environment variable with the ``time.time()`` at which the parent started a start-up child process.
STARTUP_EPOCH = "ISHOWTTS_STARTUP_EPOCH"


def write_model_files(folder: Path, checkpoint: str) -> tuple[str, str]:
    """The random model ``checkpoint`` names saved as a robot has its model: a checkpoint file in the layout of
    upstream's released ones (EMA weights, safetensors) and a Vocos folder (config.yaml, pytorch_model.bin), so
    ``--startup`` can time the path that reads real weights. Returns the checkpoint and vocoder settings."""
    import yaml
    from safetensors.torch import save_file

    spec = CheckpointSpec.parse(checkpoint)
    if spec.kind != "random" or spec.arch != DEFAULT_MODEL:
        raise ValueError(f"model files are written for random:{DEFAULT_MODEL} (what a checkpoint file holds), "
                         f"not {checkpoint!r}")  # fmt: skip
    cfm, vocos = random_models(spec.arch, spec.seed)
    vocos_folder = folder / "vocos-mel-24khz"
    vocos_folder.mkdir(parents=True, exist_ok=True)
    weights = {f"ema_model.{name}": value.contiguous() for name, value in cfm.state_dict().items()}
    save_file(weights, str(folder / "model.safetensors"))
    (vocos_folder / "config.yaml").write_text(yaml.safe_dump(vocos_config("full")), encoding="utf-8")
    torch.save(vocos.state_dict(), vocos_folder / "pytorch_model.bin")
    return str(folder / "model.safetensors"), str(vocos_folder)


def startup_seconds(config: EngineConfig, epoch: float) -> dict[str, Any]:
    """Start-up of a fresh engine in this process (started at ``epoch``, ``time.time()``): load, warm-up (ready),
    a request served while compilation finishes in the background, then the compiled engine's same request."""
    started = time.perf_counter()
    # Upstream's model code, imported as the engine imports it (ishowtts_ros.engines.f5.upstream); timed on its own.
    import f5_tts.model.backbones.dit
    import f5_tts.model.utils  # noqa: F401

    imported = time.perf_counter()
    models = load_models(config.checkpoint, config.vocoder, resolve_device(config.device))
    built = time.perf_counter()
    engine = F5Engine(config, models=models)
    loaded = time.perf_counter()
    engine.warmup()  # synchronises the device before any background compile starts; no device sync after it
    ready = time.perf_counter()
    process_ready_s = time.time() - epoch
    run = engine_runner(engine, device_sync=False)
    while_compiling = [run(TEXTS["medium"], 8) for _ in range(3)]
    compiling_then = engine.describe()["compile_progress"]
    engine.wait_compiled()
    compiled = time.perf_counter()
    after = [run(TEXTS["medium"], 8) for _ in range(3)]
    return {
        "process_ready_s": process_ready_s,
        "ready_s": ready - started,
        "load_s": loaded - started,
        "import_f5_s": imported - started,
        "models_s": built - imported,
        "engine_s": loaded - built,
        "warmup_s": ready - loaded,
        "warmup_phases": engine.warmup_phases,
        "compiled_s": compiled - started,
        "rtf_while_compiling": [r[0] / r[1] for r in while_compiling],
        "ttfa_while_compiling_s": [r[2] for r in while_compiling],
        "compile_progress_then": compiling_then,
        "rtf_compiled": statistics.median(r[0] / r[1] for r in after),
        "ttfa_compiled_s": statistics.median(r[2] for r in after),
        "describe": engine.describe(),
    }
