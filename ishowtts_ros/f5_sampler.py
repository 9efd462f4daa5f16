"""The flow-matching sampler: upstream ``CFM.sample`` semantics with the per-request work hoisted out of the loop.

Same function as upstream for the same weights, seed, NFE and text (the tests hold it to that in fp32), but:
- an own Euler loop over upstream's EPSS/sway timesteps (no torchdiffeq), the state kept in float32;
- classifier-free guidance as one batch of 2B;
- everything fixed for a request computed once: text embeddings (cond and dropped), the cond/text part of the
  input projection, the rotary table; and what depends only on (NFE, sway) computed once per sampler: every
  block's AdaLN modulation of every step (the 22 [dim x 6 dim] projections of the time embedding are hoisted out of
  the loop by giving upstream's AdaLN modules identity projections and feeding them the projected values);
- attention through :class:`FastAttention`, a processor for upstream's ``Attention`` module: fused QKV projection
  and SDPA, with a key-padding mask when requests of different lengths are batched together;
- on CUDA ("graph mode"): frames padded to static length buckets, the whole NFE loop captured once per (bucket,
  NFE) as a CUDA graph and replayed, so no Python or kernel-launch cost remains per step; optionally
  ``torch.compile``'d DiT blocks inside the graph (compiled for each bucket's exact shape, shared by all blocks);
  the positional grouped convs as one fused Triton implicit-GEMM kernel each (:mod:`ishowtts_ros.position_conv`),
  or, without Triton, as autotuned channels-last cuDNN convolutions. Batches of concurrent requests run
  shape-generic compiled blocks eagerly on the same padded layout;
- on CUDA, each feed-forward's tanh-GELU runs in its first GEMM's cuBLASLt epilogue (:class:`GeluLinear`);
- padded keys kept out of attention without a slow masked kernel: on Hopper ("lse") the padded keys and values are
  zeroed, cuDNN's unmasked flash attention runs, and each output is rescaled by the softmax mass of the real keys,
  known from the returned log-sum-exp (each zero key adds exactly exp(0) = 1); elsewhere an additive key mask
  ("sdpa") or flash varlen with the padding as its own sequences ("varlen").
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch._dynamo
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pad_sequence

LOG = logging.getLogger(__name__)
BUCKET_FRAMES = 128
MAX_GRAPH_FRAMES = 4096
ATTENTION_KINDS = ("auto", "lse", "sdpa", "varlen")
POSITION_CONV_KINDS = ("auto", "triton", "cudnn")


class PaddedLayout(NamedTuple):
    """Where the real frames are in a padded batch: passed to the DiT blocks in place of a boolean mask.

    Attention runs as flash varlen over ``cu_seqlens`` unless ``padding`` is given (cuDNN flash attention
    corrected by the log-sum-exp) or ``bias`` is given (SDPA with that additive key mask)."""

    tokens: torch.Tensor  # bool [rows, frames]: True for real frames
    cu_seqlens: torch.Tensor  # int32 [2 * rows + 1]: packed boundaries of each row's real run and padding run
    max_len: int
    bias: torch.Tensor | None = None  # dtype [rows, 1, 1, frames]: 0 for real keys, -inf for padding
    padding: torch.Tensor | None = None  # float32 [rows, 1, 1, 1]: number of padded frames of each row


class RotaryTable(NamedTuple):
    """cos/sin of the rotary angles, computed once per length instead of in every attention call; laid out for
    queries and keys in [B, L, H, D] order, the order the fused QKV projection writes them in."""

    cos: torch.Tensor  # float32 [1, frames, 1, rot_dim]
    sin: torch.Tensor


def rotary_table(dit: nn.Module, frames: int) -> RotaryTable:
    freqs, scale = dit.rotary_embed.forward_from_seq_len(frames)
    if scale not in (None, 1, 1.0):
        raise ValueError("xpos-scaled rotary embeddings are not supported by the fast sampler")
    return RotaryTable(freqs.cos()[:, :, None], freqs.sin()[:, :, None])


def apply_rotary(t: torch.Tensor, table: RotaryTable) -> torch.Tensor:
    """x-transformers' ``apply_rotary_pos_emb`` (scale 1) with the cos/sin table precomputed."""
    from x_transformers.x_transformers import rotate_half

    rot_dim = table.cos.shape[-1]
    head, tail = t[..., :rot_dim], t[..., rot_dim:]
    head = head * table.cos + rotate_half(head) * table.sin
    return torch.cat((head, tail), dim=-1).to(t.dtype)


class FastAttention:
    """Attention processor for upstream's ``Attention`` module: fused QKV projection, SDPA or flash varlen.

    Without a mask it computes what upstream's processor computes; with a boolean mask, padded keys are excluded
    from attention (upstream ignores the mask in attention when ``attn_mask_enabled`` is off, so batched and single
    requests would differ); with a :class:`PaddedLayout` it runs flash varlen attention on the packed rows.
    """

    def __init__(self, attn: nn.Module, pe_attn_head: int | None) -> None:
        self.pe_attn_head = pe_attn_head
        with torch.no_grad():
            self.qkv_weight = torch.cat([attn.to_q.weight, attn.to_k.weight, attn.to_v.weight])
            biases = [attn.to_q.bias, attn.to_k.bias, attn.to_v.bias]
            self.qkv_bias = torch.cat(biases) if all(b is not None for b in biases) else None

    def _rotate(self, t: torch.Tensor, table: RotaryTable) -> torch.Tensor:
        """Rotary embedding of [B, L, H, D] queries or keys (only the first ``pe_attn_head`` heads, if set)."""
        if self.pe_attn_head is None:
            return apply_rotary(t, table)
        pn = self.pe_attn_head
        return torch.cat([apply_rotary(t[:, :, :pn], table), t[:, :, pn:]], dim=2)

    def __call__(self, attn: nn.Module, x: torch.Tensor, mask=None, rope=None) -> torch.Tensor:
        from x_transformers.x_transformers import apply_rotary_pos_emb

        batch, length, _ = x.shape
        heads = attn.heads
        qkv = F.linear(x, self.qkv_weight, self.qkv_bias)
        head_dim = qkv.shape[-1] // (3 * heads)
        # Queries and keys are normed and rotated in the [B, L, H, D] order the projection wrote them in;
        # attention takes [B, H, L, D] views of them (no layout copy).
        query, key, value = qkv.view(batch, length, 3, heads, head_dim).unbind(2)
        if attn.q_norm is not None:
            query = attn.q_norm(query)
        if attn.k_norm is not None:
            key = attn.k_norm(key)
        if isinstance(rope, RotaryTable):
            query, key = self._rotate(query, rope), self._rotate(key, rope)
        query, key, value = (t.transpose(1, 2) for t in (query, key, value))
        if rope is not None and not isinstance(rope, RotaryTable):
            freqs, xpos_scale = rope
            q_scale, k_scale = (xpos_scale, xpos_scale**-1.0) if xpos_scale is not None else (1.0, 1.0)
            if self.pe_attn_head is not None:
                pn = self.pe_attn_head
                query = torch.cat([apply_rotary_pos_emb(query[:, :pn], freqs, q_scale), query[:, pn:]], dim=1)
                key = torch.cat([apply_rotary_pos_emb(key[:, :pn], freqs, k_scale), key[:, pn:]], dim=1)
            else:
                query = apply_rotary_pos_emb(query, freqs, q_scale)
                key = apply_rotary_pos_emb(key, freqs, k_scale)
        if isinstance(mask, PaddedLayout) and mask.padding is not None:
            out = lse_corrected_attention(query, key, value, mask).transpose(1, 2)
            token_mask = mask.tokens
        elif isinstance(mask, PaddedLayout) and mask.bias is not None:
            out = F.scaled_dot_product_attention(query, key, value, attn_mask=mask.bias).transpose(1, 2)
            token_mask = mask.tokens
        elif isinstance(mask, PaddedLayout):
            from torch.nn.attention.varlen import varlen_attn

            packed = [t.transpose(1, 2).reshape(batch * length, heads, head_dim) for t in (query, key, value)]
            out = varlen_attn(*packed, mask.cu_seqlens, mask.cu_seqlens, mask.max_len, mask.max_len)
            token_mask = mask.tokens
        else:
            attn_mask = mask[:, None, None, :] if mask is not None else None
            out = F.scaled_dot_product_attention(query, key, value, attn_mask=attn_mask).transpose(1, 2)
            token_mask = mask
        out = out.reshape(batch, length, heads * head_dim).to(query.dtype)
        out = attn.to_out[1](attn.to_out[0](out))
        if token_mask is not None:
            out = out.masked_fill(~token_mask.unsqueeze(-1), 0.0)
        return out


class GeluLinear(nn.Module):
    """The ``Linear`` + tanh-GELU that opens upstream's ``FeedForward``, as one GEMM with the GELU in cuBLASLt's
    epilogue: one pass less over the [rows, 2 x dim] activations (~2.6% of a flow step on an H200). CUDA only: the
    CPU kernel of ``_addmm_activation`` applies the exact GELU instead.

    A module, not a patched ``forward``, so compiled blocks stay shared by all blocks (one compile per bucket)."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.linear = linear

    @staticmethod
    def fuse_into(ff: nn.Module) -> bool:
        """Swap ``ff``'s opening Linear + tanh-GELU for a :class:`GeluLinear`; False where its layout differs."""
        layers = getattr(ff, "ff", None)
        if not isinstance(layers, nn.Sequential) or not isinstance(layers[0], nn.Sequential) or len(layers[0]) != 2:
            return False
        linear, activation = layers[0]
        if not (isinstance(linear, nn.Linear) and linear.bias is not None and isinstance(activation, nn.GELU)):
            return False
        if activation.approximate != "tanh":
            return False
        layers[0] = GeluLinear(linear)
        return True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, x.shape[-1])
        out = torch._addmm_activation(self.linear.bias, rows, self.linear.weight.t(), use_gelu=True)
        return out.view(*x.shape[:-1], -1)


def lse_corrected_attention(query, key, value, layout: PaddedLayout) -> torch.Tensor:
    """Attention over the real keys of a padded batch with cuDNN's unmasked flash kernel ([B, H, L, D] layout).

    Padded keys and values are zeroed, so each padded key scores exactly 0 and adds 1 to the softmax sum ``Z``
    while adding nothing to the weighted values; the real-key result is the kernel's output times
    ``Z / (Z - padding) = 1 / (1 - padding * exp(-lse))``, computed in float32 from the returned log-sum-exp."""
    keep = layout.tokens[:, None, :, None]
    batch, heads, length, head_dim = query.shape
    key, value, scale = key * keep, value * keep, head_dim**-0.5
    if query.device.type == "cuda":
        attention = torch.ops.aten._scaled_dot_product_cudnn_attention
        out, lse = attention(query, key, value, None, True, 0.0, False, False, scale=scale)[:2]
    else:  # the same correction on the CPU kernel, so it is testable without a GPU
        attention = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
        out, lse = attention(query, key, value, 0.0, False, scale=scale)
    real_share = 1.0 - layout.padding * torch.exp(-lse.float().reshape(batch, heads, length, 1))
    return (out.float() / real_share.clamp_min(1e-6)).to(query.dtype)


def channels_last_position_conv(module: nn.Module, x: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
    """Upstream's ``ConvPositionEmbedding`` (masked grouped conv, Mish, twice) on [B, L, D] frames, run as 2-D
    channels-last convolutions with cuDNN autotuning: ~0.7 ms less per flow step on an H200 than its NCL conv1d.

    Only for bucketed shapes (captured loops), where autotuning runs once per bucket, before capture."""
    cudnn = torch.backends.cudnn
    keep = token_mask.unsqueeze(-1)
    hidden = x.masked_fill(~keep, 0.0)
    for index in module.layer_need_mask_idx:  # each conv is followed by its activation (Mish keeps zeros zero)
        conv = module.conv1d[index]
        frames = hidden.transpose(1, 2).unsqueeze(2).contiguous(memory_format=torch.channels_last)
        weight, padding = conv.weight.unsqueeze(2), (0, conv.padding[0])
        with cudnn.flags(enabled=True, benchmark=True, deterministic=cudnn.deterministic, allow_tf32=cudnn.allow_tf32):
            out = F.conv2d(frames, weight, conv.bias, padding=padding, groups=conv.groups)
        hidden = module.conv1d[index + 1](out.squeeze(2).transpose(1, 2)).masked_fill(~keep, 0.0)
    return hidden


def attention_kind(requested: str, device: torch.device) -> str:
    """``auto`` picks the log-sum-exp correction where cuDNN's flash attention runs (Hopper and newer)."""
    if requested not in ATTENTION_KINDS:
        raise ValueError(f"attention must be one of {', '.join(ATTENTION_KINDS)}, not {requested!r}")
    if requested != "auto":
        return requested
    hopper = device.type == "cuda" and torch.cuda.get_device_capability(device) >= (9, 0)
    has_cudnn_attention = hasattr(torch.ops.aten, "_scaled_dot_product_cudnn_attention")
    return "lse" if hopper and has_cudnn_attention else "sdpa"


def position_conv_kind(requested: str, module: nn.Module, device: torch.device) -> str:
    """``auto`` picks the fused Triton kernel wherever it can run, else cuDNN; ``triton`` insists on it."""
    from ishowtts_ros.position_conv import triton_position_conv_unsupported

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


@dataclass
class _LoopInputs:
    """Everything one sampling loop reads; in graph mode these are copied into a captured graph's buffers."""

    noise: torch.Tensor  # float32 [B, frames, mels]
    context: torch.Tensor  # dtype [rows, frames, dim]: cond/text part of the input projection
    mask: torch.Tensor | PaddedLayout | None
    block_modulations: torch.Tensor  # dtype [steps, depth, 1, 6 * dim]: each block's AdaLN modulation per step
    final_modulations: torch.Tensor  # dtype [steps, 1, 2 * dim]: the final norm's modulation per step
    step_sizes: torch.Tensor  # float32 [steps]
    cfg_strength: torch.Tensor  # float32 []


class _Schedule(NamedTuple):
    """What a time grid fixes for every request: see :meth:`FlowSampler._schedule`."""

    step_sizes: torch.Tensor  # float32 [steps]
    block_modulations: torch.Tensor  # dtype [steps, depth, 1, 6 * dim]
    final_modulations: torch.Tensor  # dtype [steps, 1, 2 * dim]


class _CapturedLoop:
    """One NFE loop captured as a CUDA graph for a fixed (batch, frames, steps, guidance) shape.

    The modulation tables (up to 8.6 MB at NFE 32) are read from buffers shared by every loop of the same NFE:
    replays run one at a time on the GPU worker, each after copying in its own request's values."""

    def __init__(
        self, sampler: FlowSampler, example: _LoopInputs, use_cfg: bool, pool, modulations: tuple[torch.Tensor, ...]
    ) -> None:
        self.static = _LoopInputs(
            noise=example.noise.clone(),
            context=example.context.clone(),
            mask=PaddedLayout(*(t.clone() if isinstance(t, torch.Tensor) else t for t in example.mask)),
            block_modulations=modulations[0],
            final_modulations=modulations[1],
            step_sizes=example.step_sizes.clone(),
            cfg_strength=example.cfg_strength.clone(),
        )
        self.rope = rotary_table(sampler.dit, example.noise.shape[1])
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(2):  # warm-up outside capture: compiles, autotunes, allocates workspaces
                sampler._loop(self.static, self.rope, use_cfg, captured=True)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph, pool=pool):
            self.output = sampler._loop(self.static, self.rope, use_cfg, captured=True)

    def run(self, inputs: _LoopInputs) -> torch.Tensor:
        static = self.static
        static.noise.copy_(inputs.noise, non_blocking=True)
        static.context.copy_(inputs.context, non_blocking=True)
        for buffer, value in zip(static.mask, inputs.mask, strict=True):
            if isinstance(buffer, torch.Tensor):
                buffer.copy_(value, non_blocking=True)
        static.block_modulations.copy_(inputs.block_modulations, non_blocking=True)
        static.final_modulations.copy_(inputs.final_modulations, non_blocking=True)
        static.step_sizes.copy_(inputs.step_sizes, non_blocking=True)
        static.cfg_strength.copy_(inputs.cfg_strength, non_blocking=True)
        self.graph.replay()
        return self.output


class FlowSampler:
    """Runs the DiT of an upstream CFM for a batch of requests; owns (and adapts) that CFM.

    ``graphs`` (CUDA only) selects the bucketed, graph-captured path; otherwise frames are exact and each step runs
    eagerly (the reference path, equal to upstream).
    """

    def __init__(
        self,
        cfm: nn.Module,
        device: torch.device,
        dtype: torch.dtype,
        compile_blocks: bool = False,
        graphs: bool = False,
        attention: str = "auto",
        position_conv: str = "auto",
    ):
        self.cfm = cfm.to(device=device, dtype=dtype).eval()
        self.device = device
        self.dtype = dtype
        self.dit = self.cfm.transformer
        self.num_channels = self.cfm.num_channels
        self.graphs = graphs and device.type == "cuda" and dtype in (torch.float16, torch.bfloat16)
        self.attention = attention_kind(attention, device)
        conv_pos_embed = self.dit.input_embed.conv_pos_embed
        self.position_conv = position_conv_kind(position_conv, conv_pos_embed, device)
        self._triton_conv = None
        if self.graphs and self.position_conv == "triton":
            from ishowtts_ros.position_conv import checked_triton_position_conv

            try:
                self._triton_conv = checked_triton_position_conv(conv_pos_embed, dtype, device)
            except RuntimeError as exc:
                if position_conv == "triton":
                    raise
                LOG.warning("positional conv: %s; using cuDNN instead", exc)
                self.position_conv = "cudnn"
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
        self._captured: dict[tuple[int, int, int, bool], _CapturedLoop] = {}
        self._graph_pool = torch.cuda.graph_pool_handle() if self.graphs else None
        self._capture_lock = threading.Lock()
        self._run_block = self._run_captured_block = self._call_block
        if compile_blocks:
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
        """Padded length for ``frames``: the next multiple of the bucket size with at least one padding frame."""
        return (frames // BUCKET_FRAMES + 1) * BUCKET_FRAMES

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
        rows_per_item = 2 if use_cfg else 1
        if self.graphs:
            mask = self._layout(durations, frames, rows_per_item)
        elif len(requests) > 1:
            mask = lens_to_mask(self._to_device(torch.tensor(durations)), frames).repeat(rows_per_item, 1)
        else:
            mask = None
        context = self._context(requests, step_cond, durations, frames, use_cfg, exact=mask is None)
        schedule = self._schedule(steps, sway_sampling_coef)
        inputs = _LoopInputs(
            noise=self._noise(requests, durations, frames),
            context=context,
            mask=mask,
            block_modulations=schedule.block_modulations,
            final_modulations=schedule.final_modulations,
            step_sizes=schedule.step_sizes,
            cfg_strength=torch.full((), cfg_strength, device=self.device),
        )
        if graph_mode:
            x = self._captured_loop(inputs, len(requests), frames, steps, use_cfg).run(inputs)
        else:
            x = self._loop(inputs, rotary_table(self.dit, frames), use_cfg)
        out = torch.where(cond_mask, cond.float(), x)
        return out, durations

    def _captured_loop(self, inputs: _LoopInputs, batch: int, frames: int, steps: int, use_cfg: bool):
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
                self._captured[key] = _CapturedLoop(self, inputs, use_cfg, self._graph_pool, shared)
            return self._captured[key]

    def _loop(self, inputs: _LoopInputs, rope, use_cfg: bool, captured: bool = False) -> torch.Tensor:
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

    def _velocity(self, x, step: int, inputs: _LoopInputs, rope, use_cfg: bool, captured: bool):
        dit = self.dit
        noisy = x.to(self.dtype)
        if use_cfg:
            noisy = torch.cat((noisy, noisy))
        mask = inputs.mask
        token_mask = mask.tokens if isinstance(mask, PaddedLayout) else mask
        hidden = F.linear(noisy, self._proj_noise) + inputs.context
        if captured and self._triton_conv is not None:
            positions = self._triton_conv(hidden, token_mask)
        elif captured:
            positions = channels_last_position_conv(dit.input_embed.conv_pos_embed, hidden, token_mask)
        else:
            positions = dit.input_embed.conv_pos_embed(hidden, mask=token_mask)
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
