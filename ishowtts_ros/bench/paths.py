"""``python -m ishowtts_ros.bench.paths``: the engine's paths side by side in one process on a CUDA GPU, and the
cost of tuning it live.

- Default against the paths a Jetson Orin takes (no cuDNN attention: the log-sum-exp path on FlashAttention-2; with
  a torch built without flash attention, the masked SDPA on the memory-efficient kernel; cuDNN positional conv and
  no compile without Triton; Vocos in fp16 or fp32): RTF and time to first audio on the medium text at NFE 8,
  warm-up and compile time and peak GPU memory of each.
- Live tuning on the default engine: the first request after ``nfe_step`` 8 -> 12, 8 -> 32, sway -1 -> 0 and after a
  switch to another voice, against the steady time of the same request.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import json
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from ishowtts_ros.bench.workloads import TEXTS, engine_runner
from ishowtts_ros.engines.f5.engine import F5Engine
from ishowtts_ros.engines.f5.models import load_models
from ishowtts_ros.engines.f5.options import F5Config

#: name -> (F5Config overrides, SDPA kernels left enabled or None for all)
PATHS: dict[str, tuple[dict[str, Any], tuple[str, ...] | None]] = {
    "default": ({}, None),
    "masked_sdpa": ({"attention": "sdpa"}, None),
    "masked_sdpa_efficient": ({"attention": "sdpa"}, ("efficient", "math")),
    "cudnn_conv": ({"position_conv": "cudnn"}, None),
    # What an Orin runs: no cuDNN attention (sm 8.7), so the log-sum-exp path on FlashAttention-2 ...
    "orin": ({}, ("flash", "efficient", "math")),
    # ... and without Triton (no compile, cuDNN positional conv).
    "orin_no_triton": ({"position_conv": "cudnn", "compile": False}, ("flash", "efficient", "math")),
    # A JetPack torch built without flash attention: the masked SDPA on the memory-efficient kernel.
    "orin_efficient": ({"attention": "sdpa", "position_conv": "cudnn"}, ("efficient", "math")),
    "orin_efficient_no_compile": (
        {"attention": "sdpa", "position_conv": "cudnn", "compile": False},
        ("efficient", "math"),
    ),
    "orin_efficient_fp32_vocos": (
        {"attention": "sdpa", "position_conv": "cudnn", "vocoder_precision": "fp32"},
        ("efficient", "math"),
    ),
}


@contextlib.contextmanager
def sdpa_kernels(allowed: tuple[str, ...] | None) -> Iterator[None]:
    """Only ``allowed`` SDPA kernels for everything built and run inside (graphs capture the choice)."""
    cuda = torch.backends.cuda
    switches = {
        "flash": cuda.enable_flash_sdp,
        "efficient": cuda.enable_mem_efficient_sdp,
        "math": cuda.enable_math_sdp,
    }
    switches["cudnn"] = cuda.enable_cudnn_sdp
    states = {"flash": cuda.flash_sdp_enabled(), "efficient": cuda.mem_efficient_sdp_enabled()}
    states |= {"math": cuda.math_sdp_enabled(), "cudnn": cuda.cudnn_sdp_enabled()}
    try:
        for name, switch in switches.items():
            switch(allowed is None or name in allowed)
        yield
    finally:
        for name, switch in switches.items():
            switch(states[name])


def measure_path(models: tuple[Any, Any], overrides: dict[str, Any], reps: int) -> dict[str, Any]:
    config = F5Config(device="cuda", precision="fp16", checkpoint="random:F5TTS_v1_Base", **overrides)
    torch.cuda.reset_peak_memory_stats()
    engine = F5Engine(config, models=(copy.deepcopy(models[0]), copy.deepcopy(models[1])))
    started = time.perf_counter()
    engine.warmup()  # synchronises the device before its background compile starts
    warmup_s = time.perf_counter() - started
    engine.wait_compiled()
    compiled_s = time.perf_counter() - started
    run = engine_runner(engine)
    for _ in range(2):
        run(TEXTS["medium"], 8)
    runs = [run(TEXTS["medium"], 8) for _ in range(reps)]
    result = {
        "rtf": statistics.median(r[0] / r[1] for r in runs),
        "ttfa_ms": 1e3 * statistics.median(r[2] for r in runs),
        "warmup_s": warmup_s,
        "compiled_s": compiled_s,
        "peak_gib": torch.cuda.max_memory_allocated() / 2**30,
        "describe": engine.describe(),
    }
    if not overrides:
        result["live_tuning"] = live_tuning(engine, reps)
    engine.close()
    return result


def live_tuning(engine: F5Engine, reps: int) -> dict[str, Any]:
    """The first request at once after an NFE or sway change and after a voice switch, against the steady time of
    the same request."""

    def timed(nfe: int, voice: str | None = None, text: str = TEXTS["medium"], sway: float = -1.0) -> float:
        # No device-wide synchronize here: the GPU worker may be capturing a graph meanwhile, which a device sync
        # from another thread would break. The last chunk's audio is on the host when the loop ends.
        started = time.perf_counter()
        for _ in engine.synthesize(text, voice, {"nfe_step": nfe, "seed": 0, "sway_sampling_coef": sway}):
            pass
        return time.perf_counter() - started

    steady8 = statistics.median(timed(8) for _ in range(reps))
    # Texts never spoken before, of different lengths (every new length used to cost a cuDNN plan).
    novel = [f"Item {i}: the robot has checked {7 * i + 3} boxes in aisle {i + 2} and found nothing." for i in range(6)]
    novel_s = [timed(8, text=text) for text in novel]
    repeated_s = [timed(8, text=text) for text in novel]
    first12, second12 = timed(12), timed(12)
    steady12 = statistics.median(timed(12) for _ in range(reps))
    first32 = timed(32)
    steady32 = statistics.median(timed(32) for _ in range(reps))
    first_sway = timed(8, sway=0.0)
    steady_sway = statistics.median(timed(8, sway=0.0) for _ in range(reps))
    other = next(name for name in engine.registry.names() if name != engine.registry.default)
    first_voice, second_voice = timed(8, other), timed(8, other)
    steady_voice = statistics.median(timed(8, other) for _ in range(reps))
    return {
        "steady_nfe8_s": steady8,
        "novel_texts_median_s": statistics.median(novel_s),
        "same_texts_again_median_s": statistics.median(repeated_s),
        "nfe12_at_once": {"first_s": first12, "second_s": second12, "steady_s": steady12},
        "nfe32_at_once": {"first_s": first32, "steady_s": steady32},
        "sway0_at_once": {"first_s": first_sway, "steady_s": steady_sway},
        "voice": {"name": other, "first_s": first_voice, "second_s": second_voice, "steady_s": steady_voice},
        "first_over_steady": {
            "nfe12_at_once": first12 / steady12,
            "nfe32_at_once": first32 / steady32,
            "sway0_at_once": first_sway / steady_sway,
            "voice": first_voice / steady_voice,
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", default=",".join(PATHS), help=f"comma-separated, of {', '.join(PATHS)}")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("bench_output"))
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench.paths needs a CUDA GPU", file=sys.stderr)
        return 2
    models = load_models("random:F5TTS_v1_Base", "random")
    report: dict[str, Any] = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "paths": {}}
    for name in args.paths.split(","):
        overrides, kernels = PATHS[name]
        with sdpa_kernels(kernels):
            report["paths"][name] = measure_path(models, overrides, args.reps)
        print(name, json.dumps({k: v for k, v in report["paths"][name].items() if k != "describe"}), flush=True)
        gc.collect()
        torch.cuda.empty_cache()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "paths.json").write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
