"""Loopback helpers for the tests that run servers as real processes."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import numpy as np


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


READY_LINE = "Wyoming TTS server ready on"  # logged by ishowtts_ros.wyoming.server once it listens


def start_wyoming_server(
    folder: Path, *engine_args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen, int, IO[str]]:
    """``ishowtts wyoming`` on a free loopback port, once it accepts connections: (process, port, its log).

    Ready is read from the server's log, not probed with a connection: the server counts a probe against
    ``--max-connections`` until it has seen it close, which a loaded machine can delay past the test's own clients."""
    port = free_port()
    log_path = folder / f"wyoming-{port}.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed by the caller
    process = subprocess.Popen(
        [sys.executable, "-m", "ishowtts_ros.wyoming.server", "--uri", f"tcp://127.0.0.1:{port}", *engine_args],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, log_path.read_text()
        if READY_LINE in log_path.read_text():
            return process, port, log
        time.sleep(0.3)
    process.kill()
    raise AssertionError(f"Wyoming server did not start; log:\n{log_path.read_text()}")


def wyoming_speech(port: int, text: str, timeout: float = 60.0) -> tuple[np.ndarray, int]:
    """What a Wyoming server on loopback ``port`` says for ``text`` (one ``synthesize``): int16 samples, rate."""
    from wyoming.audio import AudioChunk
    from wyoming.client import AsyncTcpClient
    from wyoming.tts import Synthesize

    async def speak() -> tuple[np.ndarray, int]:
        audio, rate = b"", 0
        async with AsyncTcpClient("127.0.0.1", port) as client:
            await client.write_event(Synthesize(text=text).event())
            while (event := await asyncio.wait_for(client.read_event(), timeout)) is not None:
                if AudioChunk.is_type(event.type):
                    chunk = AudioChunk.from_event(event)
                    audio, rate = audio + chunk.audio, chunk.rate
                elif event.type == "audio-stop":
                    return np.frombuffer(audio, dtype="<i2"), rate
        raise AssertionError("the server closed the connection before audio-stop")

    return asyncio.run(speak())
