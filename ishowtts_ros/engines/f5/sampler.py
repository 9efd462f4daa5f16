"""The flow-matching sampler: upstream ``CFM.sample`` semantics with the per-request work hoisted out of the loop.

Same function as upstream for the same weights, seed, NFE and text (the tests hold it to that in fp32), but:
- an own Euler loop over upstream's EPSS/sway timesteps (no torchdiffeq), the state kept in float32;
- classifier-free guidance as one batch of 2B;
- everything fixed for a request computed once: text embeddings (cond and dropped), the cond/text part of the
  input projection, the rotary table; and what depends only on (NFE, sway) computed once per sampler: every
  block's AdaLN modulation of every step (the 22 [dim x 6 dim] projections of the time embedding are hoisted out of
  the loop by giving upstream's AdaLN modules identity projections and feeding them the projected values);
- attention through :class:`~.attention.FastAttention` (fused QKV, padded keys kept out without a slow mask);
- on CUDA ("graph mode", :mod:`.graphs`): bucketed frames and one flow step per shape captured as a CUDA graph and
  replayed for every step of any NFE, with the positional convs as fused Triton kernels
  (:mod:`.kernels.position_conv`) and each feed-forward's tanh-GELU in its GEMM's epilogue
  (:mod:`.kernels.gelu_linear`). The graphs are captured without compile first, so the engine serves within
  seconds of starting; the compile thread then recaptures them one by one with ``torch.compile``'d DiT blocks
  (compiled for each bucket's exact shape, shared by all blocks). Which thread captures and compiles, and when a
  graph is swapped, is :mod:`.lifecycle`'s. Batches of concurrent requests run eager blocks on the same padded
  layout: the GPU worker never compiles.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pad_sequence

from ishowtts_ros.engines.f5.attention import (
    FastAttention,
    PaddedLayout,
    RotaryTable,
    attention_kind,
    lse_kernel,
    rotary_table,
    sdpa_kernel,
)
from ishowtts_ros.engines.f5.graphs import MAX_GRAPH_FRAMES, CapturedStep, LoopInputs, bucket
from ishowtts_ros.engines.f5.kernels import cudnn_off
from ishowtts_ros.engines.f5.kernels.gelu_linear import GeluLinear
from ishowtts_ros.engines.f5.kernels.position_conv import channels_last_position_conv, position_conv_kind
from ishowtts_ros.engines.f5.lifecycle import BlockFunction, GraphLifecycle, Shape
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


#: Time grids whose modulation tables are kept (~8 MiB each at NFE 32 for the full model): the tables of a grid
#: cost a few small GEMMs to compute, so sliding the sway or NFE in rqt replaces them instead of adding to GPU memory.
SCHEDULES_KEPT = 2


class _Prepared(NamedTuple):
    """A batch made ready for the loop (:meth:`FlowSampler._prepare`)."""

    inputs: LoopInputs
    key: Shape  # batch, bucketed frames, guidance on
    graph_mode: bool  # a captured graph runs it (single request, bucket within MAX_GRAPH_FRAMES)
    cond: torch.Tensor  # dtype [B, frames, mels]: the reference mels, zero padded
    cond_mask: torch.Tensor  # bool [B, frames, 1]: the reference frames
    durations: list[int]


class _Schedule(NamedTuple):
    """What a time grid fixes for every request: see :meth:`FlowSampler._schedule`."""

    step_sizes: torch.Tensor  # float32 [steps]
    block_modulations: torch.Tensor  # dtype [steps, depth, 1, 6 * dim]
    final_modulations: torch.Tensor  # dtype [steps, 1, 2 * dim]


def without_cudnn() -> contextlib.AbstractContextManager[None]:
    """cuDNN off for convolutions whose length changes with every text (the text embedding's and Vocos's depthwise
    convs): on an H100, cuDNN 9 spends ~250 ms planning each new length of the fp16 text-embedding conv, which then
    takes 2.6 ms; PyTorch's own kernels take 2.0 ms with no planning (docs/BENCHMARKS.md)."""
    return cudnn_off()


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
        self.attention = attention_kind(attention, device, dtype)
        self.attention_kernel = sdpa_kernel(self.attention, self.dit, device, dtype)
        self._lse_kernel = lse_kernel(device, dtype) if self.attention == "lse" else None
        self.position_conv, self._triton_conv = self._choose_position_conv(position_conv)
        for block in self.dit.transformer_blocks:
            block.attn.processor = FastAttention(block.attn, block.attn.processor.pe_attn_head)
            if device.type == "cuda":
                GeluLinear.fuse_into(block.ff)
        self._time_projections = self._hoist_time_projections()
        self._schedules: OrderedDict[tuple[int, float | None], _Schedule] = OrderedDict()
        proj = self.dit.input_embed.proj
        with torch.no_grad():
            self._proj_noise = proj.weight[:, : self.num_channels].contiguous()
            self._proj_context = proj.weight[:, self.num_channels :].contiguous()
        self._proj_bias = proj.bias
        self._graph_pool = torch.cuda.graph_pool_handle() if self.graphs else None
        #: Blocks of eager loops (the reference path, batches): compiled at once without graphs; with graphs always
        #: eager, so a request never waits for a compile (captured steps get compiled blocks from :attr:`lifecycle`).
        self._run_block: BlockFunction = self._call_block
        #: Which thread captures and compiles the flow steps of graph mode, and when a graph is swapped.
        self.lifecycle = GraphLifecycle(
            self._capture, self._call_block, self._compiled_block if compile_blocks and self.graphs else None
        )
        if compile_blocks and not self.graphs:
            self._compile_limit()
            self._run_block = torch.compile(self._call_block, dynamic=True)

    def _choose_position_conv(self, requested: str) -> tuple[str, Any]:
        """The positional conv kind of captured graphs, and the checked Triton kernel where that is the kind."""
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
        """Run eager blocks from now on (after a failed compile); graphs already captured keep what they run."""
        self._run_block = self._call_block
        self.lifecycle.stop_compiling()

    @staticmethod
    def _compile_limit() -> None:
        import torch._dynamo  # only when compiling: its import (with sympy) is seconds before ready otherwise

        torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)

    def _compiled_block(self) -> BlockFunction:
        """The block function of captured steps, compiled: captured steps see a handful of bucket shapes, so they
        get kernels specialised to each (static indexing made the blocks ~18% faster than shape-generic kernels);
        eager batches of any shape share one dynamic-shape artifact (``_run_block``)."""
        self._compile_limit()
        return torch.compile(self._call_captured_block, dynamic=False)

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
        """What depends only on the time grid, kept for the last :data:`SCHEDULES_KEPT` (NFE, sway) pairs: the Euler
        step sizes, every block's AdaLN modulation and the final norm's, one row broadcast over every CFG row and
        batch item (they share the flow time)."""
        key = (steps, sway_sampling_coef)
        schedule = self._schedules.pop(key, None)
        if schedule is None:
            times = flow_timesteps(steps, sway_sampling_coef, torch.device("cpu"))
            activated = F.silu(self.dit.time_embed(self._to_device(times[:-1]).to(self.dtype)))
            projected = [F.linear(activated, p.weight, p.bias) for p in self._time_projections]
            schedule = _Schedule(
                step_sizes=self._to_device(times[1:] - times[:-1]),
                block_modulations=torch.stack(projected[:-1], dim=1).unsqueeze(2),
                final_modulations=projected[-1].unsqueeze(1),
            )
        # Most recent last; a table dropped here stays alive while a request still holds it (its loop's inputs).
        self._schedules[key] = schedule
        while len(self._schedules) > SCHEDULES_KEPT:
            self._schedules.popitem(last=False)
        return schedule

    @staticmethod
    def _call_block(block: nn.Module, x, t, mask, rope):
        return block(x, t, mask=mask, rope=rope)

    @staticmethod
    def _call_captured_block(block: nn.Module, x, t, mask, rope):
        """The same call as ``_call_block``; a separate function so its compiled code is cached separately."""
        return block(x, t, mask=mask, rope=rope)

    @property
    def captured_shapes(self) -> list[Shape]:
        return self.lifecycle.shapes

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
        batch = self._prepare(requests, steps, cfg_strength, sway_sampling_coef, max_duration)
        inputs, key = batch.inputs, batch.key
        if not batch.graph_mode:
            x = self._loop(inputs, rotary_table(self.dit, key[1]), key[2], self._run_block, fused_conv=False)
        else:

            def eager() -> torch.Tensor:  # a shape without a graph yet: eager blocks, never a compile
                return self._loop(inputs, rotary_table(self.dit, key[1]), key[2], self._call_block, fused_conv=True)

            x = self.lifecycle.run(key, inputs, eager)
        out = torch.where(batch.cond_mask, batch.cond.float(), x)
        return out, batch.durations

    @torch.inference_mode()
    def plan(self, requests: Sequence[SampleRequest], *, steps: int, cfg_strength: float) -> None:
        """Leave the graph of ``requests``' shape to the idle captures (:meth:`.GraphLifecycle.on_idle`, the compile
        thread) without running anything now."""
        batch = self._prepare(requests, steps, cfg_strength, None, 65536)
        if batch.graph_mode:
            self.lifecycle.plan(batch.key, batch.inputs)

    @property
    def pending_shapes(self) -> int:
        """Shapes left for a request that meets them or for the idle captures."""
        return self.lifecycle.pending

    def _prepare(
        self,
        requests: Sequence[SampleRequest],
        steps: int,
        cfg_strength: float,
        sway_sampling_coef: float | None,
        max_duration: int,
    ) -> _Prepared:
        """The loop's inputs for ``requests``, and whether (and under which shape) a captured graph runs them."""
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
        return _Prepared(inputs, (len(requests), frames, use_cfg), graph_mode, cond, cond_mask, durations)

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

    @torch.inference_mode()  # on any thread (the compile thread's too): no autograd state in a graph
    def _capture(self, key: Shape, example: LoopInputs, run_block: BlockFunction) -> CapturedStep:
        batch, frames, use_cfg = key
        compiled = run_block is not self._call_block
        LOG.info("capturing CUDA graph: batch %d, %d frames, guidance %s%s", batch, frames, use_cfg,
                 " (compiled blocks)" if compiled else "")  # fmt: skip
        loop = functools.partial(self._loop, run_block=run_block, fused_conv=True)
        # Compiled blocks need a second run before capture (the first compiles and may autotune); eager ones not.
        runs = 2 if compiled else 1
        return CapturedStep(loop, rotary_table(self.dit, frames), example, use_cfg, self._graph_pool, runs)

    def _loop(
        self, inputs: LoopInputs, rope: RotaryTable, use_cfg: bool, run_block: BlockFunction, fused_conv: bool
    ) -> torch.Tensor:
        x = inputs.noise
        for step in range(inputs.step_sizes.shape[0]):
            flow = self._velocity(x, step, inputs, rope, use_cfg, run_block, fused_conv)
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
            lse_kernel=self._lse_kernel or "cudnn",
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

    def _velocity(
        self, x, step: int, inputs: LoopInputs, rope, use_cfg: bool, run_block: BlockFunction, fused_conv: bool
    ):
        dit = self.dit
        noisy = x.to(self.dtype)
        if use_cfg:
            noisy = torch.cat((noisy, noisy))
        mask = inputs.mask
        token_mask = mask.tokens if isinstance(mask, PaddedLayout) else mask
        hidden = F.linear(noisy, self._proj_noise) + inputs.context
        if not fused_conv or token_mask is None:
            positions = dit.input_embed.conv_pos_embed(hidden, mask=token_mask)
        elif self._triton_conv is not None:
            positions = self._triton_conv(hidden, token_mask)
        else:
            positions = channels_last_position_conv(dit.input_embed.conv_pos_embed, hidden, token_mask)
        hidden = positions + hidden
        residual = hidden
        for block, modulation in zip(dit.transformer_blocks, inputs.block_modulations[step], strict=True):
            hidden = run_block(block, hidden, modulation, mask, rope)
        if dit.long_skip_connection is not None:
            hidden = dit.long_skip_connection(torch.cat((hidden, residual), dim=-1))
        out = dit.proj_out(dit.norm_out(hidden, inputs.final_modulations[step])).float()
        if not use_cfg:
            return out
        pred, null_pred = out.chunk(2)
        return pred + (pred - null_pred) * inputs.cfg_strength
