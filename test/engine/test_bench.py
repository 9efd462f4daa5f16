"""The benchmark's CPU smoke version (tiny model): runs upstream and the engine side by side and writes the
table, JSON and plot. No timing assertions: speed is measured on a GPU and recorded in docs/BENCHMARKS.md."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

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
