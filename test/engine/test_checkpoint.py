"""Loading a local checkpoint in upstream's format (EMA weights in safetensors), full F5TTS_v1_Base architecture.

The model is constructed without weight initialisation before the load, so these tests also guard that nothing
is left uninitialised: every weight must come from the file, and a file that lacks one is refused."""

from __future__ import annotations

import pytest
import torch
import yaml
from safetensors.torch import save_file

from ishowtts_ros.core.errors import EngineError
from ishowtts_ros.engines.f5.models import (
    build_cfm,
    build_vocos,
    load_models,
    load_vocos,
    skipped_weight_init,
    vocos_config,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def saved_weights() -> dict[str, torch.Tensor]:
    """A full-size model's weights as upstream's trainer saves them: EMA-prefixed, fp16, with the EMA counters."""
    torch.manual_seed(21)
    cfm = build_cfm("F5TTS_v1_Base")
    weights = {f"ema_model.{name}": value.half().contiguous() for name, value in cfm.state_dict().items()}
    weights["initted"] = torch.tensor(True)
    weights["step"] = torch.tensor(1250000)
    return weights


def test_local_checkpoint_loads_every_weight(saved_weights, tmp_path):
    path = tmp_path / "model_1250000.safetensors"
    save_file(saved_weights, str(path))
    cfm, vocoder = load_models(str(path), "random")
    loaded = cfm.state_dict()
    assert set(loaded) == {name.removeprefix("ema_model.") for name in saved_weights} - {"initted", "step"}
    for name, value in loaded.items():
        assert value.dtype == torch.float32, name
        assert torch.equal(value, saved_weights[f"ema_model.{name}"].float()), name
    assert vocoder is not None


def test_checkpoint_missing_a_weight_is_refused(saved_weights, tmp_path):
    path = tmp_path / "partial.safetensors"
    missing = "ema_model.transformer.transformer_blocks.3.ff.ff.2.weight"
    save_file({k: v for k, v in saved_weights.items() if k != missing}, str(path))
    refusal = (
        r"does not fit this model \(1 weights missing \(e\.g\. transformer\.transformer_blocks\.3\.ff\.ff\.2\.weight\)"
    )
    with pytest.raises(EngineError, match=refusal):
        load_models(str(path), "random")


def test_weight_init_is_restored_after_construction():
    with skipped_weight_init():
        untouched = torch.nn.init.constant_(torch.full((3,), 7.0), 0.0)
    assert untouched.tolist() == [7.0, 7.0, 7.0]
    assert torch.nn.init.constant_(torch.full((3,), 7.0), 0.0).tolist() == [0.0, 0.0, 0.0]


def test_checkpoints_load_as_upstreams_load_checkpoint_loads_them(saved_weights, tmp_path):
    """The engine reads upstream's files itself (upstream's loader module costs seconds of imports): the released
    safetensors layout and a training .pt give every weight exactly as upstream's ``load_checkpoint`` gives it."""
    from f5_tts.infer.utils_infer import load_checkpoint

    safetensors_file, training_file = tmp_path / "model.safetensors", tmp_path / "model_last.pt"
    save_file(saved_weights, str(safetensors_file))
    torch.save({"ema_model_state_dict": saved_weights, "step": 7}, training_file)
    for path in (safetensors_file, training_file):
        ours = load_models(str(path), "random")[0].state_dict()
        with skipped_weight_init():
            theirs = load_checkpoint(build_cfm("F5TTS_v1_Base"), str(path), "cpu", torch.float32).state_dict()
        assert ours.keys() == theirs.keys(), path.name
        assert all(torch.equal(ours[name], theirs[name]) for name in ours), path.name


def test_a_local_vocos_folder_loads_as_upstreams_load_vocoder_loads_it(tmp_path):
    from f5_tts.infer.utils_infer import load_vocoder

    torch.manual_seed(5)
    saved = build_vocos("full")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(vocos_config("full")), encoding="utf-8")
    torch.save(saved.state_dict(), tmp_path / "pytorch_model.bin")
    ours = load_vocos(str(tmp_path))
    theirs = load_vocoder("vocos", is_local=True, local_path=str(tmp_path), device="cpu")
    assert ours.state_dict().keys() == theirs.state_dict().keys() == saved.state_dict().keys()
    assert all(torch.equal(value, theirs.state_dict()[name]) for name, value in ours.state_dict().items())
    assert all(torch.equal(value, saved.state_dict()[name]) for name, value in ours.state_dict().items())
