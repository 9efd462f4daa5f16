"""The flow-matching sampler: upstream ``CFM.sample`` semantics with the per-request work hoisted out of the loop.

Same function as upstream for the same weights, seed, NFE and text (the tests hold it to that in fp32), but:
- an own Euler loop over upstream's EPSS/sway timesteps (no torchdiffeq), the state kept in float32;
- classifier-free guidance as one batch of 2B;
- everything fixed for a request computed once: text embeddings (cond and dropped), the cond/text part of the
  input projection, the rotary table; and what depends only on (NFE, sway) computed once per sampler: every
  block's AdaLN modulation of every step (the 22 [dim x 6 dim] projections of the time embedding are hoisted out of
  the loop by giving upstream's AdaLN modules identity projections and feeding them the projected values);
- attention through :class:`~.attention.FastAttention` (fused QKV, padded keys kept out without a slow mask);
- on CUDA ("graph mode", :mod:`.graphs`): bucketed frames and the NFE loop replayed as a CUDA graph, optionally
  with ``torch.compile``'d DiT blocks inside (compiled for each bucket's exact shape, shared by all blocks) and the
  positional convs as fused Triton kernels (:mod:`.kernels.position_conv`); each feed-forward's tanh-GELU in its
  GEMM's epilogue (:mod:`.kernels.gelu_linear`). Batches of concurrent requests run shape-generic compiled blocks
  eagerly on the same padded layout.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
import torch._dynamo
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pad_sequence

from ishowtts_ros.engines.f5.attention import (
    FastAttention,
    PaddedLayout,
    RotaryTable,
    attention_kind,
    rotary_table,
    sdpa_kernel,
)
from ishowtts_ros.engines.f5.graphs import MAX_GRAPH_FRAMES, CapturedLoop, LoopInputs, bucket
from ishowtts_ros.engines.f5.kernels.gelu_linear import GeluLinear
from ishowtts_ros.engines.f5.kernels.position_conv import channels_last_position_conv, position_conv_kind
from ishowtts_ros.engines.f5.models import UpstreamModule

LOG = logging.getLogger(__name__)


def flow_timesteps(steps: int, sway_sampling_coef: float | None, device: torch.device) -> torch.Tensor:
    """Upstream's time grid: EPSS for the NFEs it has a schedule for, uniform otherwise, then sway sampling."""
    from f5_tts.model.utils import get_epss_timesteps

    t = get_epss_timesteps(steps, device=device, dtype=torch.float32)
    if sway_sampling_coef is not None:
        t = t + sway_sampling_coef * (torch.cos(torch.pi / 2 * t) - 1 + t)
    return t


@dataclass
class SampleRequest:
    """One item of a batch: reference mel [frames, mels], token list of ref+gen text, total frames wanted."""

    cond: torch.Tensor
    tokens: list[str]
    duration: int
    seed: int | None = None


#: Captured loops kept at most (about four NFEs' worth of length buckets): shapes beyond it run uncaptured, so
#: sliding ``nfe_step`` through its range in rqt cannot fill the GPU memory the robot shares.
MAX_CAPTURED_LOOPS = 64


class _Schedule(NamedTuple):
    """What a time grid fixes for every request: see :meth:`FlowSampler._schedule`."""

    step_sizes: torch.Tensor  # float32 [steps]
    block_modulations: torch.Tensor  # dtype [steps, depth, 1, 6 * dim]
    final_modulations: torch.Tensor  # dtype [steps, 1, 2 * dim]


def without_cudnn() -> contextlib.AbstractContextManager[None]:
    """cuDNN off for convolutions whose length changes with every text (the text embedding's and Vocos's depthwise
    convs): on an H100, cuDNN 9 spends ~250 ms planning each new length of the fp16 text-embedding conv, which then
    takes 2.6 ms; PyTorch's own kernels take 2.0 ms with no planning (docs/BENCHMARKS.md)."""
    cudnn = torch.backends.cudnn
    return cudnn.flags(enabled=False, benchmark=False, deterministic=cudnn.deterministic, allow_tf32=cudnn.allow_tf32)


class FlowSampler:
    """Runs the DiT of an upstream CFM for a batch of requests; owns (and adapts) that CFM.

    ``graphs`` (CUDA only) selects the bucketed, graph-captured path; otherwise frames are exact and each step runs
    eagerly (the reference path, equal to upstream).
    """

    def __init__(
        self,
        cfm: UpstreamModule,
        device: torch.device,
        dtype: torch.dtype,
        compile_blocks: bool = False,
        graphs: bool = False,
        attention: str = "auto",
        position_conv: str = "auto",
    ) -> None:
        self.cfm = cfm.to(device=device, dtype=dtype).eval()
        self.device = device
        self.dtype = dtype
        self.dit = self.cfm.transformer
        self.num_channels = self.cfm.num_channels
        self.graphs = graphs and device.type == "cuda" and dtype in (torch.float16, torch.bfloat16)
        self.attention = attention_kind(attention, device)
        self.attention_kernel = sdpa_kernel(self.attention, self.dit, device, dtype)
        self.position_conv, self._triton_conv = self._choose_position_conv(position_conv)
        for block in self.dit.transformer_blocks:
            block.attn.processor = FastAttention(block.attn, block.attn.processor.pe_attn_head)
            if device.type == "cuda":
                GeluLinear.fuse_into(block.ff)
        self._time_projections = self._hoist_time_projections()
        self._schedules: dict[tuple[int, float | None], _Schedule] = {}
        self._static_modulations: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        proj = self.dit.input_embed.proj
        with torch.no_grad():
            self._proj_noise = proj.weight[:, : self.num_channels].contiguous()
            self._proj_context = proj.weight[:, self.num_channels :].contiguous()
        self._proj_bias = proj.bias
        self._captured: dict[tuple[int, int, int, bool], CapturedLoop] = {}
        #: On this thread (the engine's GPU worker), a loop shape seen for the first time (a new NFE from rqt, a
        #: voice with a shorter clip) runs uncaptured at once and is captured when the worker is idle
        #: (:meth:`capture_deferred`), so the request that brings it never waits for a capture. Other callers
        #: (warm-up, tools) capture there and then.
        self.capture_thread: threading.Thread | None = None
        self._deferred: dict[tuple[int, int, int, bool], LoopInputs] = {}
        self._wanted_steps: deque[tuple[int, float | None]] = deque()
        self._graph_pool = torch.cuda.graph_pool_handle() if self.graphs else None
        self._capture_lock = threading.Lock()
        self._run_block = self._run_captured_block = self._call_block
        if compile_blocks:
            self._compile_blocks()

    def _choose_position_conv(self, requested: str) -> tuple[str, Any]:
        """The positional conv kind of captured loops, and the checked Triton kernel where that is the kind."""
        conv_pos_embed = self.dit.input_embed.conv_pos_embed
        kind = position_conv_kind(requested, conv_pos_embed, self.device)
        if not (self.graphs and kind == "triton"):
            return kind, None
        from ishowtts_ros.engines.f5.kernels.position_conv import checked_triton_position_conv

        try:
            return kind, checked_triton_position_conv(conv_pos_embed, self.dtype, self.device)
        except RuntimeError as exc:
            if requested == "triton":
                raise
            LOG.warning("positional conv: %s; using cuDNN instead", exc)
            return "cudnn", None

    def stop_compiling(self) -> None:
        """Run the blocks eagerly from now on (after a failed compile), dropping loops captured with them."""
        self._run_block = self._run_captured_block = self._call_block
        with self._capture_lock:
            self._captured.clear()

    def _compile_blocks(self) -> None:
        torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
        # Captured loops see a handful of bucket shapes, so they get kernels specialised to each (static
        # indexing made the blocks ~18% faster than shape-generic kernels); eager batches of any shape share
        # one dynamic-shape artifact.
        self._run_captured_block = torch.compile(self._call_captured_block, dynamic=False)
        self._run_block = torch.compile(self._call_block, dynamic=True)

    def _hoist_time_projections(self) -> list[nn.Linear]:
        """Take the time projection (SiLU + Linear) out of every AdaLN module (each block's and the final norm's),
        leaving identities: upstream's AdaLN code then runs unchanged on modulations projected once per (NFE,
        sway) by :meth:`_schedule`. The adapted DiT no longer runs upstream's own ``forward``; this sampler does.
        """
        norms = [block.attn_norm for block in self.dit.transformer_blocks] + [self.dit.norm_out]
        projections = []
        for norm in norms:
            if not (isinstance(norm.silu, nn.SiLU) and isinstance(norm.linear, nn.Linear)):
                raise ValueError(f"unexpected AdaLN layout in {type(norm).__name__}: SiLU + Linear expected")
            projections.append(norm.linear)
            norm.silu, norm.linear = nn.Identity(), nn.Identity()
        return projections

    def _schedule(self, steps: int, sway_sampling_coef: float | None) -> _Schedule:
        """What depends only on the time grid, computed once per (NFE, sway): the Euler step sizes, every block's
        AdaLN modulation and the final norm's, one row broadcast over every CFG row and batch item (they share
        the flow time)."""
        key = (steps, sway_sampling_coef)
        if key not in self._schedules:
            times = flow_timesteps(steps, sway_sampling_coef, torch.device("cpu"))
            activated = F.silu(self.dit.time_embed(self._to_device(times[:-1]).to(self.dtype)))
            projected = [F.linear(activated, p.weight, p.bias) for p in self._time_projections]
            self._schedules[key] = _Schedule(
                step_sizes=self._to_device(times[1:] - times[:-1]),
                block_modulations=torch.stack(projected[:-1], dim=1).unsqueeze(2),
                final_modulations=projected[-1].unsqueeze(1),
            )
        return self._schedules[key]

    @staticmethod
    def _call_block(block: nn.Module, x, t, mask, rope):
        return block(x, t, mask=mask, rope=rope)

    @staticmethod
    def _call_captured_block(block: nn.Module, x, t, mask, rope):
        """The same call as ``_call_block``; a separate function so its compiled code is cached separately."""
        return block(x, t, mask=mask, rope=rope)

    @property
    def captured_shapes(self) -> list[tuple[int, int, int, bool]]:
        return sorted(self._captured)

    @staticmethod
    def bucket(frames: int) -> int:
        """Padded length for ``frames`` in graph mode (see :func:`.graphs.bucket`)."""
        return bucket(frames)

    @torch.inference_mode()
    def sample(
        self,
        requests: Sequence[SampleRequest],
        *,
        steps: int,
        cfg_strength: float,
        sway_sampling_coef: float | None,
        max_duration: int = 65536,
    ) -> tuple[torch.Tensor, list[int]]:
        """Mels [B, frames, mels] (float32, reference frames restored) and each item's frame count."""
        from f5_tts.model.utils import lens_to_mask

        # Lengths are worked out on the host and tensors sent with non-blocking copies: no host sync anywhere in
        # here, so the next chunk can be queued while the GPU still runs the previous one.
        conds = [r.cond.to(device=self.device, dtype=self.dtype) for r in requests]
        ref_lens = [c.shape[0] for c in conds]
        durations = [
            min(max(max(len(r.tokens), ref_len) + 1, r.duration), max_duration)
            for r, ref_len in zip(requests, ref_lens, strict=True)
        ]
        frames = max(durations)
        # Single requests replay a captured graph; batches of concurrent requests are GPU-bound already and run
        # eagerly (same padded layout), so the many (batch size x length) combinations never trigger captures on
        # the hot path.
        graph_mode = self.graphs and len(requests) == 1 and self.bucket(frames) <= MAX_GRAPH_FRAMES
        if self.graphs:
            frames = self.bucket(frames)
        cond = pad_sequence(conds, batch_first=True)
        cond = F.pad(cond, (0, 0, 0, frames - cond.shape[1]))
        cond_mask = lens_to_mask(self._to_device(torch.tensor(ref_lens)), frames).unsqueeze(-1)
        step_cond = torch.where(cond_mask, cond, torch.zeros_like(cond))
        use_cfg = cfg_strength >= 1e-5
        mask = self._attention_mask(durations, frames, rows_per_item=2 if use_cfg else 1)
        schedule = self._schedule(steps, sway_sampling_coef)
        inputs = LoopInputs(
            noise=self._noise(requests, durations, frames),
            context=self._context(requests, step_cond, durations, frames, use_cfg, exact=mask is None),
            mask=mask,
            block_modulations=schedule.block_modulations,
            final_modulations=schedule.final_modulations,
            step_sizes=schedule.step_sizes,
            cfg_strength=torch.full((), cfg_strength, device=self.device),
        )
        key = (len(requests), frames, steps, use_cfg)
        deferred = threading.current_thread() is self.capture_thread and key not in self._captured
        if graph_mode and deferred:
            x = self._loop(inputs, rotary_table(self.dit, frames), use_cfg, captured=True)
            self._deferred.setdefault(key, inputs)
        elif graph_mode:
            x = self._captured_loop(inputs, len(requests), frames, steps, use_cfg).run(inputs)
        else:
            x = self._loop(inputs, rotary_table(self.dit, frames), use_cfg)
        out = torch.where(cond_mask, cond.float(), x)
        return out, durations

    def _attention_mask(
        self, durations: list[int], frames: int, rows_per_item: int
    ) -> torch.Tensor | PaddedLayout | None:
        """A padded layout in graph mode, a key mask for eager batches, nothing for one exact-length request."""
        from f5_tts.model.utils import lens_to_mask

        if self.graphs:
            return self._layout(durations, frames, rows_per_item)
        if len(durations) > 1:
            return lens_to_mask(self._to_device(torch.tensor(durations)), frames).repeat(rows_per_item, 1)
        return None

    def _captured_loop(self, inputs: LoopInputs, batch: int, frames: int, steps: int, use_cfg: bool):
        key = (batch, frames, steps, use_cfg)
        with self._capture_lock:
            if key not in self._captured:
                LOG.info("capturing CUDA graph: batch %d, %d frames, NFE %d", batch, frames, steps)
                if steps not in self._static_modulations:
                    self._static_modulations[steps] = (
                        inputs.block_modulations.clone(),
                        inputs.final_modulations.clone(),
                    )
                shared = self._static_modulations[steps]
                rope = rotary_table(self.dit, frames)
                self._captured[key] = CapturedLoop(
                    self._captured_steps, rope, inputs, use_cfg, self._graph_pool, shared
                )
            return self._captured[key]

    @torch.inference_mode()
    def capture_deferred(self) -> bool:
        """Capture one loop that ran uncaptured (the GPU worker calls this when idle); True when one was."""
        while self._wanted_steps and not self._deferred:
            self._defer_shapes_at(*self._wanted_steps.popleft())
        if self._deferred and len(self._captured) >= MAX_CAPTURED_LOOPS:
            LOG.warning(
                "%d loops captured already: %d new shapes stay uncaptured", MAX_CAPTURED_LOOPS, len(self._deferred)
            )
            self._deferred.clear()
        if not self._deferred:
            return False
        (batch, frames, steps, use_cfg), example = self._deferred.popitem()
        self._captured_loop(example, batch, frames, steps, use_cfg)
        return True

    def prepare_steps(self, steps: int, sway_sampling_coef: float | None) -> None:
        """Capture every shape already captured at ``steps`` too, when the worker is idle (an NFE set live); an
        NFE set again before its turn came replaces the earlier one (rqt's slider sends every value it passes)."""
        self._wanted_steps.clear()
        self._wanted_steps.append((steps, sway_sampling_coef))

    def _defer_shapes_at(self, steps: int, sway_sampling_coef: float | None) -> None:
        schedule = self._schedule(steps, sway_sampling_coef)
        for (batch, frames, _, use_cfg), loop in list(self._captured.items()):
            key = (batch, frames, steps, use_cfg)
            if key not in self._captured:
                self._deferred[key] = dataclasses.replace(
                    loop.static,
                    block_modulations=schedule.block_modulations,
                    final_modulations=schedule.final_modulations,
                    step_sizes=schedule.step_sizes,
                )

    def drop_deferred(self) -> None:
        self._wanted_steps.clear()
        self._deferred.clear()

    def _captured_steps(self, inputs: LoopInputs, rope: RotaryTable, use_cfg: bool) -> torch.Tensor:
        """The loop as graph capture records it: bucketed kernels (compiled per shape, fused conv)."""
        return self._loop(inputs, rope, use_cfg, captured=True)

    def _loop(self, inputs: LoopInputs, rope: RotaryTable, use_cfg: bool, captured: bool = False) -> torch.Tensor:
        x = inputs.noise
        for step in range(inputs.step_sizes.shape[0]):
            flow = self._velocity(x, step, inputs, rope, use_cfg, captured)
            x = x + inputs.step_sizes[step] * flow
        return x

    def _layout(self, durations: list[int], frames: int, rows_per_item: int) -> PaddedLayout:
        """Token mask and packed boundaries: each row is a real run followed by a padding run (never empty)."""
        lengths = durations * rows_per_item
        boundaries = [0]
        for row, length in enumerate(lengths):
            boundaries += [row * frames + length, (row + 1) * frames]
        tokens = torch.arange(frames)[None, :] < torch.tensor(lengths)[:, None]
        bias = padding = None
        if self.attention == "sdpa":
            bias = torch.zeros(tokens.shape, dtype=self.dtype).masked_fill(~tokens, float("-inf"))[:, None, None, :]
            bias = self._to_device(bias)
        elif self.attention == "lse":
            padding = self._to_device((frames - torch.tensor(lengths, dtype=torch.float32)).view(-1, 1, 1, 1))
        return PaddedLayout(
            tokens=self._to_device(tokens),
            cu_seqlens=self._to_device(torch.tensor(boundaries, dtype=torch.int32)),
            max_len=frames,
            bias=bias,
            padding=padding,
        )

    def _context(self, requests, step_cond, durations, frames, use_cfg: bool, exact: bool) -> torch.Tensor:
        """The cond/text half of the input projection for every CFG row, computed once per request.

        Text is embedded per item at its own length and zero padded, which equals upstream's masked embedding
        (its text convolutions see zeros beyond the sequence either way)."""
        from f5_tts.model.utils import list_str_to_idx

        rows = []
        for drop_text in (False, True) if use_cfg else (False,):
            embeds = []
            for request, length in zip(requests, durations, strict=True):
                text = self._to_device(list_str_to_idx([request.tokens], self.cfm.vocab_char_map))
                with without_cudnn():
                    embed = self.dit.text_embed(text, seq_len=frames if exact else length, drop_text=drop_text)
                embeds.append(F.pad(embed, (0, 0, 0, frames - embed.shape[1])))
            audio = torch.zeros_like(step_cond) if drop_text else step_cond
            rows.append(torch.cat((audio, torch.cat(embeds)), dim=-1))
        return F.linear(torch.cat(rows), self._proj_context, self._proj_bias)

    def _to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.device.type != "cuda":
            return tensor
        return tensor.pin_memory().to(self.device, non_blocking=True)

    def _noise(self, requests: Sequence[SampleRequest], durations: list[int], frames: int) -> torch.Tensor:
        """Upstream's noise (one draw per item of its own length, seeded per item, zero padded), always drawn in
        float32 so every precision starts from the same noise (upstream draws in the model dtype: equal in fp32)."""
        noise = []
        for request, length in zip(requests, durations, strict=True):
            generator = None
            if request.seed is not None:
                generator = torch.Generator(device=self.device).manual_seed(request.seed)
            noise.append(
                torch.randn(length, self.num_channels, generator=generator, device=self.device, dtype=torch.float32)
            )
        x = pad_sequence(noise, batch_first=True)
        return F.pad(x, (0, 0, 0, frames - x.shape[1]))

    def _velocity(self, x, step: int, inputs: LoopInputs, rope, use_cfg: bool, captured: bool):
        dit = self.dit
        noisy = x.to(self.dtype)
        if use_cfg:
            noisy = torch.cat((noisy, noisy))
        mask = inputs.mask
        token_mask = mask.tokens if isinstance(mask, PaddedLayout) else mask
        hidden = F.linear(noisy, self._proj_noise) + inputs.context
        if not captured or token_mask is None:
            positions = dit.input_embed.conv_pos_embed(hidden, mask=token_mask)
        elif self._triton_conv is not None:
            positions = self._triton_conv(hidden, token_mask)
        else:
            positions = channels_last_position_conv(dit.input_embed.conv_pos_embed, hidden, token_mask)
        hidden = positions + hidden
        residual = hidden
        run_block = self._run_captured_block if captured else self._run_block
        for block, modulation in zip(dit.transformer_blocks, inputs.block_modulations[step], strict=True):
            hidden = run_block(block, hidden, modulation, mask, rope)
        if dit.long_skip_connection is not None:
            hidden = dit.long_skip_connection(torch.cat((hidden, residual), dim=-1))
        out = dit.proj_out(dit.norm_out(hidden, inputs.final_modulations[step])).float()
        if not use_cfg:
            return out
        pred, null_pred = out.chunk(2)
        return pred + (pred - null_pred) * inputs.cfg_strength
