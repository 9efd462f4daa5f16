"""A third-party engine with an option of its own (the tone engine's ``pitch``), registered through an entry point
of an installed-like package, reaches the CLI's flags and the Wyoming server's settings with no change to either:
its spec gives the flag, its range is enforced, and the value reaches the audio (read back as the tone's frequency).
The node's side (a ROS parameter with its range in rqt's descriptor) is ``test/ros/test_plugin_parameters.py``."""

from __future__ import annotations

import subprocess
import sys

import pytest
import soundfile
from support.engines import PLUGIN_FOLDER, dominant_hz, with_plugin_package

from ishowtts_ros.core.engine import EngineConfig
from ishowtts_ros.engines import registry

TEXT = "one two three four five"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ishowtts_ros.cli", *args], capture_output=True, text=True, timeout=120,
        env=with_plugin_package(),
    )  # fmt: skip


def test_the_registry_reads_the_plugin_without_importing_the_engine(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGIN_FOLDER))
    found = registry.plugins()
    assert {"f5", "espeak", "tone"} <= set(found)
    tone = found["tone"]
    assert tone.options["pitch"].range_text == "-12 to 12"
    assert "ishowtts_tone_engine.engine" not in sys.modules  # the specs alone: the engine is imported when built
    assert "pitch" in registry.all_options() and registry.all_options()["pitch"][1] == ["tone"]
    assert registry.choose_engine("auto", EngineConfig())[0].name != "tone"  # it did not opt into auto
    engine = registry.create_engine("tone")
    assert engine.resolve_options({"pitch": 12})["pitch"] == 12.0


def test_the_plugin_option_is_a_cli_flag_with_its_range_and_reaches_the_audio(tmp_path):
    assert "--pitch FLOAT" in cli("say", "--help").stdout
    out = tmp_path / "high.wav"
    result = cli("say", TEXT, "--engine", "tone", "--pitch", "12", "--out", str(out), "--no-normalize")
    assert result.returncode == 0, result.stderr
    samples, rate = soundfile.read(str(out))
    assert dominant_hz(samples, rate) == pytest.approx(440.0, rel=0.02)

    refused = cli("say", TEXT, "--engine", "tone", "--pitch", "13", "--out", str(tmp_path / "no.wav"))
    assert refused.returncode == 2 and "option pitch=13.0 is above the maximum 12.0" in " ".join(refused.stderr.split())


def test_an_option_the_chosen_engine_lacks_is_named_not_silently_dropped(tmp_path):
    result = cli("say", TEXT, "--engine", "espeak", "--pitch", "3", "--out", str(tmp_path / "espeak.wav"))
    assert result.returncode == 0, result.stderr
    assert "engine espeak has no option pitch: --pitch is ignored" in " ".join(result.stderr.split())


def test_the_plugin_option_is_a_wyoming_server_setting(tmp_path):
    pytest.importorskip("wyoming")
    from support.net import start_wyoming_server, wyoming_speech

    process, port, log = start_wyoming_server(
        tmp_path, "--engine", "tone", "--pitch", "-12", "--no-warmup", env=with_plugin_package()
    )
    try:
        assert dominant_hz(*wyoming_speech(port, TEXT)) == pytest.approx(110.0, rel=0.02)
    finally:
        process.terminate()
        process.wait(10)
        log.close()
