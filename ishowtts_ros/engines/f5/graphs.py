"""Graph mode: frames padded to static length buckets, and the whole NFE loop of a (batch, bucket, NFE, guidance)
shape captured once as a CUDA graph and replayed, so no Python or kernel-launch cost remains per step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ishowtts_ros.engines.f5.attention import PaddedLayout, RotaryTable

BUCKET_FRAMES = 128
MAX_GRAPH_FRAMES = 4096


def bucket(frames: int) -> int:
    """Padded length for ``frames``: the next multiple of the bucket size with at least one padding frame."""
    return (frames // BUCKET_FRAMES + 1) * BUCKET_FRAMES


@dataclass
class LoopInputs:
    """Everything one sampling loop reads; in graph mode these are copied into a captured graph's buffers."""

    noise: torch.Tensor  # float32 [B, frames, mels]
    context: torch.Tensor  # dtype [rows, frames, dim]: cond/text part of the input projection
    mask: torch.Tensor | PaddedLayout | None
    block_modulations: torch.Tensor  # dtype [steps, depth, 1, 6 * dim]: each block's AdaLN modulation per step
    final_modulations: torch.Tensor  # dtype [steps, 1, 2 * dim]: the final norm's modulation per step
    step_sizes: torch.Tensor  # float32 [steps]
    cfg_strength: torch.Tensor  # float32 []


#: ``(inputs, rope, use_cfg) -> mels``: the sampler's Euler loop on the captured path.
LoopFunction = Callable[[LoopInputs, RotaryTable, bool], torch.Tensor]


class CapturedLoop:
    """One NFE loop captured as a CUDA graph for a fixed (batch, frames, steps, guidance) shape.

    The modulation tables (up to 8.6 MB at NFE 32) are read from buffers shared by every loop of the same NFE:
    replays run one at a time on the GPU worker, each after copying in its own request's values."""

    def __init__(
        self,
        loop: LoopFunction,
        rope: RotaryTable,
        example: LoopInputs,
        use_cfg: bool,
        pool: Any,
        modulations: tuple[torch.Tensor, torch.Tensor],
    ) -> None:
        assert isinstance(example.mask, PaddedLayout), "captured loops run on a padded layout"
        self.rope = rope  # the graph reads it: kept alive with the graph
        self.static = LoopInputs(
            noise=example.noise.clone(),
            context=example.context.clone(),
            mask=example.mask._replace(
                tokens=example.mask.tokens.clone(),
                cu_seqlens=example.mask.cu_seqlens.clone(),
                bias=None if example.mask.bias is None else example.mask.bias.clone(),
                padding=None if example.mask.padding is None else example.mask.padding.clone(),
            ),
            block_modulations=modulations[0],
            final_modulations=modulations[1],
            step_sizes=example.step_sizes.clone(),
            cfg_strength=example.cfg_strength.clone(),
        )
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(2):  # warm-up outside capture: compiles, autotunes, allocates workspaces
                loop(self.static, rope, use_cfg)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        # Thread-local: CUDA work of other threads (another engine, a tool calling the sampler) neither breaks this
        # capture nor is refused while it runs; only this thread's capture-unsafe calls are.
        with torch.cuda.graph(self.graph, pool=pool, capture_error_mode="thread_local"):
            self.output = loop(self.static, rope, use_cfg)

    def run(self, inputs: LoopInputs) -> torch.Tensor:
        static = self.static
        static.noise.copy_(inputs.noise, non_blocking=True)
        static.context.copy_(inputs.context, non_blocking=True)
        assert isinstance(static.mask, PaddedLayout) and isinstance(inputs.mask, PaddedLayout)
        for buffer, value in zip(static.mask, inputs.mask, strict=True):
            if isinstance(buffer, torch.Tensor) and isinstance(value, torch.Tensor):
                buffer.copy_(value, non_blocking=True)
        static.block_modulations.copy_(inputs.block_modulations, non_blocking=True)
        static.final_modulations.copy_(inputs.final_modulations, non_blocking=True)
        static.step_sizes.copy_(inputs.step_sizes, non_blocking=True)
        static.cfg_strength.copy_(inputs.cfg_strength, non_blocking=True)
        self.graph.replay()
        return self.output
