"""A process that ends without closing its engine (a script, a crashed owner) still ends cleanly: the engine is
closed at interpreter exit, so no worker thread is inside torch while Python finalizes (that aborted a process
with "terminate called without an active exception")."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # a subprocess that imports torch

# The check is registered before the engine exists: exit hooks run last-registered first, so it runs after the
# engine's own hook, and it holds the engine so the weak reference there is still alive.
CODE = """
import atexit
from support.engines import tiny_f5
engines = []
atexit.register(lambda: print("worker alive after the exit hooks:", engines[0].scheduler.worker.is_alive()))
engines.append(tiny_f5())
print("spoke:", engines[0].synthesize_all("Hello there.").audio_seconds > 0)
"""


def test_an_engine_never_closed_is_closed_when_the_process_exits():
    done = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines()[-2:] == ["spoke: True", "worker alive after the exit hooks: False"], done.stdout
