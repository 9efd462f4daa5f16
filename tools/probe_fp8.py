"""Would FP8 linear layers pay on Hopper? Quality and GEMM time of e4m3 with dynamic rowwise scales.

Swaps every fp16 ``F.linear`` of an fp16 engine (eager, full F5TTS_v1_Base, random weights) for a rowwise-scaled
FP8 ``torch._scaled_mm``, measures the mel error against the fp32 engine the way the quality guard does, then times
the four GEMM shapes of one DiT block (CFG batch over a 2,176-frame bucket) in fp16 and FP8, and the eager
quantization pass that FP8 adds in front of each.

Run on the device: tools/device_bench.sh python3 tools/probe_fp8.py
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from triton.testing import do_bench

from ishowtts_ros.engines.f5.engine import F5Engine
from ishowtts_ros.engines.f5.models import random_models
from ishowtts_ros.engines.f5.options import F5Config
from ishowtts_ros.engines.f5.quality import QUALITY_TOLERANCE, mel_relative_error

E4M3 = torch.float8_e4m3fn
E4M3_MAX = 448.0
TEXT = "I don't really care what you call me."
FP16_LINEAR = F.linear


def quantize_rows(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    scale = t.abs().amax(dim=-1, keepdim=True).float().clamp_min(1e-12) / E4M3_MAX
    return (t.float() / scale).to(E4M3), scale


def fp8_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    rows = x.reshape(-1, x.shape[-1])
    if x.dtype != torch.float16 or not x.is_cuda or rows.shape[0] % 16 or x.shape[-1] % 16 or weight.shape[0] % 16:
        return FP16_LINEAR(x, weight, bias)
    (xq, x_scale), (wq, w_scale) = quantize_rows(rows), quantize_rows(weight)
    out = torch._scaled_mm(xq, wq.t(), scale_a=x_scale, scale_b=w_scale.t(), out_dtype=torch.bfloat16).to(x.dtype)
    out = out if bias is None else out + bias
    return out.view(*x.shape[:-1], -1)


def main() -> None:
    cfm, vocoder = random_models("F5TTS_v1_Base", seed=11)
    engines = {
        precision: F5Engine(
            F5Config(device="cuda", precision=precision, compile=False, cuda_graphs=False),
            models=(copy.deepcopy(cfm), copy.deepcopy(vocoder)),
        )
        for precision in ("fp32", "fp16")
    }
    fp16_error = mel_relative_error(engines["fp16"], engines["fp32"], TEXT, nfe=8, seed=4)
    F.linear = fp8_linear
    try:
        fp8_error = mel_relative_error(engines["fp16"], engines["fp32"], TEXT, nfe=8, seed=4)
    finally:
        F.linear = FP16_LINEAR
    print(f"mel rel. error vs fp32 (limit {QUALITY_TOLERANCE}): fp16 {fp16_error:.2e}, fp8 rowwise {fp8_error:.2e}")
    rows = 2 * 2176
    print("| GEMM (M x K x N) | fp16 us | fp8 us | eager row quantization of the input us |\n|---|---|---|---|")
    for n, k in ((3072, 1024), (1024, 1024), (2048, 1024), (1024, 2048)):
        x = torch.randn(rows, k, device="cuda", dtype=torch.float16)
        w = torch.randn(n, k, device="cuda", dtype=torch.float16) * 0.02
        (xq, x_scale), (wq, w_scale) = quantize_rows(x), quantize_rows(w)
        fp16 = do_bench(lambda x=x, w=w: FP16_LINEAR(x, w), return_mode="median")
        fp8 = do_bench(
            lambda xq=xq, wq=wq, xs=x_scale, ws=w_scale: torch._scaled_mm(
                xq, wq.t(), scale_a=xs, scale_b=ws.t(), out_dtype=torch.bfloat16
            ),
            return_mode="median",
        )
        quantize = do_bench(lambda x=x: quantize_rows(x), return_mode="median")
        print(f"| {rows} x {k} x {n} | {fp16 * 1e3:.1f} | {fp8 * 1e3:.1f} | {quantize * 1e3:.1f} |")


if __name__ == "__main__":
    main()
