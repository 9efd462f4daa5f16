"""Quality guard: reduced-precision engines stay within 2e-2 of the fp32 engine (same weights, seed, NFE), never
NaN or Inf. Runs the tiny model on the CPU here; on a GPU the same check runs on the full architecture."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

import numpy as np
import pytest
import torch

from ishowtts_ros.core.engine import EngineConfig
from ishowtts_ros.engines.f5.engine import F5Engine
from ishowtts_ros.engines.f5.models import random_models
from ishowtts_ros.engines.f5.options import F5Config
from ishowtts_ros.engines.f5.quality import QUALITY_TOLERANCE, mel_relative_error

TEXT = "I don't really care what you call me."


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 600.0) -> None:
    """Poll ``condition``; the timeout only guards against a hang."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: still waiting after {timeout:.0f} s"
        time.sleep(0.1)


def engines(arch: str, device: str, precisions: tuple[str, ...]) -> dict[str, F5Engine]:
    cfm, vocoder = random_models(arch, seed=11)
    return {
        precision: F5Engine(
            EngineConfig(device=device, precision=precision, compile=False),
            models=(copy.deepcopy(cfm), copy.deepcopy(vocoder)),
        )
        for precision in precisions
    }


@pytest.mark.parametrize("nfe", [8, pytest.param(16, marks=pytest.mark.slow)])
@pytest.mark.slow  # in make test, not in make check's edit loop
def test_half_precisions_track_fp32_on_cpu(nfe):
    found = engines("tiny", "cpu", ("fp32", "fp16", "bf16"))
    for precision in ("fp16", "bf16"):
        error = mel_relative_error(found[precision], found["fp32"], TEXT, nfe=nfe, seed=4)
        assert error <= QUALITY_TOLERANCE, f"{precision}: {error:.3e}"


def test_error_measure_detects_a_different_model():
    found = engines("tiny", "cpu", ("fp32",))
    other_cfm, other_vocoder = random_models("tiny", seed=12)
    other = F5Engine(EngineConfig(device="cpu"), models=(other_cfm, other_vocoder))
    assert mel_relative_error(other, found["fp32"], TEXT, nfe=8, seed=4) > 10 * QUALITY_TOLERANCE


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("arch", ["F5TTS_v1_Base", "F5TTS_Base", "F5TTS_Small"])
def test_half_precisions_track_fp32_on_gpu_full_model(arch):
    """Captured graphs and the half-precision kernels, for both layouts and both sizes."""
    found = engines(arch, "cuda", ("fp32", "fp16", "bf16"))
    for precision in ("fp16", "bf16"):
        error = mel_relative_error(found[precision], found["fp32"], TEXT, nfe=8, seed=4)
        assert error <= QUALITY_TOLERANCE, f"{precision}: {error:.3e}"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize(
    ("attention", "lse_kernel"), [("lse", "cudnn"), ("lse", "flash"), ("sdpa", ""), ("varlen", "")]
)
def test_graph_bucketed_path_matches_exact_path_on_gpu(attention, lse_kernel):
    """Padding to a bucket, keeping the padding out of attention each way (the log-sum-exp path on cuDNN's flash
    kernel and on FlashAttention-2, an Orin's), inside a CUDA graph computes what the exact eager path computes."""
    if lse_kernel == "cudnn" and torch.cuda.get_device_capability() < (9, 0):
        pytest.skip("cuDNN flash attention (lse) needs Hopper or newer")
    cfm, vocoder = random_models("F5TTS_v1_Base", seed=11)
    cudnn_attention = torch.backends.cuda.cudnn_sdp_enabled()
    torch.backends.cuda.enable_cudnn_sdp(lse_kernel != "flash")  # without it, lse takes FlashAttention-2
    try:
        graphed, exact = (
            F5Engine(
                F5Config(device="cuda", precision="fp16", compile=False, cuda_graphs=graphs, attention=attention),
                models=(copy.deepcopy(cfm), copy.deepcopy(vocoder)),
            )
            for graphs in (True, False)
        )
    finally:
        torch.backends.cuda.enable_cudnn_sdp(cudnn_attention)
    assert graphed.sampler.graphs and not exact.sampler.graphs
    if lse_kernel:
        assert graphed.describe()["attention_kernel"].startswith(("cudnn", "flash-attention-2")[lse_kernel == "flash"])
    assert mel_relative_error(graphed, exact, TEXT, nfe=8, seed=4) <= QUALITY_TOLERANCE / 4
    assert graphed.sampler.captured_shapes


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_every_nfe_and_sway_replays_the_graphs_captured_at_warm_up():
    """Live tuning: the graphs hold one flow step, so a new NFE or sway from rqt replays the warm-up's graphs (no
    capture, no new shape) and still computes what the exact eager path computes for that time grid."""
    cfm, vocoder = random_models("F5TTS_v1_Base", seed=11)
    graphed, exact = (
        F5Engine(
            F5Config(device="cuda", precision="fp16", compile=False, cuda_graphs=graphs),
            models=(copy.deepcopy(cfm), copy.deepcopy(vocoder)),
        )
        for graphs in (True, False)
    )
    graphed.warmup()
    first_chunk = graphed.sample_request(graphed.reference(graphed.registry.get()), TEXT, graphed.default_options)
    assert (1, graphed.sampler.bucket(first_chunk.duration), True) in graphed.sampler.captured_shapes  # before ready
    assert graphed.describe()["graphs_to_capture"] > 0  # the longer chunks' buckets: in the first idle moments
    wait_until(lambda: graphed.describe()["graphs_to_capture"] == 0, "the idle captures")
    shapes = graphed.sampler.captured_shapes
    for nfe, sway in ((8, -1.0), (12, -1.0), (5, 0.0), (32, 0.5)):
        error = mel_relative_error(graphed, exact, TEXT, nfe=nfe, seed=4, sway=sway)
        assert error <= QUALITY_TOLERANCE / 4, f"NFE {nfe}, sway {sway}: {error:.3e}"
    assert graphed.sampler.captured_shapes == shapes
    graphed.close()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_request_captures_the_lengths_warm_up_left_for_later():
    """Right after ready (no idle moment yet), a chunk whose bucket warm-up left for later is captured by its own
    request on the GPU worker, and that request's audio is the audio its graph gives every later request."""
    cfm, vocoder = random_models("F5TTS_v1_Base", seed=11)
    engine = F5Engine(F5Config(device="cuda", precision="fp16", compile=False), models=(cfm, vocoder))
    engine.scheduler.idle_delay = 3600.0  # no idle captures: only requests capture here
    engine.warmup()
    before, pending = set(engine.sampler.captured_shapes), engine.describe()["graphs_to_capture"]
    assert pending > 0
    text = " ".join([TEXT] * 8)  # chunks after the first are longer than any first chunk
    first = engine.synthesize_all(text, options={"seed": 4}).samples
    met = set(engine.sampler.captured_shapes) - before
    assert met and engine.describe()["graphs_to_capture"] < pending, (met, engine.describe())
    again = engine.synthesize_all(text, options={"seed": 4}).samples
    assert set(engine.sampler.captured_shapes) - before == met
    assert again.shape == first.shape and np.isfinite(first).all()
    assert float(np.linalg.norm(again - first) / np.linalg.norm(first)) <= QUALITY_TOLERANCE / 4
    engine.close()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_engine_serves_before_compiling_and_recaptures_every_graph_compiled_in_the_background():
    """Start-up: ready once graphs without compile are captured; compilation then runs beside the worker, says how
    far it is, and swaps each graph for a compiled one with the same audio."""
    cfm, vocoder = random_models("F5TTS_v1_Base", seed=11)
    engine = F5Engine(F5Config(device="cuda", precision="fp16"), models=(cfm, vocoder))
    assert engine.compiled and engine.describe()["compile_progress"] == "in the background after warm-up"
    engine.warmup(max_seconds=6)
    served = engine.synthesize_all(TEXT, options={"seed": 4}).samples  # while compiling, or just after
    progress = engine.describe()["compile_progress"]
    assert progress.startswith(("started in the background", "in the background:", "done in")), progress
    assert engine.wait_compiled(timeout=900)
    assert engine.describe()["compile_progress"].startswith("done in"), engine.describe()
    assert engine.describe()["graphs_to_capture"] == 0
    assert engine.lifecycle.compiled_shapes == engine.sampler.captured_shapes  # every graph swapped for a compiled one
    compiled = engine.synthesize_all(TEXT, options={"seed": 4}).samples
    assert compiled.shape == served.shape
    assert float(np.linalg.norm(compiled - served) / np.linalg.norm(served)) <= QUALITY_TOLERANCE / 4
    engine.close()


def test_fp16_vocos_backbone_stays_within_the_guard_and_auto_keeps_fp32_on_the_cpu():
    cfm, vocoder = random_models("tiny", seed=11)
    full, half = (
        F5Engine(F5Config(device="cpu", vocoder_precision=kind), models=(copy.deepcopy(cfm), copy.deepcopy(vocoder)))
        for kind in ("auto", "fp16")
    )
    assert (full.describe()["vocoder_precision"], half.describe()["vocoder_precision"]) == ("fp32", "fp16")
    want = full.synthesize_all(TEXT, options={"seed": 4, "nfe_step": 4}).samples
    got = half.synthesize_all(TEXT, options={"seed": 4, "nfe_step": 4}).samples
    assert np.isfinite(got).all()
    assert float(np.linalg.norm(got - want) / np.linalg.norm(want)) <= QUALITY_TOLERANCE


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_auto_vocos_precision_on_gpu_is_fp16_only_within_the_guard():
    cfm, vocoder = random_models("F5TTS_v1_Base", seed=11)
    models = (copy.deepcopy(cfm), copy.deepcopy(vocoder))
    auto = F5Engine(F5Config(device="cuda", precision="fp16", compile=False), models=models)
    fp32 = F5Engine(
        F5Config(device="cuda", precision="fp16", compile=False, vocoder_precision="fp32"), models=(cfm, vocoder)
    )
    try:
        if auto.vocoder_precision == "fp16":
            want = fp32.synthesize_all(TEXT, options={"seed": 4}).samples
            got = auto.synthesize_all(TEXT, options={"seed": 4}).samples
            assert float(np.linalg.norm(got - want) / np.linalg.norm(want)) <= QUALITY_TOLERANCE
    finally:  # their GPU workers may still be capturing loops the requests met
        auto.close()
        fp32.close()
