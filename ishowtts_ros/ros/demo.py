"""``make demo``: the full ROS round trip. Starts ``tts_node`` (engine auto), sends a sentence as a ``tts/say``
goal, waits for its result, collects its ``tts/audio`` chunks into ``demo_output/demo.wav`` and prints the result
(RTF, time to first audio) and the diagnostics summary."""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

SAMPLE = "Hello! I am a robot, and this is my voice. I can speak while I keep working on my tasks."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", default=SAMPLE)
    parser.add_argument("--engine", default="auto")
    parser.add_argument("--checkpoint", default="")
    parser.add_argument("--out", type=Path, default=Path("demo_output/demo.wav"))
    args = parser.parse_args(argv)
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(100, 200)))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

    from ishowtts_ros.core.audio import write_wav
    from ishowtts_ros.ros.client import TtsClient, start_node, stop_node

    if args.engine == "auto":
        explain_engine_choice(args.checkpoint)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    log = args.out.parent / "tts_node.log"
    print(f"starting tts_node (engine {args.engine}); its log: {log}")
    process = start_node({"engine": args.engine, "checkpoint": args.checkpoint}, str(log))
    client = TtsClient()
    try:
        started = time.monotonic()
        client.wait_ready(timeout=600, process=process)
        print(f"node ready in {time.monotonic() - started:.1f} s")
        goal = client.send_goal(args.text)
        print(f"goal {goal.utterance_id} accepted; waiting for it to be spoken")
        status, result = goal.result(timeout=300)
        if status != "succeeded":
            print(f"goal {status}: {result.reason}", file=sys.stderr)
            return 1
        chunks = client.wait_audio(result.utterance_id)
        samples = np.concatenate([c.samples for c in chunks])
        path = write_wav(args.out, samples, chunks[0].sample_rate)
        client.wait_for(lambda: client.diagnostics, 5, "diagnostics")
        diagnostics = client.diagnostics[-1].status[0]
        print(f"wrote {path} ({len(samples) / chunks[0].sample_rate:.2f} s of audio in {len(chunks)} chunks)")
        print(f"result: {status}, {result.chunks} chunks, {result.audio_seconds:.2f} s of audio "
              f"in {result.synthesis_seconds:.2f} s")  # fmt: skip
        print(f"RTF:                 {result.rtf:.4f}")
        print(f"time to first audio: {result.time_to_first_audio * 1000:.0f} ms in the node, "
              f"{(chunks[0].received_at - goal.sent_at) * 1000:.0f} ms from goal to first chunk received")  # fmt: skip
        print(f"diagnostics [{['OK', 'WARN', 'ERROR', 'STALE'][diagnostics.level[0]]}] {diagnostics.message}:")
        for pair in diagnostics.values:
            print(f"  {pair.key:16s} {pair.value}")
        values = {pair.key: pair.value for pair in diagnostics.values}
        where = values.get("checkpoint") or values.get("program", "")
        print(f"spoke with {values.get('engine')} on {values.get('device')} ({where}); audio in {path}")
        return 0
    finally:
        client.close()
        stop_node(process)


def explain_engine_choice(checkpoint: str) -> None:
    """One line on why ``auto`` will speak with espeak, and the command that changes it; with a CUDA GPU and no
    weights, offer the download (``DEMO_DOWNLOAD=1`` accepts it; without a terminal nothing waits for an answer)."""
    import importlib.util

    from ishowtts_ros.core.engine import EngineConfig
    from ishowtts_ros.engines.registry import choose_engine

    plugin, reason = choose_engine("auto", EngineConfig(checkpoint=checkpoint))
    if plugin.name == "f5":
        return
    cuda = importlib.util.find_spec("torch") is not None and _cuda_available()
    wanted = os.environ.get("DEMO_DOWNLOAD") == "1"
    if cuda and not wanted and sys.stdin.isatty():
        wanted = input("A CUDA GPU is here but not the F5 weights (~1.4 GB). Download them now? [y/N] ").strip() == "y"
    if cuda and wanted:  # through the command line, as a user would run it (the demo does not import the tools)
        import subprocess

        if subprocess.run([sys.executable, "-m", "ishowtts_ros.cli", "download"], check=False).returncode == 0:
            return
    print(f"speaking with {plugin.name}: {reason}; then make demo again (ishowtts doctor says what else this "
          "machine has)")  # fmt: skip


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


if __name__ == "__main__":
    sys.exit(main())
