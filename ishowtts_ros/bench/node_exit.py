"""``python -m ishowtts_ros.bench.node_exit``: how long ``tts_node`` takes to exit after SIGINT (and SIGTERM) while
its first background compile runs, on a CUDA GPU, and whether a subscriber got ``speaking: false`` first.

Each run starts the real node (random full-size F5TTS_v1_Base, fp16) as ``ros2 run`` would, waits until it is
ready, has it speak one sentence, waits until its diagnostics say the background compile is under way, sends the
signal and times the exit. Needs ROS 2 (rclpy and ishowtts_interfaces) and CUDA.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

from ishowtts_ros.ros.client import TtsClient, start_node, stop_node

NODE = {"engine": "f5", "checkpoint": "random:F5TTS_v1_Base", "device": "cuda", "precision": "fp16"}
COMPILE_SECONDS = 3.0  # after the first sentence: the first background round is tracing and compiling by then


def exit_while_compiling(sig: int, log: Path, namespace: str) -> dict[str, Any]:
    process = start_node(NODE, str(log), namespace=namespace)
    client = TtsClient(namespace=namespace)
    try:
        state = client.wait_ready(timeout=300, process=process)
        client.say("Turning left now.")
        client.wait_event("finished", 120)
        time.sleep(COMPILE_SECONDS)
        progress = client.diagnostic_values().get("compile_progress", "")
        took = stop_node(process, sig, timeout=30)
        client.wait_for(lambda: client.speaking and client.speaking[-1] is False, 5, "speaking: false")
        return {
            "signal": signal.Signals(sig).name,
            "state": state,
            "compile_progress_when_signalled": progress,
            "exit_s": took,
            "returncode": process.returncode,
            "last_speaking": client.speaking[-1],
            "shutdown_logged": [line for line in log.read_text().splitlines() if "shut down in" in line],
        }
    finally:
        client.close()
        if process.poll() is None:
            process.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench_output"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    runs = [
        exit_while_compiling(sig, args.out / f"node_{sig.name}.log", f"/exit{int(sig)}")
        for sig in (signal.SIGINT, signal.SIGTERM)
    ]
    (args.out / "node_exit.json").write_text(json.dumps(runs, indent=2), encoding="utf-8")
    print(json.dumps(runs, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
