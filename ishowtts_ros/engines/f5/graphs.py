"""Graph mode: frames padded to static length buckets, and one flow step of a (batch, bucket, guidance) shape
captured once as a CUDA graph, then replayed once per step with that step's modulations copied in. The graphs do
not depend on the NFE or the sway schedule, so changing either live (rqt) needs no new capture."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ishowtts_ros.engines.f5.attention import PaddedLayout, RotaryTable

BUCKET_FRAMES = 128
MAX_GRAPH_FRAMES = 4096


def bucket(frames: int) -> int:
    """Padded length for ``frames``: the next multiple of the bucket size with at least one padding frame."""
    return (frames // BUCKET_FRAMES + 1) * BUCKET_FRAMES


def warmup_buckets(first_chunks: Sequence[tuple[int, int]], longest: int) -> tuple[list[int], list[int]]:
    """The buckets to capture before the engine is ready and the ones to capture once it is idle, out of every
    bucket from the shortest reference to a chunk of ``longest`` frames. ``first_chunks`` has each voice's
    (reference frames, frames of its longest first chunk). First chunks set the time to first audio, so their
    buckets come first; a later chunk is computed while the one before it plays, so the first request that meets one
    of the other buckets can pay for its capture (about two steps run without a graph)."""
    everything = range(bucket(min(ref for ref, _ in first_chunks) + 1), bucket(longest) + 1, BUCKET_FRAMES)
    first = {
        frames for ref, chunk in first_chunks for frames in range(bucket(ref + 1), bucket(chunk) + 1, BUCKET_FRAMES)
    }
    return [f for f in everything if f in first], [f for f in everything if f not in first]


@dataclass
class LoopInputs:
    """Everything one sampling loop reads; in graph mode these are copied into a captured step's buffers."""

    noise: torch.Tensor  # float32 [B, frames, mels]: the flow's state, noise at the start
    context: torch.Tensor  # dtype [rows, frames, dim]: cond/text part of the input projection
    mask: torch.Tensor | PaddedLayout | None
    block_modulations: torch.Tensor  # dtype [steps, depth, 1, 6 * dim]: each block's AdaLN modulation per step
    final_modulations: torch.Tensor  # dtype [steps, 1, 2 * dim]: the final norm's modulation per step
    step_sizes: torch.Tensor  # float32 [steps]
    cfg_strength: torch.Tensor  # float32 []


#: ``(inputs, rope, use_cfg) -> mels``: the sampler's Euler loop on the captured path.
LoopFunction = Callable[[LoopInputs, RotaryTable, bool], torch.Tensor]


def _first_step_copy(inputs: LoopInputs) -> LoopInputs:
    """Own copies of ``inputs`` with the time grid cut to its first step: a captured graph's buffers."""
    mask = inputs.mask
    assert isinstance(mask, PaddedLayout), "captured steps run on a padded layout"
    return LoopInputs(
        noise=inputs.noise.clone(),
        context=inputs.context.clone(),
        mask=mask._replace(
            tokens=mask.tokens.clone(),
            cu_seqlens=mask.cu_seqlens.clone(),
            bias=None if mask.bias is None else mask.bias.clone(),
            padding=None if mask.padding is None else mask.padding.clone(),
        ),
        block_modulations=inputs.block_modulations[:1].clone(),
        final_modulations=inputs.final_modulations[:1].clone(),
        step_sizes=inputs.step_sizes[:1].clone(),
        cfg_strength=inputs.cfg_strength.clone(),
    )


class CapturedStep:
    """One Euler step for a fixed (batch, frames, guidance) shape, captured as a CUDA graph that advances the
    state buffer in place; :meth:`run` replays it for every step of any time grid."""

    def __init__(
        self, loop: LoopFunction, rope: RotaryTable, example: LoopInputs, use_cfg: bool, pool: Any, warmup_runs: int
    ) -> None:
        self.rope = rope  # the graph reads it: kept alive with the graph
        self.use_cfg = use_cfg
        self.static = _first_step_copy(example)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup_runs):  # outside capture: compiles, autotunes, allocates workspaces
                loop(self.static, rope, use_cfg)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        # Thread-local: CUDA work of other threads (the GPU worker replaying while this is built elsewhere, a tool
        # calling the sampler) neither breaks this capture nor is refused while it runs.
        with torch.cuda.graph(self.graph, pool=pool, capture_error_mode="thread_local"):
            self.static.noise.copy_(loop(self.static, rope, use_cfg))

    @property
    def example(self) -> LoopInputs:
        """This step's own input buffers: a recapture of the shape (with compiled blocks) warms up on them. A replay
        may be writing them meanwhile; only their shapes matter to a capture, which records into its own copies."""
        return self.static

    def run(self, inputs: LoopInputs) -> torch.Tensor:
        """The final state for ``inputs`` (valid until this graph's next run)."""
        static = self.static
        static.noise.copy_(inputs.noise, non_blocking=True)
        static.context.copy_(inputs.context, non_blocking=True)
        assert isinstance(static.mask, PaddedLayout) and isinstance(inputs.mask, PaddedLayout)
        for buffer, value in zip(static.mask, inputs.mask, strict=True):
            if isinstance(buffer, torch.Tensor) and isinstance(value, torch.Tensor):
                buffer.copy_(value, non_blocking=True)
        static.cfg_strength.copy_(inputs.cfg_strength, non_blocking=True)
        for step in range(inputs.step_sizes.shape[0]):
            static.block_modulations.copy_(inputs.block_modulations[step : step + 1], non_blocking=True)
            static.final_modulations.copy_(inputs.final_modulations[step : step + 1], non_blocking=True)
            static.step_sizes.copy_(inputs.step_sizes[step : step + 1], non_blocking=True)
            self.graph.replay()
        return static.noise
