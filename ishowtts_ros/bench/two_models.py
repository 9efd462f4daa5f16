"""``python -m ishowtts_ros.bench.two_models``: GPU memory of two full-size models on one GPU, as
``languages.launch.py`` runs them: two processes (one node each), F5TTS_v1_Base and F5TTS_Base (the v0 layout of most
community models), each warmed up and compiled, then each process's allocated and peak memory and the GPU's total
use (CUDA contexts included) while both are up.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ARCHITECTURES = ("F5TTS_v1_Base", "F5TTS_Base")


def one_model(arch: str, ready_file: Path, release_file: Path) -> dict[str, Any]:
    """In a child process: an engine of ``arch`` warmed up and compiled; its memory once ready, then it waits
    (holding its memory) until ``release_file`` exists, so the parent can read the GPU's total meanwhile."""
    import torch

    from ishowtts_ros.engines.f5.engine import F5Engine
    from ishowtts_ros.engines.f5.options import F5Config

    engine = F5Engine(F5Config(device="cuda", precision="fp16", checkpoint=f"random:{arch}", vocoder="random"))
    engine.warmup()
    engine.wait_compiled()
    engine.synthesize_all("Both models speak on one GPU.", options={"seed": 0})
    torch.cuda.synchronize()
    found = {
        "arch": arch,
        "allocated_gib": torch.cuda.memory_allocated() / 2**30,
        "peak_gib": torch.cuda.max_memory_allocated() / 2**30,
        "reserved_gib": torch.cuda.memory_reserved() / 2**30,
    }
    ready_file.write_text(json.dumps(found), encoding="utf-8")
    while not release_file.exists():
        time.sleep(0.2)
    engine.close()
    return found


def gpu_used_gib() -> float:
    """Memory in use on GPU 0 as nvidia-smi reports it (every process, CUDA contexts included)."""
    output = subprocess.run(
        ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits", "--id=0"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return float(output.strip()) / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench_output"))
    parser.add_argument("--child", nargs=3, metavar=("ARCH", "READY", "RELEASE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        one_model(args.child[0], Path(args.child[1]), Path(args.child[2]))
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    before = gpu_used_gib()
    release = args.out / "release"
    ready = {arch: args.out / f"ready_{arch}.json" for arch in ARCHITECTURES}
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "ishowtts_ros.bench.two_models", "--child", arch, str(ready[arch]), str(release)]
        )
        for arch in ARCHITECTURES
    ]
    while not all(path.exists() for path in ready.values()):
        if any(child.poll() not in (None, 0) for child in children):
            release.touch()
            print("a model process failed", file=sys.stderr)
            return 1
        time.sleep(0.5)
    report = {
        "gpu_used_before_gib": before,
        "gpu_used_with_both_gib": gpu_used_gib(),
        "models": [json.loads(path.read_text(encoding="utf-8")) for path in ready.values()],
    }
    release.touch()
    for child in children:
        child.wait(60)
    (args.out / "two_models.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
