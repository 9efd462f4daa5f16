"""The fused Triton positional conv computes upstream's ``ConvPositionEmbedding`` (conv, Mish, mask, twice).

Here it runs in Triton's CPU interpreter on a small module of the upstream class; on a GPU the same check runs
compiled on the full F5TTS_v1_Base shape in fp16."""

from __future__ import annotations

import copy
import inspect
import json
import os
import subprocess
import sys

import pytest
import torch
from f5_tts.model.modules import ConvPositionEmbedding

from ishowtts_ros.engines.f5.kernels import cudnn_off
from ishowtts_ros.engines.f5.kernels.position_conv import (
    DEFAULT_TILE,
    TritonPositionConv,
    channels_last_position_conv,
    checked_triton_position_conv,
    position_conv_kind,
    triton_position_conv_unsupported,
)
from ishowtts_ros.engines.f5.models import random_models
from ishowtts_ros.engines.f5.quality import relative_error


def random_module(dim: int, groups: int, seed: int) -> ConvPositionEmbedding:
    torch.manual_seed(seed)
    module = ConvPositionEmbedding(dim, 31, groups)
    for parameter in module.parameters():
        torch.nn.init.normal_(parameter, std=0.1)
    return module.eval()


CASES = {  # name: (frames, real lengths of the two rows, tile)
    "full_and_padded": (100, (100, 73), (32, 4, 1)),
    "short_rows": (37, (5, 37), (16, 4, 1)),
}


def interpreter_errors() -> dict[str, float | str]:
    """Run in a process started with ``TRITON_INTERPRET=1`` (Triton reads it when it is first imported): the
    kernel's relative error against upstream for each case, for another module's weights, and the largest value it
    wrote into padded frames."""
    results = {}
    for name, (frames, lengths, tile) in CASES.items():
        module = random_module(64, 4, seed=frames)
        x = torch.randn(2, frames, 64)
        mask = torch.arange(frames)[None] < torch.tensor(lengths)[:, None]
        with torch.no_grad():
            out = TritonPositionConv(module, torch.float32, tile=tile)(x, mask)
            results[name] = relative_error(out, module(x, mask))
            results[f"{name}_other_module"] = relative_error(out, random_module(64, 4, seed=frames + 1)(x, mask))
            results[f"{name}_padding"] = float(out[~mask].abs().max()) if (~mask).any() else 0.0
    cpu = torch.device("cpu")
    checked_triton_position_conv(random_module(64, 4, seed=5), torch.float32, cpu)  # raises if it disagreed
    not_mish = random_module(64, 4, seed=5)
    not_mish.conv1d[1] = torch.nn.GELU()  # the kernel always applies Mish: its self-check must notice
    try:
        checked_triton_position_conv(not_mish, torch.float32, cpu)
        results["self_check_refusal"] = ""
    except RuntimeError as exc:
        results["self_check_refusal"] = str(exc)
    return results


#: The kernel's launch on F5TTS_v1_Base (dim 1024, 16 groups of 64 channels, 31 taps) in fp16, as the engine runs it.
BASE_TYPES = {"x_ptr": "*fp16", "weight_ptr": "*fp16", "bias_ptr": "*fp16", "keep_ptr": "*u8", "out_ptr": "*fp16"}
BASE_CONSTANTS = {"DIM": 1024, "CHANNELS": 64, "TAPS": 31, "BLOCK_FRAMES": DEFAULT_TILE[0]}
#: Shared memory a block may use without opting in, on every CUDA GPU (Orin's opt-in limit is higher).
SHARED_MEMORY_LIMIT = 48 * 1024


def compile_offline(arch: int):
    """Compile the kernel to a cubin for ``sm_<arch>`` with Triton's own ptxas, no GPU needed: Triton 3.1 (torch
    2.5) takes signature and constants by parameter index, Triton 3.3+ names every parameter and keys constexprs
    by their index path."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from ishowtts_ros.engines.f5.kernels.position_conv import grouped_conv_mish

    names = list(inspect.signature(grouped_conv_mish.fn).parameters)
    types = {**BASE_TYPES, "frames": "i32"}
    if "constexprs" in inspect.signature(ASTSource.__init__).parameters:
        signature = {**types, **dict.fromkeys(BASE_CONSTANTS, "constexpr")}
        source = ASTSource(grouped_conv_mish, signature, {(names.index(k),): v for k, v in BASE_CONSTANTS.items()})
    else:
        signature = {names.index(k): v for k, v in types.items()}
        source = ASTSource(grouped_conv_mish, signature, {names.index(k): v for k, v in BASE_CONSTANTS.items()})
    _, num_warps, num_stages = DEFAULT_TILE
    target = GPUTarget("cuda", arch, 32)
    return triton.compile(source, target=target, options={"num_warps": num_warps, "num_stages": num_stages})


@pytest.mark.parametrize("arch", [87, 90])  # Jetson Orin, Hopper
def test_triton_kernel_compiles_for_orin_and_hopper_with_tensor_cores_in_shared_memory(arch):
    pytest.importorskip("triton")
    kernel = compile_offline(arch)
    assert kernel.metadata.shared <= SHARED_MEMORY_LIMIT, kernel.metadata.shared
    assert "mma" in kernel.asm["ptx"]  # the 31 tap products run on the tensor cores
    assert kernel.asm["cubin"]


@pytest.fixture(scope="module")
def interpreted() -> dict[str, float | str]:
    pytest.importorskip("triton")
    env = dict(os.environ, TRITON_INTERPRET="1")
    done = subprocess.run([sys.executable, __file__], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", CASES)
@pytest.mark.slow  # Triton's CPU interpreter (~20 s for the module)
def test_triton_kernel_matches_upstream_in_the_interpreter(interpreted, case):
    assert interpreted[case] < 1e-5
    assert interpreted[f"{case}_padding"] == 0.0, "padded frames must stay zero"


@pytest.mark.parametrize("case", CASES)
@pytest.mark.slow  # Triton's CPU interpreter (~20 s for the module)
def test_triton_kernel_comparison_can_fail(interpreted, case):
    """Against another module's weights the same comparison fails: the check above is not vacuous."""
    assert interpreted[f"{case}_other_module"] > 0.1


@pytest.mark.slow
def test_self_check_refuses_a_kernel_that_disagrees(interpreted):
    """The start-up self-check passed for a real module (else the run above had failed) and refuses a mismatch."""
    assert "disagrees with upstream" in interpreted["self_check_refusal"]


def test_position_conv_choice_and_its_reasons():
    module = random_module(64, 4, seed=0)
    assert position_conv_kind("auto", module, torch.device("cpu")) == "cudnn"
    assert position_conv_kind("cudnn", module, torch.device("cpu")) == "cudnn"
    with pytest.raises(ValueError, match="runs on CUDA devices"):
        position_conv_kind("triton", module, torch.device("cpu"))
    with pytest.raises(ValueError, match="must be one of auto, triton, cudnn"):
        position_conv_kind("winograd", module, torch.device("cpu"))
    narrow = random_module(64, 8, seed=0)  # 8 channels per group: too narrow for the tensor-core tiles
    if triton_position_conv_unsupported(narrow, torch.device("cuda")) != "Triton is not installed":
        assert "8 channels per group" in triton_position_conv_unsupported(narrow, torch.device("cuda"))


def check_full_shape_on_gpu(run) -> None:
    """``run(module_fp16, x_fp16, mask)`` against upstream's module in float64, on F5TTS_v1_Base's shape."""
    cfm, _ = random_models("F5TTS_v1_Base", seed=3)
    module = cfm.transformer.input_embed.conv_pos_embed.cuda()
    x = torch.randn(2, 2176, 1024, device="cuda")
    mask = torch.arange(2176, device="cuda")[None] < torch.tensor([2058, 1500], device="cuda")[:, None]
    with torch.no_grad():
        expected = module.double()(x.double(), mask)
        out = run(copy.deepcopy(module).half(), x.half(), mask)
    assert relative_error(out, expected) < 5e-3
    assert not out[~mask].any()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_triton_kernel_matches_upstream_on_gpu_full_shape():
    check_full_shape_on_gpu(
        lambda module, x, mask: checked_triton_position_conv(module, torch.float16, x.device)(x, mask)
    )


def test_cudnn_position_conv_matches_upstream_on_the_cpu():
    module = random_module(64, 16, seed=5)
    x = torch.randn(2, 50, 64)
    mask = torch.arange(50)[None] < torch.tensor([50, 31])[:, None]
    with torch.no_grad():
        assert relative_error(channels_last_position_conv(module, x, mask), module(x, mask)) < 1e-5


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cudnn_position_conv_matches_upstream_on_gpu_with_cudnn_switched_off():
    """The fallback calls cuDNN directly: it runs on cuDNN while cuDNN is switched off process-wide (as another
    thread's text embedding or Vocos switches it), and switches nothing itself."""

    def run(module, x, mask):
        with cudnn_off():
            out = channels_last_position_conv(module, x, mask)
            assert not torch.backends.cudnn.enabled
        return out

    check_full_shape_on_gpu(run)


if __name__ == "__main__":
    print(json.dumps(interpreter_errors()))
