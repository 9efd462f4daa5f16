"""The flow-matching sampler: upstream ``CFM.sample`` semantics with the per-request work hoisted out of the loop.

Same function as upstream for the same weights, seed, NFE and text (the tests hold it to that in fp32), but:
- an own Euler loop over upstream's EPSS/sway timesteps (no torchdiffeq), the state kept in float32;
- classifier-free guidance as one batch of 2B;
- everything fixed for a request computed once: text embeddings (cond and dropped), the cond/text part of the
  input projection, the rotary table, the time embeddings of every step;
- attention through :class:`FastAttention`, a processor for upstream's ``Attention`` module: fused QKV
  projection and SDPA (flash attention on CUDA), with a key-padding mask when requests of different lengths are
  batched together;
- on CUDA, optionally ``torch.compile``'d DiT blocks (one compiled artifact shared by all blocks, shapes dynamic).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch._dynamo
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pad_sequence

LOG = logging.getLogger(__name__)


class FastAttention:
    """Attention processor for upstream's ``Attention`` module: fused QKV projection and masked SDPA.

    Without a mask it computes what upstream's processor computes; with a mask, padded keys are excluded from
    attention (upstream ignores the mask in attention when ``attn_mask_enabled`` is off, so batched and single
    requests would differ).
    """

    def __init__(self, attn: nn.Module, pe_attn_head: int | None) -> None:
        self.pe_attn_head = pe_attn_head
        with torch.no_grad():
            self.qkv_weight = torch.cat([attn.to_q.weight, attn.to_k.weight, attn.to_v.weight])
            biases = [attn.to_q.bias, attn.to_k.bias, attn.to_v.bias]
            self.qkv_bias = torch.cat(biases) if all(b is not None for b in biases) else None

    def __call__(self, attn: nn.Module, x: torch.Tensor, mask: torch.Tensor | None = None, rope=None) -> torch.Tensor:
        from x_transformers.x_transformers import apply_rotary_pos_emb

        batch, length, _ = x.shape
        heads = attn.heads
        query, key, value = F.linear(x, self.qkv_weight, self.qkv_bias).chunk(3, dim=-1)
        head_dim = key.shape[-1] // heads
        query = query.view(batch, length, heads, head_dim).transpose(1, 2)
        key = key.view(batch, length, heads, head_dim).transpose(1, 2)
        value = value.view(batch, length, heads, head_dim).transpose(1, 2)
        if attn.q_norm is not None:
            query = attn.q_norm(query)
        if attn.k_norm is not None:
            key = attn.k_norm(key)
        if rope is not None:
            freqs, xpos_scale = rope
            q_scale, k_scale = (xpos_scale, xpos_scale**-1.0) if xpos_scale is not None else (1.0, 1.0)
            if self.pe_attn_head is not None:
                pn = self.pe_attn_head
                query = torch.cat([apply_rotary_pos_emb(query[:, :pn], freqs, q_scale), query[:, pn:]], dim=1)
                key = torch.cat([apply_rotary_pos_emb(key[:, :pn], freqs, k_scale), key[:, pn:]], dim=1)
            else:
                query = apply_rotary_pos_emb(query, freqs, q_scale)
                key = apply_rotary_pos_emb(key, freqs, k_scale)
        attn_mask = mask[:, None, None, :] if mask is not None else None
        out = F.scaled_dot_product_attention(query, key, value, attn_mask=attn_mask)
        out = out.transpose(1, 2).reshape(batch, length, heads * head_dim).to(query.dtype)
        out = attn.to_out[1](attn.to_out[0](out))
        if mask is not None:
            out = out.masked_fill(~mask.unsqueeze(-1), 0.0)
        return out


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


class FlowSampler:
    """Runs the DiT of an upstream CFM for a batch of requests; owns (and adapts) that CFM."""

    def __init__(self, cfm: nn.Module, device: torch.device, dtype: torch.dtype, compile_blocks: bool = False):
        self.cfm = cfm.to(device=device, dtype=dtype).eval()
        self.device = device
        self.dtype = dtype
        self.dit = self.cfm.transformer
        self.num_channels = self.cfm.num_channels
        for block in self.dit.transformer_blocks:
            block.attn.processor = FastAttention(block.attn, block.attn.processor.pe_attn_head)
        proj = self.dit.input_embed.proj
        with torch.no_grad():
            self._proj_noise = proj.weight[:, : self.num_channels].contiguous()
            self._proj_context = proj.weight[:, self.num_channels :].contiguous()
        self._proj_bias = proj.bias
        self._timestep_cache: dict[tuple[int, float | None], torch.Tensor] = {}
        self._run_block = self._call_block
        if compile_blocks:
            torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
            self._run_block = torch.compile(self._call_block, dynamic=True, fullgraph=True)

    @staticmethod
    def _call_block(block: nn.Module, x, t, mask, rope):
        return block(x, t, mask=mask, rope=rope)

    @torch.inference_mode()
    def sample(
        self,
        requests: Sequence[SampleRequest],
        *,
        steps: int,
        cfg_strength: float,
        sway_sampling_coef: float | None,
        max_duration: int = 65536,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mels [B, frames, mels] (float32, reference frames restored) and each item's frame count."""
        from f5_tts.model.utils import lens_to_mask, list_str_to_idx

        device, dtype = self.device, self.dtype
        batch = len(requests)
        # Lengths are worked out on the host and sent with non-blocking copies: no host sync anywhere in here, so
        # the next chunk can be queued while the GPU still runs the previous one.
        conds = [r.cond.to(device=device, dtype=dtype) for r in requests]
        ref_lens = [c.shape[0] for c in conds]
        durations = [
            min(max(max(len(r.tokens), ref_len) + 1, r.duration), max_duration)
            for r, ref_len in zip(requests, ref_lens, strict=True)
        ]
        frames = max(durations)
        lens = self._to_device(torch.tensor(ref_lens))
        duration = self._to_device(torch.tensor(durations))
        text = self._to_device(list_str_to_idx([r.tokens for r in requests], self.cfm.vocab_char_map))

        cond = pad_sequence(conds, batch_first=True)
        cond = F.pad(cond, (0, 0, 0, frames - cond.shape[1]))
        cond_mask = lens_to_mask(lens, frames).unsqueeze(-1)
        step_cond = torch.where(cond_mask, cond, torch.zeros_like(cond))
        mask = lens_to_mask(duration, frames) if batch > 1 else None
        seq_len = duration if mask is not None else frames

        use_cfg = cfg_strength >= 1e-5
        text_embed = self.dit.text_embed(text, seq_len=seq_len, drop_text=False)
        context = [torch.cat((step_cond, text_embed), dim=-1)]
        if use_cfg:
            null_embed = self.dit.text_embed(text, seq_len=seq_len, drop_text=True)
            context.append(torch.cat((torch.zeros_like(step_cond), null_embed), dim=-1))
        context_proj = F.linear(torch.cat(context), self._proj_context, self._proj_bias)
        rows = context_proj.shape[0]
        row_mask = mask.repeat(rows // batch, 1) if mask is not None else None
        rope = self.dit.rotary_embed.forward_from_seq_len(frames)

        t = self._timesteps(steps, sway_sampling_coef)
        time_embeds = self.dit.time_embed(t[:-1].to(dtype).repeat_interleave(rows)).view(steps, rows, -1)
        x = self._noise(requests, durations, frames)
        for step in range(steps):
            flow = self._velocity(x, time_embeds[step], context_proj, row_mask, rope, cfg_strength, use_cfg)
            x = x + (t[step + 1] - t[step]) * flow
        out = torch.where(cond_mask, cond.float(), x)
        return out, duration

    def _to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.device.type != "cuda":
            return tensor
        return tensor.pin_memory().to(self.device, non_blocking=True)

    def _timesteps(self, steps: int, sway_sampling_coef: float | None) -> torch.Tensor:
        key = (steps, sway_sampling_coef)
        if key not in self._timestep_cache:
            self._timestep_cache[key] = self._to_device(flow_timesteps(steps, sway_sampling_coef, torch.device("cpu")))
        return self._timestep_cache[key]

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

    def _velocity(self, x, time_embed, context_proj, mask, rope, cfg_strength: float, use_cfg: bool):
        dit = self.dit
        noisy = x.to(self.dtype)
        if use_cfg:
            noisy = torch.cat((noisy, noisy))
        hidden = F.linear(noisy, self._proj_noise) + context_proj
        hidden = dit.input_embed.conv_pos_embed(hidden, mask=mask) + hidden
        residual = hidden
        for block in dit.transformer_blocks:
            hidden = self._run_block(block, hidden, time_embed, mask, rope)
        if dit.long_skip_connection is not None:
            hidden = dit.long_skip_connection(torch.cat((hidden, residual), dim=-1))
        out = dit.proj_out(dit.norm_out(hidden, time_embed)).float()
        if not use_cfg:
            return out
        pred, null_pred = out.chunk(2)
        return pred + (pred - null_pred) * cfg_strength
