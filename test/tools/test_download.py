"""``ishowtts download``: offline it fails in seconds with what to copy where and writes nothing; what it fetched is
checked against the architecture; and files where it puts them make ``auto`` pick F5."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from ishowtts_ros.core.engine import EngineConfig
from ishowtts_ros.download import DownloadError, verify_checkpoint
from ishowtts_ros.engines.f5.models import build_cfm
from ishowtts_ros.engines.registry import choose_engine

TEXT, OUT = "ema_model.transformer.text_embed.text_embed.weight", "ema_model.transformer.proj_out.weight"


@pytest.mark.slow  # starts the CLI
def test_offline_download_fails_fast_says_what_to_copy_where_and_writes_nothing(tmp_path):
    target = tmp_path / "models"
    result = subprocess.run(
        [sys.executable, "-m", "ishowtts_ros.cli", "download", "--dir", str(target)],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")},
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    for needed in ("F5TTS_v1_Base/model_1250000.safetensors", "vocos-mel-24khz/config.yaml", "pytorch_model.bin"):
        assert f"{target}/{needed}" in result.stderr or needed in result.stderr, needed
    assert f"--checkpoint {target}/F5TTS_v1_Base/model_1250000.safetensors" in result.stderr
    assert not target.exists() and not (tmp_path / "hf").exists()


@pytest.mark.slow  # starts the CLI
def test_a_community_model_offline_fails_fast_with_what_to_copy_where(tmp_path):
    target = tmp_path / "german"
    result = subprocess.run(
        [sys.executable, "-m", "ishowtts_ros.cli", "download", "--dir", str(target),
         "--checkpoint", "hf://hvoss-techfak/F5-TTS-German/model_f5tts_german.pt", "--model", "F5TTS_Base"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")},
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    help_text = result.stderr
    for url in ("https://huggingface.co/hvoss-techfak/F5-TTS-German/resolve/main/model_f5tts_german.pt",
                "https://huggingface.co/hvoss-techfak/F5-TTS-German/resolve/main/vocab.txt"):  # fmt: skip
        assert url in help_text, url
    assert f"--checkpoint {target}/model_f5tts_german.pt --vocab {target}/vocab.txt --model 'F5TTS_Base'" in help_text
    assert not target.exists()


def test_a_training_checkpoint_with_a_community_vocab_passes_the_check(tmp_path):
    from support.engines import GERMAN_CHARACTERS, save_community_model

    model = '{"dim": 64, "depth": 2, "heads": 4, "ff_mult": 2, "text_dim": 32, "conv_layers": 1}'
    safetensors_file = save_community_model(tmp_path, model)
    training_file = tmp_path / "model_last.pt"
    torch.save({"ema_model_state_dict": load_file(str(safetensors_file))}, training_file)
    keys = json.loads(model)
    for path in (safetensors_file, training_file):
        assert verify_checkpoint(path, "F5TTS_v1_Base", keys, str(tmp_path / "vocab.txt")) > 0
        with pytest.raises(
            DownloadError, match=f"text embedding has {len(GERMAN_CHARACTERS)} characters, the vocab 2545"
        ):
            verify_checkpoint(path, "F5TTS_v1_Base", keys)  # upstream's vocab: not this model's


def ema_weights(arch: str = "tiny") -> dict:
    state = {k: v.contiguous() for k, v in build_cfm(arch).state_dict().items() if not k.startswith("mel_spec")}
    return {f"ema_model.{key}": value for key, value in state.items()}


def test_a_checkpoint_with_every_weight_passes_the_check(tmp_path):
    path = tmp_path / "model.safetensors"
    save_file(ema_weights(), str(path))
    assert verify_checkpoint(path, "tiny") == len(ema_weights())


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda w: w.pop(next(iter(w))), "1 weights missing"),
        (lambda w: w.update({TEXT: w[TEXT][:1]}), "its text embedding has 0 characters, the vocab 2545"),
        (lambda w: w.update({OUT: w[OUT][:1]}), r"1 of another shape \(e\.g\. transformer\.proj_out\.weight"),
    ],
)
def test_a_checkpoint_that_does_not_fit_is_refused(tmp_path, damage, reason):
    weights = ema_weights()
    damage(weights)
    path = tmp_path / "model.safetensors"
    save_file(weights, str(path))
    with pytest.raises(DownloadError, match=reason):
        verify_checkpoint(path, "tiny")


def test_a_file_that_is_not_safetensors_is_refused(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"<html>rate limited</html>")
    with pytest.raises(DownloadError, match="not a readable safetensors file"):
        verify_checkpoint(path, "tiny")


def put_in_hub_cache(hub: Path, repo: str, files: list[str]) -> None:
    """Files laid out as huggingface_hub's cache holds them (what hf_hub_download leaves behind)."""
    folder = hub / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text("0" * 40)
    for name in files:
        path = folder / "snapshots" / ("0" * 40) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"weights")


def test_auto_picks_f5_once_the_files_are_where_download_puts_them(tmp_path, monkeypatch):
    import huggingface_hub.constants

    # huggingface_hub reads HF_HUB_CACHE once, at import; this process imported it already.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    plugin, passed_over = choose_engine("auto", EngineConfig())
    assert plugin.name == "espeak" and "is not in the local Hugging Face cache" in passed_over
    put_in_hub_cache(tmp_path / "hub", "SWivid/F5-TTS", ["F5TTS_v1_Base/model_1250000.safetensors"])
    put_in_hub_cache(tmp_path / "hub", "charactr/vocos-mel-24khz", ["config.yaml", "pytorch_model.bin"])
    plugin, passed_over = choose_engine("auto", EngineConfig())
    assert (plugin.name, passed_over) == ("f5", None)
