"""The DiT's convolutional position embedding inside captured graphs: one fused Triton kernel per convolution, or
autotuned channels-last cuDNN convolutions where Triton cannot run.

Upstream's ``ConvPositionEmbedding`` runs two grouped conv1d layers (31 taps, 16 groups of 64 channels in
F5TTS_v1_Base), each followed by Mish and a padding mask. cuDNN runs each group as its own small kernel, about 0.9
ms per conv on an H200 for 2 x 2,058 frames, which is ~20 TFLOP/s and ~20% of a flow step. Here each conv is an
implicit GEMM on the tensor cores over the [B, L, D] layout the DiT already uses: a program owns a tile of frames of
one group, accumulates the 31 shifted (frames x 64) @ (64 x 64) products in float32, then adds the bias, applies
Mish and zeroes padded frames before its single store. No transposes, no im2col buffer, one launch per conv.

The kernel runs where Triton targets the GPU (CUDA, including Jetson Orin) and, for tests, in Triton's CPU
interpreter (``TRITON_INTERPRET=1``).

No ``from __future__ import annotations`` here: Triton 3.1's interpreter recognises ``tl.constexpr`` parameters only
by their evaluated annotations, and string annotations turn every constexpr into a tensor.
"""

import logging
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ishowtts_ros.engines.f5.options import POSITION_CONV_KINDS

try:  # Triton builds the kernel below; without it the cuDNN path runs (position_conv_kind says so)
    import triton
    import triton.language as tl
except ImportError:
    triton = None

LOG = logging.getLogger(__name__)

#: Frames per program, warps and software-pipelining depth; chosen by ``tools/bench_position_conv.py`` on an H200.
DEFAULT_TILE = (128, 4, 3)


class _PackedConv(NamedTuple):
    weight: torch.Tensor  # [groups, taps, in_channels, out_channels]: each tap's (in x out) matrix, K-major
    bias: torch.Tensor  # [dim]


def triton_position_conv_unsupported(module: Any, device: torch.device) -> str | None:
    """Why the Triton kernel cannot stand in for ``module`` on ``device``, or None when it can."""
    if device.type != "cuda":
        return "it runs on CUDA devices"
    if triton is None:
        return "Triton is not installed"
    conv = module.conv1d[module.layer_need_mask_idx[0]]
    channels = conv.in_channels // conv.groups
    if channels < 16 or channels & (channels - 1):
        return f"{channels} channels per group (needs a power of two >= 16)"
    if not all(isinstance(module.conv1d[i + 1], nn.Mish) for i in module.layer_need_mask_idx):
        return "a convolution is not followed by Mish"
    return None


def position_conv_kind(requested: str, module: Any, device: torch.device) -> str:
    """``auto`` picks the fused Triton kernel wherever it can run, else cuDNN; ``triton`` insists on it."""
    if requested not in POSITION_CONV_KINDS:
        raise ValueError(f"position_conv must be one of {', '.join(POSITION_CONV_KINDS)}, not {requested!r}")
    if requested == "cudnn":
        return requested
    reason = triton_position_conv_unsupported(module, device)
    if reason is None:
        return "triton"
    if requested == "triton":
        raise ValueError(f"position_conv 'triton' is not available: {reason}")
    if device.type == "cuda":
        LOG.warning("positional conv: the fused Triton kernel is not available (%s); using cuDNN", reason)
    return "cudnn"


def _autotuned_conv2d(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, padding: tuple[int, int], groups: int
) -> torch.Tensor:
    """``F.conv2d`` on cuDNN with autotuning, called directly: no process-wide cuDNN switch (other threads run
    without cuDNN at the same time, :func:`..kernels.cudnn_off`). PyTorch's own kernel off CUDA."""
    if x.device.type != "cuda" or not torch.backends.cudnn.is_available():
        return F.conv2d(x, weight, bias, padding=padding, groups=groups)
    cudnn = torch.backends.cudnn
    out = torch.cudnn_convolution(
        x, weight.to(memory_format=torch.channels_last), list(padding), [1, 1], [1, 1], groups, True,
        cudnn.deterministic, cudnn.allow_tf32,
    )  # fmt: skip
    return out + bias.view(1, -1, 1, 1)


def channels_last_position_conv(module: Any, x: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
    """Upstream's ``ConvPositionEmbedding`` (masked grouped conv, Mish, twice) on [B, L, D] frames, run as 2-D
    channels-last convolutions with cuDNN autotuning: ~0.7 ms less per flow step on an H200 than its NCL conv1d.

    Only for bucketed shapes (captured graphs), where autotuning runs once per bucket, before capture."""
    keep = token_mask.unsqueeze(-1)
    hidden = x.masked_fill(~keep, 0.0)
    for index in module.layer_need_mask_idx:  # each conv is followed by its activation (Mish keeps zeros zero)
        conv = module.conv1d[index]
        frames = hidden.transpose(1, 2).unsqueeze(2).contiguous(memory_format=torch.channels_last)
        weight, padding = conv.weight.unsqueeze(2), (0, conv.padding[0])
        out = _autotuned_conv2d(frames, weight, conv.bias, padding, conv.groups)
        hidden = module.conv1d[index + 1](out.squeeze(2).transpose(1, 2)).masked_fill(~keep, 0.0)
    return hidden


class TritonPositionConv:
    """Upstream ``ConvPositionEmbedding.forward(x, mask)`` on [B, L, D] frames with a [B, L] token mask."""

    def __init__(self, module: Any, dtype: torch.dtype, tile: tuple[int, int, int] = DEFAULT_TILE) -> None:
        self.tile = tile
        self.layers: list[_PackedConv] = []
        with torch.no_grad():
            for index in module.layer_need_mask_idx:
                conv = module.conv1d[index]
                out_dim, channels, taps = conv.weight.shape
                groups = conv.groups
                if conv.padding[0] != taps // 2 or conv.stride[0] != 1 or conv.dilation[0] != 1:
                    raise ValueError("only 'same' convolutions with stride and dilation 1 are supported")
                grouped = conv.weight.view(groups, out_dim // groups, channels, taps)
                weight = grouped.permute(0, 3, 2, 1).contiguous().to(dtype)
                self.layers.append(_PackedConv(weight, conv.bias.detach().to(dtype).contiguous()))
        self.groups, self.taps, self.channels = groups, taps, channels

    def __call__(self, x: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
        batch, frames, dim = x.shape
        block_frames, num_warps, num_stages = self.tile
        keep = token_mask.contiguous().view(torch.uint8)
        hidden = x.contiguous()
        grid = (triton.cdiv(frames, block_frames), self.groups, batch)
        for layer in self.layers:
            out = torch.empty_like(hidden)
            _kernel()[grid](
                hidden,
                layer.weight,
                layer.bias,
                keep,
                out,
                frames,
                DIM=dim,
                CHANNELS=self.channels,
                TAPS=self.taps,
                BLOCK_FRAMES=block_frames,
                num_warps=num_warps,
                num_stages=num_stages,
            )
            hidden = out
        return hidden


def checked_triton_position_conv(module: Any, dtype: torch.dtype, device: torch.device) -> TritonPositionConv:
    """A :class:`TritonPositionConv` that has compiled and matched ``module`` on a padded test input on ``device``;
    raises ``RuntimeError`` otherwise (an old Triton, a driver that cannot build the kernel, a wrong result)."""
    try:
        conv = TritonPositionConv(module, dtype)
    except ValueError as exc:
        raise RuntimeError(f"the Triton kernel does not fit this module: {exc}") from exc
    generator = torch.Generator(device=device).manual_seed(0)
    dim = module.conv1d[module.layer_need_mask_idx[0]].in_channels
    x = torch.randn(2, 200, dim, device=device, generator=generator).to(dtype)
    mask = torch.arange(200, device=device)[None] < torch.tensor([200, 150], device=device)[:, None]
    try:
        with torch.no_grad():
            out = conv(x, mask).float()
            expected = module(x, mask).float()
    except Exception as exc:
        raise RuntimeError(f"the Triton kernel failed to run: {type(exc).__name__}: {exc}") from exc
    error = float((out - expected).norm() / expected.norm())
    if not error < 2e-2 or out[~mask].any():
        raise RuntimeError(f"the Triton kernel disagrees with upstream (relative error {error:.2e})")
    return conv


def _kernel() -> Any:
    """The jitted kernel (defined at module level where Triton imports, so Triton 3.1+ resolves ``tl`` as a
    global: older Triton cannot see names from an enclosing function)."""
    if triton is None:
        raise RuntimeError("Triton is not installed")
    return grouped_conv_mish


if triton is not None:

    @triton.jit
    def grouped_conv_mish(
        x_ptr,
        weight_ptr,
        bias_ptr,
        keep_ptr,
        out_ptr,
        frames,
        DIM: tl.constexpr,
        CHANNELS: tl.constexpr,
        TAPS: tl.constexpr,
        BLOCK_FRAMES: tl.constexpr,
    ):
        tile, group, item = tl.program_id(0), tl.program_id(1), tl.program_id(2)
        rows = tile * BLOCK_FRAMES + tl.arange(0, BLOCK_FRAMES)
        channels = tl.arange(0, CHANNELS)
        x_item = x_ptr + item * frames * DIM + group * CHANNELS
        keep_item = keep_ptr + item * frames
        weight_group = weight_ptr + group * TAPS * CHANNELS * CHANNELS
        acc = tl.zeros((BLOCK_FRAMES, CHANNELS), dtype=tl.float32)
        for tap in range(TAPS):
            source = rows + (tap - TAPS // 2)
            inside = (source >= 0) & (source < frames)
            inside = inside & (tl.load(keep_item + source, mask=inside, other=0) != 0)
            frames_in = tl.load(x_item + source[:, None] * DIM + channels[None, :], mask=inside[:, None], other=0.0)
            tap_weight = tl.load(weight_group + tap * CHANNELS * CHANNELS + channels[:, None] * CHANNELS + channels)
            acc = tl.dot(frames_in, tap_weight, acc)
        acc += tl.load(bias_ptr + group * CHANNELS + channels).to(tl.float32)[None, :]
        # Mish(a) = a * tanh(softplus(a)) = a * n / (n + 2) with n = e^a (e^a + 2); e^a capped where it is exact.
        exp_acc = tl.exp(tl.minimum(acc, 20.0))
        n = exp_acc * (exp_acc + 2.0)
        activated = acc * (n / (n + 2.0))
        in_range = rows < frames
        keep_rows = tl.load(keep_item + rows, mask=in_range, other=0) != 0
        activated = tl.where(keep_rows[:, None], activated, 0.0)
        out_ptrs = out_ptr + item * frames * DIM + rows[:, None] * DIM + group * CHANNELS + channels[None, :]
        tl.store(out_ptrs, activated.to(out_ptr.dtype.element_ty), mask=in_range[:, None])
