"""``python -m ishowtts_ros.bench.transitions``: the first request after each transition a robot lives through,
against the steady time of the same request, through the engine's public API on a CUDA GPU.

One engine (random full-size F5TTS_v1_Base, fp16), as the node drives it: built, ``warmup()``, a request while the
background compile runs, ``wait_compiled()``, then each transition: the end of the background compile, an
``nfe_step`` change, a voice switch, a reloaded voices file, ``speed`` 0.5 and 2.0 on short and long text,
``cfg_strength`` 0 (request, 1.5 s idle, request), a long text at ``speed`` 0.5 after 1.5 s idle, a 60 s paragraph,
and a shape no plan covers (guidance off at ``speed`` 0.3); for each, the first and second request and the steady
median, time to first audio and total. Then GPU memory before and after sweeping ``sway_sampling_coef`` over all
201 values rqt's slider has at NFE 64, GPU memory (allocated and peak) at each stage, and how long ``close()`` of a
fresh engine takes while its first background round compiles.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import torch

from ishowtts_ros.bench.workloads import TEXTS
from ishowtts_ros.engines.f5.engine import F5Engine
from ishowtts_ros.engines.f5.models import load_models
from ishowtts_ros.engines.f5.options import F5Config

SHORT = "Turning left now."
IDLE_SECONDS = 1.5  # longer than the worker's idle delay: idle work (captures) runs in between
COMPILE_SECONDS = 3.0  # after warm-up: the first background round is tracing and compiling by then


def request(engine: F5Engine, text: str, voice: str | None = None, **options: Any) -> dict[str, float]:
    """One request as the node makes it: milliseconds to first audio and in all, seconds of audio."""
    started = time.perf_counter()
    first, samples = 0.0, 0
    for chunk in engine.synthesize(text, voice, {"seed": 0, **options}):
        if not first:
            first = time.perf_counter() - started
        samples += len(chunk.samples)
    return {"ttfa_ms": 1e3 * first, "total_ms": 1e3 * (time.perf_counter() - started),
            "audio_s": samples / engine.sample_rate}  # fmt: skip


def transition(
    engine: F5Engine, text: str, reps: int, voice: str | None = None, idle: float = 0.0, **options: Any
) -> dict[str, Any]:
    """The first request with ``options``, the second (after ``idle`` seconds), and the steady median."""
    first = request(engine, text, voice, **options)
    time.sleep(idle)
    second = request(engine, text, voice, **options)
    runs = [request(engine, text, voice, **options) for _ in range(reps)]
    steady = {key: statistics.median(run[key] for run in runs) for key in first}
    return {
        "first": first,
        "second": second,
        "steady": steady,
        "first_over_steady": first["total_ms"] / steady["total_ms"],
        "second_over_steady": second["total_ms"] / steady["total_ms"],
        "ttfa_first_over_steady": first["ttfa_ms"] / steady["ttfa_ms"],
    }


def sway_sweep(engine: F5Engine) -> dict[str, float]:
    """GPU memory allocated before and after a request at each of the 201 sway values at NFE 64."""
    request(engine, SHORT, nfe_step=64)
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    for index in range(201):
        request(engine, SHORT, nfe_step=64, sway_sampling_coef=round(-1.0 + index * 0.01, 2))
    torch.cuda.synchronize()
    after = torch.cuda.memory_allocated()
    return {"before_mib": before / 2**20, "after_mib": after / 2**20, "added_mib": (after - before) / 2**20}


def close_while_compiling() -> dict[str, Any]:
    """``close()`` of a fresh engine while its first background round compiles (the state a robot is in during its
    first minute): timed, with whether the compile thread was still inside the compile when ``close()`` returned."""
    engine = F5Engine(F5Config(device="cuda", precision="fp16", checkpoint="random:F5TTS_v1_Base"), models=random())
    engine.warmup()
    request(engine, SHORT)
    time.sleep(COMPILE_SECONDS)  # into Dynamo and Inductor
    compiling = not engine.wait_compiled(timeout=0)
    progress = engine.describe()["compile_progress"]
    started = time.perf_counter()
    engine.close()
    closed = time.perf_counter() - started
    alive = any(thread.name == "f5-compile" and thread.is_alive() for thread in threading.enumerate())
    return {"compiling_when_closed": compiling, "progress_when_closed": progress, "close_s": closed,
            "compile_thread_left_running": alive}  # fmt: skip


def random() -> Any:
    """A fresh random model and vocoder (an engine rewrites the modules it is given: one pair per engine)."""
    return load_models("random:F5TTS_v1_Base", "random")


def memory(stage: str, report: dict[str, Any]) -> None:
    """GPU memory allocated now and at its peak so far, in GiB, under ``report["memory"][stage]``."""
    torch.cuda.synchronize()
    report.setdefault("memory", {})[stage] = {
        "allocated_gib": torch.cuda.memory_allocated() / 2**30,
        "peak_gib": torch.cuda.max_memory_allocated() / 2**30,
    }


def run(reps: int, save: Any = lambda report: None) -> dict[str, Any]:
    models = random()
    torch.cuda.reset_peak_memory_stats()
    engine = F5Engine(F5Config(device="cuda", precision="fp16", checkpoint="random:F5TTS_v1_Base"), models=models)
    started = time.perf_counter()
    engine.warmup()
    report: dict[str, Any] = {"device": torch.cuda.get_device_name(), "torch": torch.__version__}
    report["ready_s"] = time.perf_counter() - started
    memory("ready", report)
    report["while_compiling"] = [request(engine, TEXTS["medium"]) for _ in range(3)]
    report["while_compiling_progress"] = engine.describe()["compile_progress"]
    engine.wait_compiled()
    report["compiled_s"] = time.perf_counter() - started
    memory("compiled", report)
    other = next(name for name in engine.registry.names() if name != engine.registry.default)
    cases: dict[str, dict[str, Any]] = {}
    report["transitions"] = cases
    save(report)
    cases["after_background_compile"] = transition(engine, TEXTS["medium"], reps)
    cases["nfe_step_12"] = transition(engine, TEXTS["medium"], reps, nfe_step=12)
    cases["voice_switch"] = transition(engine, TEXTS["medium"], reps, voice=other)
    engine.reload_voices()
    cases["reloaded_voices"] = transition(engine, TEXTS["medium"], reps)
    for speed in (0.5, 2.0):
        for name in ("short", "long"):
            cases[f"speed_{speed}_{name}"] = transition(engine, TEXTS[name], reps, speed=speed)
    cases["cfg_0_short_then_idle"] = transition(engine, SHORT, reps, idle=IDLE_SECONDS, cfg_strength=0.0)
    cases["cfg_0_medium"] = transition(engine, TEXTS["medium"], reps, cfg_strength=0.0)
    cases["long_speed_0.5_then_idle"] = transition(engine, TEXTS["long"], reps, idle=IDLE_SECONDS, speed=0.5)
    cases["paragraph_60s"] = transition(engine, TEXTS["long"], reps)
    cases["unplanned_shape_short"] = transition(engine, SHORT, reps, idle=IDLE_SECONDS, cfg_strength=0.0, speed=0.3)
    save(report)
    report["steady_medium_nfe8"] = {
        "rtf": cases["after_background_compile"]["steady"]["total_ms"]
        / 1e3
        / cases["after_background_compile"]["steady"]["audio_s"],
        "ttfa_ms": cases["after_background_compile"]["steady"]["ttfa_ms"],
    }
    report["sway_sweep_nfe64"] = sway_sweep(engine)
    save(report)
    memory("transitions_and_sweep", report)
    report["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
    report["describe"] = engine.describe()
    engine.close()
    del engine
    save(report)
    del models
    report["close_while_compiling"] = close_while_compiling()
    return report


def table(report: dict[str, Any]) -> str:
    rows = [
        "| transition | first ms (TTFA) | second ms (TTFA) | steady ms (TTFA) | first/steady |",
        "|---|---|---|---|---|",
    ]
    for name, case in report["transitions"].items():
        first, second, steady = case["first"], case["second"], case["steady"]
        rows.append(
            f"| {name} | {first['total_ms']:.0f} ({first['ttfa_ms']:.0f}) | {second['total_ms']:.0f} "
            f"({second['ttfa_ms']:.0f}) | {steady['total_ms']:.0f} ({steady['ttfa_ms']:.0f}) | "
            f"{case['first_over_steady']:.2f} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench_output"))
    parser.add_argument("--close-only", action="store_true", help="only time close() during the first compile")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench.transitions needs a CUDA GPU", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)

    def save(report: dict[str, Any]) -> None:  # after each stage: a run cut short still leaves its figures
        (args.out / "transitions.json").write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")

    if args.close_only:
        report = {"device": torch.cuda.get_device_name(), "close_while_compiling": close_while_compiling()}
        save(report)
        print(json.dumps(report))
        return 0
    report = run(args.reps, save)
    save(report)
    print(table(report))
    print(json.dumps({key: value for key, value in report.items() if key not in ("transitions", "describe")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
