"""torch.compile is an optimisation, never a way to lose the voice: without Triton it is not attempted on CUDA, and
a compile that fails at warm-up (here: a real C++ toolchain failure on the CPU) leaves an engine that speaks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ishowtts_ros.engines.f5.engine import compile_choice

TEST_ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # subprocesses that import torch


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env={**os.environ, **env}
    )


def test_without_triton_cuda_runs_without_compile_and_says_why():
    code = (
        "import torch\nfrom ishowtts_ros.engines.f5.engine import compile_choice\n"
        "print(compile_choice(None, torch.device('cuda')))\nprint(compile_choice(False, torch.device('cuda')))"
    )
    result = run_python(code, PYTHONPATH=os.pathsep.join([str(TEST_ROOT / "support" / "no_triton"), str(TEST_ROOT)]))
    assert result.returncode == 0, result.stderr
    auto, off = result.stdout.strip().splitlines()
    assert auto.startswith("(False, ") and "Triton cannot be imported (ModuleNotFoundError" in auto
    assert "CUDA graphs without compile" in auto
    assert off == "(False, 'off by configuration')"


def test_compile_choice_with_triton_and_on_the_cpu():
    pytest.importorskip("triton")
    assert compile_choice(None, torch.device("cuda")) == (True, "on")
    assert compile_choice(None, torch.device("cpu")) == (False, "not used on the CPU")


def test_a_compile_that_fails_at_warm_up_leaves_an_engine_that_speaks(tmp_path):
    code = (
        "from support.engines import tiny_f5\nengine = tiny_f5(compile=True)\nengine.warmup()\n"
        "result = engine.synthesize_all('Hello there.')\n"
        "print(engine.describe()['compiled'], result.audio_seconds > 0, engine.describe()['compile_progress'])\n"
        "print(engine.describe()['compile_note'])\n"
        "engine.close()"  # as the node does at shutdown: no worker thread is inside torch when the process ends
    )
    result = run_python(code, CXX="/bin/false", TORCHINDUCTOR_CACHE_DIR=str(tmp_path / "inductor"))
    assert result.returncode == 0, result.stderr[-3000:]
    compiled, note = result.stdout.strip().splitlines()[-2:]
    assert compiled == "False True failed"
    assert note.startswith("it failed at warm-up (") and "C++ compiler" in note
    assert "torch.compile is off" in result.stderr
