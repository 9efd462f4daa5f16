"""The engine imports upstream's model code without upstream's training stack (its Trainer pulls in accelerate,
wandb and datasets) or einx's solver (sympy, torch._dynamo), and reads checkpoints without upstream's inference
utilities (transformers, matplotlib): seconds of a robot's start-up. The packages still behave as they ship."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # a subprocess that imports torch: a clean sys.modules

CODE = """
import sys, tempfile
from safetensors.torch import save_file
from ishowtts_ros.engines.f5.models import build_cfm, load_ema_weights, skipped_weight_init
from ishowtts_ros.engines.f5.sampler import FlowSampler
import torch
weights = {f"ema_model.{key}": value for key, value in build_cfm("tiny").state_dict().items()}
with tempfile.TemporaryDirectory() as folder, skipped_weight_init():  # a checkpoint file, read as load_models reads it
    save_file(weights, f"{folder}/model.safetensors")
    cfm = build_cfm("tiny")
    load_ema_weights(cfm, f"{folder}/model.safetensors")
FlowSampler(cfm, torch.device("cpu"), torch.float32).sample  # the engine's own model code
loaded = ("f5_tts.model.trainer", "f5_tts.model.dataset", "accelerate", "f5_tts.infer.utils_infer", "transformers",
          "einx._src")
if tuple(int(part) for part in torch.__version__.split(".")[:2]) >= (2, 8):  # before 2.8, einops imports it itself
    loaded += ("sympy", "torch._dynamo")
print(sorted(name for name in loaded if name in sys.modules))
from f5_tts.model import CFM, Trainer
import f5_tts.model
print(Trainer.__name__, CFM is sys.modules["f5_tts.model.cfm"].CFM, f5_tts.model.DiT.__name__)
try:
    f5_tts.model.NoSuchName
except AttributeError as exc:
    print(exc)
import einx
print(einx.subtract("i, j -> i j", torch.arange(2), torch.arange(3)).tolist())
"""


def test_the_engine_leaves_upstreams_trainer_and_einxs_solver_unimported_and_the_packages_whole_for_everyone_else():
    done = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-4:] == [
        "[]",
        "Trainer True DiT",
        "module 'f5_tts.model' has no attribute 'NoSuchName'",
        "[[0, -1, -2], [1, 0, -1]]",
    ], done.stdout
