"""The engine imports upstream's model code without upstream's training stack (its Trainer pulls in accelerate,
wandb and datasets, seconds of a robot's start-up), and the package still behaves as upstream ships it."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # a subprocess that imports torch: a clean sys.modules

CODE = """
import sys
from ishowtts_ros.engines.f5.models import build_cfm
from ishowtts_ros.engines.f5.sampler import FlowSampler
import torch
FlowSampler(build_cfm("tiny"), torch.device("cpu"), torch.float32).sample  # the engine's own model code
print(sorted(name for name in ("f5_tts.model.trainer", "f5_tts.model.dataset", "accelerate") if name in sys.modules))
from f5_tts.model import CFM, Trainer
import f5_tts.model
print(Trainer.__name__, CFM is sys.modules["f5_tts.model.cfm"].CFM, f5_tts.model.DiT.__name__)
try:
    f5_tts.model.NoSuchName
except AttributeError as exc:
    print(exc)
"""


def test_the_engine_leaves_upstreams_trainer_unimported_and_the_package_whole_for_everyone_else():
    done = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-3:] == [
        "[]",
        "Trainer True DiT",
        "module 'f5_tts.model' has no attribute 'NoSuchName'",
    ], done.stdout
