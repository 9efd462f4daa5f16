"""The engine's sampler computes upstream ``CFM.sample`` (tiny random-init model, fp32, CPU)."""

from __future__ import annotations

import copy
import importlib.util

import pytest
import torch
from f5_tts.model.utils import convert_char_to_pinyin

from ishowtts_ros.core.engine import EngineConfig
from ishowtts_ros.core.errors import EngineError
from ishowtts_ros.core.voices import VoiceRegistry
from ishowtts_ros.engines.f5.attention import PaddedLayout, attention_kind, lse_corrected_attention
from ishowtts_ros.engines.f5.engine import F5Engine
from ishowtts_ros.engines.f5.kernels.gelu_linear import GeluLinear
from ishowtts_ros.engines.f5.kernels.position_conv import channels_last_position_conv
from ishowtts_ros.engines.f5.models import random_models
from ishowtts_ros.engines.f5.options import F5Config
from ishowtts_ros.engines.f5.quality import relative_error
from ishowtts_ros.engines.f5.sampler import FlowSampler

GEN_TEXT = "I don't really care what you call me."


#: Both layouts upstream's models come in: v1 (F5TTS_v1_*) and v0 (F5TTS_Base/Small, most community models: no
#: padding mask on the text, the positional embedding on the first attention head only).
LAYOUTS = {"v1": {}, "v0": {"text_mask_padding": False, "pe_attn_head": 1}}


@pytest.fixture(scope="module", params=list(LAYOUTS))
def models(request):
    upstream, vocoder = random_models("tiny", seed=7, keys=LAYOUTS[request.param])
    engine = F5Engine(EngineConfig(device="cpu"), models=(copy.deepcopy(upstream), copy.deepcopy(vocoder)))
    return upstream, vocoder, engine


@pytest.mark.parametrize(
    ("steps", "cfg", "sway"),
    [(8, 2.0, -1.0), (7, 2.0, -1.0), (16, 2.0, None), (4, 0.0, -1.0)],
)
def test_sampler_equals_upstream_cfm_sample(models, steps, cfg, sway):
    upstream, _, engine = models
    ref = engine.reference(VoiceRegistry.load().get())
    request = engine.sample_request(ref, GEN_TEXT, {"speed": 1.0, "seed": 1234})
    expected, _ = upstream.sample(
        cond=ref.cond[None],
        text=convert_char_to_pinyin([ref.text + GEN_TEXT]),
        duration=request.duration,
        steps=steps,
        cfg_strength=cfg,
        sway_sampling_coef=sway,
        seed=1234,
    )
    got, lengths = engine.sampler.sample([request], steps=steps, cfg_strength=cfg, sway_sampling_coef=sway)
    assert got.shape == expected.shape
    assert int(lengths[0]) == expected.shape[1]
    assert relative_error(got, expected) < 1e-4


def test_engine_wave_is_vocos_of_upstream_mel(models):
    upstream, vocoder, engine = models
    voice = VoiceRegistry.load().get()
    ref = engine.reference(voice)
    options = {**engine.default_options, "seed": 99, "nfe_step": 6}
    request = engine.sample_request(ref, GEN_TEXT, options)
    mel, _ = upstream.sample(
        cond=ref.cond[None],
        text=convert_char_to_pinyin([ref.text + GEN_TEXT]),
        duration=request.duration,
        steps=6,
        cfg_strength=2.0,
        sway_sampling_coef=-1.0,
        seed=99,
    )
    with torch.inference_mode():
        expected = vocoder.decode(mel[:, ref.frames :, :].permute(0, 2, 1))[0]
    if ref.rms < 0.1:
        expected = expected * ref.rms / 0.1
    result = engine.synthesize_all(GEN_TEXT, options={"seed": 99, "nfe_step": 6})
    assert result.chunks == 1
    assert relative_error(torch.from_numpy(result.samples), expected) < 1e-4


@pytest.mark.slow  # in make test, not in make check's edit loop
def test_batched_requests_equal_single_requests(models):
    """Padding one request to another's length must not change it (the key-padding mask works)."""
    _, _, engine = models
    ref = engine.reference(VoiceRegistry.load().get())
    short = engine.sample_request(ref, "Hello there.", {"speed": 1.0, "seed": 5})
    long = engine.sample_request(ref, GEN_TEXT + " And a little more text.", {"speed": 1.0, "seed": 6})
    kwargs = dict(steps=6, cfg_strength=2.0, sway_sampling_coef=-1.0)
    batch, lengths = engine.sampler.sample([short, long], **kwargs)
    for row, request in enumerate((short, long)):
        single, _ = engine.sampler.sample([request], **kwargs)
        assert relative_error(batch[row, : int(lengths[row])], single[0]) < 1e-4


@pytest.mark.parametrize("padding", [[0, 1], [37, 5]])
def test_lse_corrected_attention_equals_attention_over_real_keys(padding):
    """Zeroed padded keys, unmasked attention and the log-sum-exp rescale give exactly the masked result."""
    torch.manual_seed(1)
    rows, heads, frames, head_dim = len(padding), 4, 96, 16
    query, key, value = (3 * torch.randn(rows, heads, frames, head_dim) for _ in range(3))
    lengths = torch.tensor([frames - p for p in padding])
    tokens = torch.arange(frames)[None, :] < lengths[:, None]
    layout = PaddedLayout(
        tokens, torch.zeros(2 * rows + 1), frames, padding=torch.tensor(padding, dtype=torch.float32).view(-1, 1, 1, 1)
    )
    corrected = lse_corrected_attention(query, key, value, layout)
    for row, length in enumerate(lengths.tolist()):
        real = slice(0, length)
        expected = torch.nn.functional.scaled_dot_product_attention(
            query[row, :, real], key[row, :, real], value[row, :, real]
        )
        assert relative_error(corrected[row, :, real], expected) < 1e-5


def test_channels_last_position_conv_equals_upstream(models):
    """The captured graphs' positional conv computes upstream's ConvPositionEmbedding, padding masked the same way."""
    upstream, _, _ = models
    module = copy.deepcopy(upstream.transformer.input_embed.conv_pos_embed).float()
    torch.manual_seed(2)
    x = torch.randn(2, 70, module.conv1d[0].in_channels)
    tokens = torch.arange(70)[None, :] < torch.tensor([70, 41])[:, None]
    with torch.inference_mode():
        assert relative_error(channels_last_position_conv(module, x, tokens), module(x, mask=tokens)) < 1e-5


def test_gelu_epilogue_replaces_tanh_gelu_only(models):
    upstream, _, _ = models
    ff = copy.deepcopy(upstream.transformer.transformer_blocks[0].ff)
    exact = copy.deepcopy(ff)
    exact.ff[0][1].approximate = "none"
    assert not GeluLinear.fuse_into(exact), "cuBLASLt's GELU epilogue is the tanh approximation"
    assert isinstance(exact.ff[0], torch.nn.Sequential)
    assert GeluLinear.fuse_into(ff)
    assert isinstance(ff.ff[0], GeluLinear)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gelu_epilogue_equals_upstream_feed_forward_on_gpu(models):
    """The GELU-in-the-epilogue feed-forward computes upstream's FeedForward (fp32, so any other GELU shows)."""
    upstream, _, _ = models
    ff = copy.deepcopy(upstream.transformer.transformer_blocks[0].ff).float().cuda()
    fused = copy.deepcopy(ff)
    assert GeluLinear.fuse_into(fused)
    torch.manual_seed(3)
    x = torch.randn(2, 333, ff.ff[0][0].in_features, device="cuda")
    assert not torch.backends.cuda.matmul.allow_tf32, "tf32 rounding would hide the GELU variant"
    with torch.inference_mode():
        assert relative_error(fused(x), ff(x)) < 1e-5


def test_attention_kind_auto_and_unknown():
    assert attention_kind("auto", torch.device("cpu")) == "sdpa"
    if importlib.util.find_spec("torch.nn.attention.varlen") is not None:
        assert attention_kind("varlen", torch.device("cpu")) == "varlen"
    else:  # torch < 2.9 (JetPack 6): refused when the engine is built, with the reason
        with pytest.raises(EngineError, match=r"attention 'varlen' needs torch >= 2\.9"):
            F5Engine(F5Config(device="cpu", checkpoint="random:tiny", attention="varlen"))
    with pytest.raises(ValueError, match="attention must be one of auto, lse, sdpa, varlen"):
        attention_kind("fast", torch.device("cpu"))


def test_sampler_leaves_upstream_model_untouched():
    upstream, _ = random_models("tiny", seed=3)
    processors = [type(block.attn.processor) for block in upstream.transformer.transformer_blocks]
    FlowSampler(copy.deepcopy(upstream), torch.device("cpu"), torch.float32)
    assert [type(b.attn.processor) for b in upstream.transformer.transformer_blocks] == processors


@pytest.mark.slow  # in make test, not in make check's edit loop
def test_same_seed_same_audio_different_seed_differs(tiny_engine):
    text = "Repeatable speech."
    first = tiny_engine.synthesize_all(text, options={"seed": 11}).samples
    again = tiny_engine.synthesize_all(text, options={"seed": 11}).samples
    other = tiny_engine.synthesize_all(text, options={"seed": 12}).samples
    assert torch.equal(torch.from_numpy(first), torch.from_numpy(again))
    assert not torch.equal(torch.from_numpy(first), torch.from_numpy(other))


def test_sample_request_uses_upstream_duration_rule(tiny_engine):
    ref = tiny_engine.reference(VoiceRegistry.load().get())
    request = tiny_engine.sample_request(ref, GEN_TEXT, {"speed": 1.0, "seed": -1})
    expected = ref.frames + int(ref.frames / ref.text_bytes * len(GEN_TEXT.encode()) / 1.0)
    assert request.duration == expected
    assert request.seed is None
    slow = tiny_engine.sample_request(ref, "Hi.", {"speed": 1.0, "seed": 3})
    assert slow.duration == ref.frames + int(ref.frames / ref.text_bytes * 3 / 0.3)


#: Every architecture upstream ships for Vocos, both layouts and both sizes (community models are built on these).
ARCHITECTURES = ["F5TTS_v1_Base", "F5TTS_Base", "F5TTS_v1_Small", "F5TTS_Small"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_gpu_sampler_equals_upstream_cfm_sample_for_every_architecture(arch):
    """The CUDA sampler (its attention kernel, fused positional conv and GELU epilogue) computes upstream
    ``CFM.sample`` for the full-size model of each layout and size, fp32, same weights and seed."""
    upstream, vocoder = random_models(arch, seed=7, device="cuda")
    engine = F5Engine(
        EngineConfig(device="cuda", precision="fp32", compile=False),
        models=(copy.deepcopy(upstream), copy.deepcopy(vocoder)),
    )
    try:
        ref = engine.reference(VoiceRegistry.load().get())
        request = engine.sample_request(ref, GEN_TEXT, {"speed": 1.0, "seed": 1234})
        expected, _ = upstream.to("cuda").sample(
            cond=ref.cond[None].cuda(), text=convert_char_to_pinyin([ref.text + GEN_TEXT]),
            duration=request.duration, steps=8, cfg_strength=2.0, sway_sampling_coef=-1.0, seed=1234,
        )  # fmt: skip
        got, _ = engine.sampler.sample([request], steps=8, cfg_strength=2.0, sway_sampling_coef=-1.0)
        assert relative_error(got.float(), expected.float()) < 1e-3, engine.describe()["attention"]
    finally:
        engine.close()
