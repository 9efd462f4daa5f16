"""The license of a model's weights, as upstream's model cards (f5_tts/infer/SHARED.md) state it."""

from __future__ import annotations

import pytest

from ishowtts_ros.engines.f5.cards import card_licenses, model_license
from ishowtts_ros.engines.f5.checkpoint import ModelSpec

pytest.importorskip("f5_tts", reason="the model cards ship with f5-tts")


@pytest.mark.parametrize(
    ("checkpoint", "license_"),
    [
        ("", "cc-by-nc-4.0 (model card of SWivid/F5-TTS)"),
        ("hf://jpgallegoar/F5-Spanish/model_1200000.safetensors", "cc0-1.0 (model card of jpgallegoar/F5-Spanish)"),
        ("hf://silma-ai/silma-tts/model.safetensors", "Apache-2.0 (model card of silma-ai/silma-tts)"),
        (
            "hf://SPRINGLab/F5-Hindi-24KHz/model_2500000.safetensors",
            "cc-by-4.0 (model card of SPRINGLab/F5-Hindi-24KHz)",
        ),
        ("hf://someone/unlisted/model.pt", "unknown: see the model card of this checkpoint"),
        ("/models/model.safetensors", "unknown: see the model card of this checkpoint"),
        ("random:tiny", "random weights (tests and benchmarks)"),
    ],
)
def test_the_license_is_the_model_cards(checkpoint, license_):
    assert model_license(ModelSpec.parse(checkpoint)) == license_


def test_every_card_with_a_hub_model_has_its_license():
    licenses = card_licenses()
    assert len(licenses) >= 10 and all(licenses.values())
