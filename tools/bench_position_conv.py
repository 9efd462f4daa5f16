"""The positional grouped conv of F5TTS_v1_Base three ways: upstream's module, the channels-last cuDNN path and the
fused Triton kernel over a sweep of tiles. Checks each against upstream in float64 on fresh random data, then times
it (median of ``triton.testing.do_bench``) at the frame buckets of the short, medium and long workloads.

Run on the device: tools/device_bench.sh python3 tools/bench_position_conv.py
"""

from __future__ import annotations

import itertools

import torch
from f5_tts.model.modules import ConvPositionEmbedding
from triton.testing import do_bench

from ishowtts_ros.engines.f5.kernels.position_conv import TritonPositionConv, channels_last_position_conv
from ishowtts_ros.engines.f5.quality import relative_error

DIM, TAPS, GROUPS = 1024, 31, 16
FRAMES = (1152, 2176, 4096)
TILES = [(f, w, s) for f, w, s in itertools.product((32, 64, 128), (4, 8), (2, 3, 4)) if not (f == 32 and w == 8)]


def main() -> None:
    torch.manual_seed(0)
    module = ConvPositionEmbedding(DIM, TAPS, GROUPS).cuda()
    reference64 = ConvPositionEmbedding(DIM, TAPS, GROUPS).cuda().double()
    reference64.load_state_dict(module.state_dict())
    half = ConvPositionEmbedding(DIM, TAPS, GROUPS).cuda().half()
    half.load_state_dict(module.state_dict())
    conv_flops = 2 * DIM * (DIM // GROUPS) * TAPS  # per frame, per conv
    rows = []
    for frames in FRAMES:
        x = torch.randn(2, frames, DIM, device="cuda", dtype=torch.float16)
        lengths = torch.tensor([frames - 70, frames - 70], device="cuda")
        mask = torch.arange(frames, device="cuda")[None] < lengths[:, None]
        with torch.no_grad():
            ref = reference64(x.double(), mask)
            variants = {
                "upstream": lambda x=x, mask=mask: half(x, mask),
                "cudnn-cl": lambda x=x, mask=mask: channels_last_position_conv(half, x, mask),
            }
            for tile in TILES:
                conv = TritonPositionConv(half, torch.float16, tile=tile)
                variants[f"triton {tile}"] = lambda x=x, mask=mask, conv=conv: conv(x, mask)
            for name, fn in variants.items():
                out = fn()
                error = relative_error(out, ref)
                ms = do_bench(fn, warmup=25, rep=100, return_mode="median")
                tflops = 2 * 2 * frames * conv_flops / (ms * 1e-3) / 1e12
                rows.append((frames, name, ms, tflops, error))
                print(f"{frames:5d} {name:22s} {ms * 1e3:8.1f} us {tflops:6.1f} TFLOP/s err {error:.2e}", flush=True)
    print("\n| frames | variant | us (2 convs) | TFLOP/s | rel. error vs fp64 |\n|---|---|---|---|---|")
    for frames in FRAMES:
        subset = [r for r in rows if r[0] == frames]
        best = min((r for r in subset if r[1].startswith("triton")), key=lambda r: r[2])
        for r in subset:
            if not r[1].startswith("triton") or r is best:
                print(f"| {r[0]} | {r[1]} | {r[2] * 1e3:.1f} | {r[3]:.1f} | {r[4]:.1e} |")


if __name__ == "__main__":
    main()
