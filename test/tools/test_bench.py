"""The benchmark's CPU smoke version (tiny model): runs upstream and the engine side by side and writes the
table, JSON and plot. No timing assertions: speed is measured on a GPU and recorded in docs/BENCHMARKS.md."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from ishowtts_ros.bench.workloads import write_model_files
from ishowtts_ros.engines.f5.models import load_models, random_models

pytestmark = pytest.mark.slow


def test_cpu_smoke_benchmark_writes_table_json_and_plot(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ishowtts_ros.bench.run",
            "--device",
            "cpu",
            "--texts",
            "short,medium",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| engine | short | 4 |" in result.stdout and "| upstream | medium | 4 |" in result.stdout
    report = json.loads((tmp_path / "bench.json").read_text())
    assert report["smoke"] is True
    assert {row["impl"] for row in report["rows"]} == {"engine", "upstream"}
    assert all(row["rtf"] > 0 and row["audio_s"] > 0 for row in report["rows"])
    assert report["quality"]["bf16"] <= 2e-2
    assert report["streaming"]["chunks"] >= 1
    assert (tmp_path / "bench.png").stat().st_size > 10_000


def test_startup_model_files_load_back_as_the_random_model_they_were_written_from(tmp_path):
    """``bench --startup --startup-files`` times the robot's loading path on files holding the benchmark's model."""
    checkpoint, vocoder = write_model_files(tmp_path, "random:F5TTS_v1_Base:3")
    loaded = load_models(checkpoint, vocoder)
    written = random_models("F5TTS_v1_Base", seed=3)
    for got, want in zip(loaded, written, strict=True):
        assert got.state_dict().keys() == want.state_dict().keys()
        assert all(torch.equal(value, want.state_dict()[name]) for name, value in got.state_dict().items())
    with pytest.raises(ValueError, match="random:F5TTS_v1_Base"):
        write_model_files(tmp_path, "random:tiny")
