"""Every bad input gets a clear error that names what is wrong."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import soundfile
from support.engines import REFERENCE_TEXT, TINY_CHECKPOINT, tiny_f5, write_voices_file

from ishowtts_ros.core.engine import EngineConfig
from ishowtts_ros.core.errors import EngineError, VoiceError
from ishowtts_ros.core.voices import VoiceRegistry
from ishowtts_ros.engines.f5.engine import F5Engine
from ishowtts_ros.engines.registry import create_engine


def tiny(voices_file=None, **kwargs) -> F5Engine:
    return tiny_f5(voices_file=voices_file, **kwargs)


def test_unknown_engine_lists_the_available_ones():
    with pytest.raises(EngineError, match=r"unknown engine 'piper'; available: .*espeak.*f5.*auto"):
        create_engine("piper")


def test_unknown_voice_names_voice_and_file(tiny_engine):
    with pytest.raises(VoiceError, match=r"unknown voice 'robbie'; available: nature.*voices\.yaml"):
        tiny_engine.synthesize_all("Hello.", voice="robbie")


def test_missing_reference_audio_names_voice_and_file(tmp_path):
    voices = write_voices_file(tmp_path, {"ghost": {"audio": "nowhere.wav", "text": "Hi there.", "language": "en"}})
    with pytest.raises(VoiceError, match=r"voice 'ghost': reference audio .*nowhere\.wav does not exist"):
        tiny(voices).synthesize_all("Hello.")


def test_unreadable_reference_audio(tmp_path):
    (tmp_path / "broken.wav").write_bytes(b"this is not audio")
    voices = write_voices_file(tmp_path, {"broken": {"audio": "broken.wav", "text": "Hi there.", "language": "en"}})
    with pytest.raises(VoiceError, match=r"voice 'broken'.*broken\.wav cannot be read as audio"):
        tiny(voices).synthesize_all("Hello.")


@pytest.mark.parametrize(
    ("samples", "rate", "reason"),
    [
        (np.zeros(24000 * 3, dtype=np.float32), 24000, "is silent"),
        (np.random.default_rng(0).uniform(-0.5, 0.5, 8000 * 3).astype(np.float32), 8000, "sampled at 8000 Hz"),
        (np.random.default_rng(0).uniform(-0.5, 0.5, 16000 * 40).astype(np.float32), 16000, "40.0 s long"),
    ],
)
def test_unusable_reference_audio(tmp_path, samples, rate, reason):
    soundfile.write(str(tmp_path / "bad.wav"), samples, rate)
    voices = write_voices_file(tmp_path, {"bad": {"audio": "bad.wav", "text": "Hi there.", "language": "en"}})
    with pytest.raises(VoiceError, match=reason):
        tiny(voices).synthesize_all("Hello.")


def test_empty_transcript_names_voice_and_file(tmp_path):
    voices = write_voices_file(tmp_path, {"mute": {"audio": "x.wav", "text": "  ", "language": "en"}})
    with pytest.raises(VoiceError, match=r"voice 'mute' in .*voices\.yaml has an empty transcript"):
        VoiceRegistry.load(voices)


def test_missing_and_malformed_voices_files(tmp_path):
    with pytest.raises(VoiceError, match=r"voices file .*absent\.yaml does not exist"):
        VoiceRegistry.load(tmp_path / "absent.yaml")
    (tmp_path / "bad.yaml").write_text("voices: [unclosed", encoding="utf-8")
    with pytest.raises(VoiceError, match="is not valid YAML"):
        VoiceRegistry.load(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(VoiceError, match="must be a mapping"):
        VoiceRegistry.load(tmp_path / "list.yaml")


def test_default_voice_must_exist(tmp_path):
    voices = write_voices_file(tmp_path, {"a": {"audio": "a.wav", "text": REFERENCE_TEXT}}, default="b")
    with pytest.raises(VoiceError, match="default voice 'b' is not one of"):
        VoiceRegistry.load(voices)


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "\x00\x01"])
def test_empty_text_is_refused(tiny_engine, text):
    with pytest.raises(EngineError, match="text is empty"):
        tiny_engine.synthesize_all(text)


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"nfe_step": 1}, "below the minimum"),
        ({"nfe_step": 65}, "above the maximum"),
        ({"nfe_step": "eight"}, "must be an integer"),
        ({"nfe_step": 8.5}, "must be an integer"),
        ({"cfg_strength": float("nan")}, "must be finite"),
        ({"speed": True}, "must be a number"),
        ({"volume": 1.0}, "has no option 'volume'"),
    ],
)
def test_bad_options_are_refused(tiny_engine, options, reason):
    with pytest.raises(EngineError, match=reason):
        tiny_engine.synthesize_all("Hello.", options=options)


@pytest.mark.slow  # imports upstream's inference module (~2 s)
def test_missing_checkpoint_file_says_how_to_fix():
    with pytest.raises(EngineError, match=r"checkpoint file /no/such/model\.safetensors does not exist.*checkpoint:="):
        F5Engine(EngineConfig(checkpoint="/no/such/model.safetensors", device="cpu"))


@pytest.mark.slow  # cached_path retries the hub before it gives up (~20 s)
def test_offline_hub_download_says_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(EngineError, match=r"SWivid/F5-TTS.*not available.*model_1250000\.safetensors"):
        F5Engine(EngineConfig(checkpoint="hub", device="cpu"))


def test_auto_falls_back_to_espeak_with_a_reason(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with caplog.at_level(logging.WARNING):
        engine = create_engine("auto")
    assert engine.name == "espeak"
    assert "not in the local Hugging Face cache" in caplog.text
    assert "checkpoint:=" in caplog.text or "set checkpoint" in caplog.text


def test_auto_picks_f5_when_a_checkpoint_is_at_hand():
    engine = create_engine("auto", EngineConfig(checkpoint=TINY_CHECKPOINT, device="cpu"))
    assert engine.name == "f5"


def test_unknown_precision_is_refused():
    with pytest.raises(EngineError, match="precision 'fp8' is not one of auto, fp32, fp16, bf16"):
        tiny(precision="fp8")
