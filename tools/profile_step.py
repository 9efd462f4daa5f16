"""Where one flow step's time goes on a GPU: per-request prep vs the graph replay, and the top kernels.

Run on the device: tools/device_bench.sh python3 tools/profile_step.py [short|medium|long] [--graphs-only]
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from ishowtts_ros.bench.workloads import TEXTS, dit_flops, matmul_tflops
from ishowtts_ros.engines.f5.engine import F5Engine
from ishowtts_ros.engines.f5.models import random_models
from ishowtts_ros.engines.f5.options import F5Config


def cuda_ms(fn, reps: int = 5) -> float:
    fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    for _ in range(reps):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / reps


def profile(cfm, vocoder, peak: float, compile_: bool, graphs: bool, attention: str, text: str) -> None:
    engine = F5Engine(
        F5Config(device="cuda", precision="fp16", compile=compile_, cuda_graphs=graphs, attention=attention),
        models=(copy.deepcopy(cfm), copy.deepcopy(vocoder)),
    )
    if compile_ and graphs:  # graphs are captured without compile first; the compiled ones replace them
        engine.warmup()
        engine.wait_compiled()
    ref = engine.reference(engine.registry.get())
    options = engine.resolve_options({"nfe_step": 8, "seed": 0})
    request = engine.sample_request(ref, TEXTS[text], options)
    kwargs = dict(steps=8, cfg_strength=2.0, sway_sampling_coef=-1.0)
    total = cuda_ms(lambda: engine.sampler.sample([request], **kwargs))
    floor = 8 * dit_flops(engine.sampler.bucket(request.duration), 1024, 22, 2) / (peak * 1e12) * 1e3
    line = f"compile={compile_} graphs={graphs} attention={attention}: sample() {total:.1f} ms / 8 steps"
    line += f" (floor {floor:.1f} ms)"
    if graphs:
        key = (1, engine.sampler.bucket(request.duration), True)
        step = engine.sampler._captured[key]
        line += f", one step's graph replayed alone {cuda_ms(step.graph.replay):.2f} ms"
    with torch.inference_mode():
        mel, durations = engine.sampler.sample([request], **kwargs)
        generated = mel[:, ref.frames : durations[0]]
        line += f"; vocoder {cuda_ms(lambda: engine.vocode(generated, ref.rms)):.1f} ms"
        engine.synthesize_all(TEXTS[text], options={"nfe_step": 8, "seed": 0})
        started = time.perf_counter()
        result = engine.synthesize_all(TEXTS[text], options={"nfe_step": 8, "seed": 0})
    line += f"; whole request {1e3 * (time.perf_counter() - started):.1f} ms wall in {result.chunks} chunk(s)"
    print(line, flush=True)
    started = time.perf_counter()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        engine.sampler.sample([request], **kwargs)
        torch.cuda.synchronize()
    print(f"  profiled call {1e3 * (time.perf_counter() - started):.1f} ms wall")
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=12, max_name_column_width=70))
    engine.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("text", nargs="?", default="medium", choices=sorted(TEXTS))
    parser.add_argument("--graphs-only", action="store_true", help="skip the eager (no graphs) profile")
    args = parser.parse_args()
    peak = matmul_tflops(torch.device("cuda"))
    cfm, vocoder = random_models("F5TTS_v1_Base")
    variants = ((True, True, "auto"),) if args.graphs_only else ((True, True, "auto"), (True, False, "auto"))
    for compile_, graphs, attention in variants:
        profile(cfm, vocoder, peak, compile_, graphs, attention, args.text)
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
