"""The ``ishowtts`` command as users run it: a real subprocess, real engines."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile
from support.engines import TINY_CHECKPOINT, write_voices_file
from support.markers import needs_f5

pytestmark = pytest.mark.slow  # each test starts the CLI as a subprocess


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ishowtts_ros.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


def test_say_with_espeak_writes_wav_and_prints_figures(tmp_path):
    out = tmp_path / "hello.wav"
    result = run_cli("say", "Hello from the command line.", "--engine", "espeak", "--out", str(out))
    assert result.returncode == 0, result.stderr
    samples, rate = soundfile.read(str(out))
    assert rate == 22050 and np.sqrt(np.mean(samples**2)) > 0.01
    for label in ("audio seconds", "synthesis seconds", "RTF", "time to first audio"):
        assert label in result.stdout
    rtf = float(re.search(r"RTF:\s+([0-9.]+)", result.stdout).group(1))
    assert rtf > 0


@needs_f5
def test_say_with_tiny_f5(tmp_path):
    out = tmp_path / "f5.wav"
    result = run_cli(
        "say", "A tiny model speaks.", "--engine", "f5", "--checkpoint", TINY_CHECKPOINT, "--device", "cpu",
        "--nfe", "4", "--seed", "3", "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    info = soundfile.info(str(out))
    assert info.samplerate == 24000 and info.duration > 0.5


def test_voices_lists_the_default_voice():
    result = run_cli("voices")
    assert result.returncode == 0, result.stderr
    assert "nature (default)" in result.stdout and "basic_ref_en.wav" in result.stdout


def test_voices_piped_prints_whole_paths_however_long(tmp_path):
    folder = tmp_path.joinpath(*["a_rather_long_folder_name"] * 6)
    voices_file = write_voices_file(folder)
    result = run_cli("voices", "--voices-file", str(voices_file))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"tester (default)\ten\t\t{folder / 'tester.wav'}"]


def test_bad_input_exits_2_with_a_clear_message(tmp_path):
    result = run_cli("say", "Hello.", "--engine", "espeak", "--voice", "nobody", "--out", str(tmp_path / "x.wav"))
    assert result.returncode == 2
    assert "unknown voice 'nobody'" in result.stderr
    result = run_cli("say", "Hello.", "--engine", "piper")
    assert result.returncode == 2
    assert "unknown engine 'piper'" in result.stderr and "espeak: espeak-ng formant speech" in result.stderr
    result = run_cli("say", "   ", "--engine", "espeak", "--out", str(tmp_path / "y.wav"))
    assert result.returncode == 2 and "text is empty" in result.stderr


@needs_f5
def test_a_bad_option_exits_2_with_its_range():
    result = run_cli("say", "Hi.", "--engine", "f5", "--checkpoint", TINY_CHECKPOINT, "--device", "cpu", "--nfe", "1")
    assert result.returncode == 2 and "nfe_step=1 is below the minimum 2" in result.stderr


def test_usage_error_exits_2():
    result = run_cli("say")
    assert result.returncode == 2


def test_normalize_prints_exactly_what_is_spoken():
    result = run_cli("normalize", "Battery at 12%. Obstacle in 1.5 m.")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Battery at twelve percent. Obstacle in one point five meters."
    result = run_cli("normalize", "电池电量12%。", "--language", "zh")
    assert result.stdout.strip() == "电池电量百分之十二。"
    result = run_cli("normalize", "前方3.5米。", "--voice", "nature_zh")  # the voice's language decides
    assert result.stdout.strip() == "前方三点五米。"
    result = run_cli("normalize", "   ")
    assert result.returncode == 2 and "text is empty" in result.stdout + result.stderr
