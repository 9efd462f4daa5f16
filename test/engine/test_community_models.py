"""Community F5 models: a checkpoint, its own vocab.txt and its architecture (v0 or v1 layout, Base or Small size),
set together. Models are built with the upstream classes and a German vocabulary, saved as upstream's trainer saves
them, and loaded as the engine loads them; every weight and the character map are compared with upstream's own
loader (``f5_tts.infer.utils_infer.load_model``). A checkpoint that does not fit its vocab or model is refused
with a message naming all three settings."""

from __future__ import annotations

import logging
import subprocess
import sys
from importlib.resources import files

import pytest
import torch
from support.engines import GERMAN_CHARACTERS, save_community_model

from ishowtts_ros.core.errors import EngineError
from ishowtts_ros.core.service import SpeechService, Utterance
from ishowtts_ros.engines.f5.checkpoint import ModelSpec
from ishowtts_ros.engines.f5.engine import F5Engine
from ishowtts_ros.engines.f5.models import load_models
from ishowtts_ros.engines.f5.options import F5Config

pytestmark = pytest.mark.slow
#: (model setting, keys upstream's load_model is given): tiny v0 and v1 as the model cards print configs, and the
#: Small size of upstream's v0 config (dim 768, depth 18: F5-TTS Small, as the Arabic and Hindi models are)
MODELS = {
    "tiny_v0": ('{"dim": 64, "depth": 2, "heads": 4, "ff_mult": 2, "text_dim": 32, "text_mask_padding": False, '
                '"conv_layers": 1, "pe_attn_head": 1}'),
    "tiny_v1": '{"dim": 64, "depth": 2, "heads": 4, "ff_mult": 2, "text_dim": 32, "conv_layers": 1}',
    "small_v0": "F5TTS_Small",
}  # fmt: skip


def upstream_arch(model: str) -> dict:
    """The DiT config upstream's load_model takes for the model setting (what its CLI reads from a config)."""
    from omegaconf import OmegaConf

    spec = ModelSpec.parse("unused.safetensors", "", model)
    base = OmegaConf.load(str(files("f5_tts").joinpath(f"configs/{spec.arch}.yaml")))
    return {**dict(base.model.arch), **spec.keys}


@pytest.mark.parametrize("name", list(MODELS))
def test_a_community_model_loads_as_upstreams_loader_loads_it(name, tmp_path):
    from f5_tts.infer.utils_infer import load_model
    from f5_tts.model import DiT

    checkpoint = save_community_model(tmp_path, MODELS[name])
    ours, _ = load_models(str(checkpoint), "random", model=MODELS[name])  # vocab.txt beside it, by default
    theirs = load_model(DiT, upstream_arch(MODELS[name]), str(checkpoint), "vocos", str(tmp_path / "vocab.txt"),
                        device="cpu")  # fmt: skip
    assert ours.vocab_char_map == theirs.vocab_char_map
    assert set(GERMAN_CHARACTERS) <= set(ours.vocab_char_map)
    mine, upstream = ours.state_dict(), theirs.state_dict()
    assert mine.keys() == upstream.keys()
    for key, value in mine.items():
        assert torch.equal(value, upstream[key].float()), key


def test_a_vocab_that_does_not_fit_the_checkpoint_names_all_three_settings(tmp_path):
    checkpoint = save_community_model(tmp_path, MODELS["tiny_v0"])
    (tmp_path / "vocab.txt").rename(tmp_path / "german.txt")  # the default is now upstream's vocab (2545 characters)
    with pytest.raises(EngineError) as refused:
        load_models(str(checkpoint), "random", model=MODELS["tiny_v0"])
    message = str(refused.value)
    assert f"text embedding has {len(GERMAN_CHARACTERS)} characters, the vocab 2545" in message
    assert f"checkpoint={checkpoint}, vocab=(upstream vocab.txt), model=" in message


def test_a_model_that_does_not_fit_the_checkpoint_names_all_three_settings(tmp_path):
    checkpoint = save_community_model(tmp_path, MODELS["tiny_v0"])
    with pytest.raises(
        EngineError,
        match=r"does not fit this model \(\d+ weights missing .*of another shape .*\); .*model=F5TTS_v1_Base$",
    ):
        load_models(str(checkpoint), "random")  # a v1 Base where a tiny v0 was saved


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        ({"checkpoint": "hf://owner-only"}, "a hub file is hf://owner/repo/file"),
        ({"model": "{'dim': 64,"}, "neither an upstream config name nor a config dict"),
        ({"model": '{"dimension": 64}'}, "model config keys dimension are not DiT settings"),
        ({"model": "F5TTS_Huge"}, "unknown F5 architecture 'F5TTS_Huge'"),
        ({"vocab": "/nonexistent/vocab.txt"}, "vocab file /nonexistent/vocab.txt does not exist"),
    ],
)
def test_bad_model_settings_are_refused_with_the_reason(settings, reason):
    arguments = {"checkpoint": "random:tiny", **settings}
    with pytest.raises(EngineError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        load_models(
            arguments["checkpoint"], "random", model=arguments.get("model", ""), vocab=arguments.get("vocab", "")
        )


def test_the_engine_speaks_with_a_community_model_and_its_vocabulary(tmp_path):
    checkpoint = save_community_model(tmp_path, MODELS["tiny_v0"])
    engine = F5Engine(F5Config(device="cpu", checkpoint=str(checkpoint), model=MODELS["tiny_v0"], vocoder="random"))
    try:
        assert engine.sampler.cfm.vocab_char_map["ü"] == GERMAN_CHARACTERS.index("ü")
        facts = engine.describe()
        assert facts["architecture"] == "DiT v0 layout: dim 64, depth 2, heads 4, positions on 1 head(s)"
        assert facts["vocab_size"] == len(GERMAN_CHARACTERS) and facts["vocab"] == str(tmp_path / "vocab.txt")
        assert facts["license"] == "unknown: see the model card of this checkpoint"
        result = engine.synthesize_all("Grüße aus Köln.", options={"nfe_step": 4, "seed": 1})
        assert result.audio_seconds > 0.2
    finally:
        engine.close()


def test_characters_the_model_cannot_say_are_reported_never_silently_dropped(tmp_path, caplog):
    checkpoint = save_community_model(tmp_path, MODELS["tiny_v0"])
    engine = F5Engine(F5Config(device="cpu", checkpoint=str(checkpoint), model=MODELS["tiny_v0"], vocoder="random"))
    events: list[tuple[str, dict]] = []
    speech = SpeechService(
        engine, queue_size=4, on_event=lambda name, payload: events.append((name, payload)),
        on_chunk=lambda utterance, chunk: None, on_speaking=lambda speaking: None,
    )  # fmt: skip
    try:
        text = "Grüße aus Köln. ¿Qué tal?"
        assert engine.prepare(text, normalize=False).unsayable == ("¿", "é")
        assert speech.submit(Utterance(text=text, voice="", options={"nfe_step": 4}, normalize=False))
        queued = next(payload for name, payload in events if name == "queued")
        assert queued["unsayable"] == ["¿", "é"]
        with caplog.at_level(logging.WARNING):
            engine.synthesize_all(text, options={"nfe_step": 4}, normalize=False)
        assert "not in the f5 model's vocabulary, so not spoken: ¿ é" in caplog.text
    finally:
        speech.close()
        engine.close()


def test_a_voice_whose_reference_text_the_model_cannot_read_is_named_at_load(tmp_path, caplog):
    checkpoint = save_community_model(tmp_path, MODELS["tiny_v0"])  # German characters only
    with caplog.at_level(logging.WARNING):
        engine = F5Engine(F5Config(device="cpu", checkpoint=str(checkpoint), model=MODELS["tiny_v0"], vocoder="random"))
    engine.close()
    assert "voice nature_zh (language zh)" in caplog.text and "cannot speak that language" in caplog.text
    assert "voice nature (language en)" not in caplog.text  # English letters are in the German vocabulary


def test_cli_dry_run_shows_what_the_model_cannot_say(tmp_path):
    checkpoint = save_community_model(tmp_path, MODELS["tiny_v0"])
    result = subprocess.run(
        [sys.executable, "-m", "ishowtts_ros.cli", "say", "¿Qué tal? Grüße!", "--dry-run", "--engine", "f5",
         "--checkpoint", str(checkpoint), "--model", MODELS["tiny_v0"], "--device", "cpu", "--vocoder", "random"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    output = " ".join(result.stderr.split())
    assert "not in the model's vocabulary, so not spoken: ¿ é" in output
    assert not (tmp_path / "ishowtts.wav").exists()
