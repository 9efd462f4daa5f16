"""Attention for upstream's DiT blocks: a processor with a fused QKV projection, the rotary table computed once per
length, and three ways to keep padded keys out of attention when frames are bucketed:

- ``lse``: padded keys and values are zeroed, an unmasked flash kernel runs (cuDNN's on Hopper and newer,
  FlashAttention-2 on Ampere and Ada, an Orin's sm 8.7 among them), and each output is rescaled by the softmax mass
  of the real keys, known from the returned log-sum-exp (each zero key adds exactly exp(0) = 1);
- ``sdpa``: an additive key mask (PyTorch picks the kernel);
- ``varlen``: flash varlen with each row's padding as its own sequence (torch >= 2.9).
"""

from __future__ import annotations

import functools
import importlib.util
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F

from ishowtts_ros.core.errors import EngineError
from ishowtts_ros.engines.f5.options import ATTENTION_KINDS


class PaddedLayout(NamedTuple):
    """Where the real frames are in a padded batch: passed to the DiT blocks in place of a boolean mask.

    Attention runs as flash varlen over ``cu_seqlens`` unless ``padding`` is given (cuDNN flash attention
    corrected by the log-sum-exp) or ``bias`` is given (SDPA with that additive key mask)."""

    tokens: torch.Tensor  # bool [rows, frames]: True for real frames
    cu_seqlens: torch.Tensor  # int32 [2 * rows + 1]: packed boundaries of each row's real run and padding run
    max_len: int
    bias: torch.Tensor | None = None  # dtype [rows, 1, 1, frames]: 0 for real keys, -inf for padding
    padding: torch.Tensor | None = None  # float32 [rows, 1, 1, 1]: number of padded frames of each row
    lse_kernel: str = "cudnn"  # with ``padding``: the kernel that returns the log-sum-exp (see :func:`lse_kernel`)


class RotaryTable(NamedTuple):
    """cos/sin of the rotary angles, computed once per length instead of in every attention call; laid out for
    queries and keys in [B, L, H, D] order, the order the fused QKV projection writes them in."""

    cos: torch.Tensor  # float32 [1, frames, 1, rot_dim]
    sin: torch.Tensor


def rotary_table(dit: Any, frames: int) -> RotaryTable:
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


AttentionMask = torch.Tensor | PaddedLayout | None


class FastAttention(torch.nn.Module):
    """Attention processor for upstream's ``Attention`` module: fused QKV projection, then SDPA or a padded kernel.

    Without a mask it computes what upstream's processor computes; with a boolean mask, padded keys are excluded
    from attention (upstream ignores the mask in attention when ``attn_mask_enabled`` is off, so batched and single
    requests would differ); with a :class:`PaddedLayout` it runs the layout's padded kernel.

    A module, not a plain object: Dynamo inlines modules and treats their buffers as graph inputs, so all DiT blocks
    share one compiled graph. A plain processor object per block is guarded on by identity, and torch 2.5-2.7 then
    compile each block separately (22 graphs per length bucket, the recompile limit hit by the third bucket).
    """

    qkv_weight: torch.Tensor
    qkv_bias: torch.Tensor | None

    def __init__(self, attn: Any, pe_attn_head: int | None) -> None:
        super().__init__()
        self.pe_attn_head = pe_attn_head
        with torch.no_grad():
            qkv_weight = torch.cat([attn.to_q.weight, attn.to_k.weight, attn.to_v.weight])
            biases = [attn.to_q.bias, attn.to_k.bias, attn.to_v.bias]
            qkv_bias = torch.cat(biases) if all(b is not None for b in biases) else None
        # Non-persistent: derived from upstream's weights, never saved in a state dict.
        self.register_buffer("qkv_weight", qkv_weight, persistent=False)
        self.register_buffer("qkv_bias", qkv_bias, persistent=False)

    def _rotate(self, t: torch.Tensor, table: RotaryTable) -> torch.Tensor:
        """Rotary embedding of [B, L, H, D] queries or keys (only the first ``pe_attn_head`` heads, if set)."""
        if self.pe_attn_head is None:
            return apply_rotary(t, table)
        pn = self.pe_attn_head
        return torch.cat([apply_rotary(t[:, :, :pn], table), t[:, :, pn:]], dim=2)

    def forward(self, attn: Any, x: torch.Tensor, mask: AttentionMask = None, rope: Any = None) -> torch.Tensor:
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
        if rope is not None:
            query, key = self._rotate(query, rope), self._rotate(key, rope)
        query, key, value = (t.transpose(1, 2) for t in (query, key, value))
        out, token_mask = attend(query, key, value, mask)
        out = out.reshape(batch, length, heads * head_dim).to(query.dtype)
        out = attn.to_out[1](attn.to_out[0](out))
        if token_mask is not None:
            out = out.masked_fill(~token_mask.unsqueeze(-1), 0.0)
        return out


def attend(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: AttentionMask
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Attention of [B, H, L, D] inputs as [B, L, H, D], and the token mask the output is to be masked with."""
    if isinstance(mask, PaddedLayout) and mask.padding is not None:
        return lse_corrected_attention(query, key, value, mask).transpose(1, 2), mask.tokens
    if isinstance(mask, PaddedLayout) and mask.bias is not None:
        out = F.scaled_dot_product_attention(query, key, value, attn_mask=mask.bias)
        return out.transpose(1, 2), mask.tokens
    if isinstance(mask, PaddedLayout):
        from torch.nn.attention import varlen

        batch, heads, length, head_dim = query.shape
        q, k, v = (t.transpose(1, 2).reshape(batch * length, heads, head_dim) for t in (query, key, value))
        packed = varlen.varlen_attn(q, k, v, mask.cu_seqlens, mask.cu_seqlens, mask.max_len, mask.max_len)
        return (packed if isinstance(packed, torch.Tensor) else packed[0]), mask.tokens
    attn_mask = mask[:, None, None, :] if mask is not None else None
    return F.scaled_dot_product_attention(query, key, value, attn_mask=attn_mask).transpose(1, 2), mask


def lse_corrected_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, layout: PaddedLayout
) -> torch.Tensor:
    """Attention over the real keys of a padded batch with cuDNN's unmasked flash kernel ([B, H, L, D] layout).

    Padded keys and values are zeroed, so each padded key scores exactly 0 and adds 1 to the softmax sum ``Z``
    while adding nothing to the weighted values; the real-key result is the kernel's output times
    ``Z / (Z - padding) = 1 / (1 - padding * exp(-lse))``, computed in float32 from the returned log-sum-exp."""
    assert layout.padding is not None
    keep = layout.tokens[:, None, :, None]
    batch, heads, length, head_dim = query.shape
    key, value, scale = key * keep, value * keep, head_dim**-0.5
    out, lse = flash_with_lse(query, key, value, scale, layout.lse_kernel)
    real_share = 1.0 - layout.padding * torch.exp(-lse.float().reshape(batch, heads, length, 1))
    return (out.float() / real_share.clamp_min(1e-6)).to(query.dtype)


def flash_with_lse(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float, kernel: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Unmasked attention ([B, H, L, D]) and its log-sum-exp from ``kernel`` (cudnn or flash; on the CPU its own)."""
    if query.device.type != "cuda":
        kernel = "cpu"
    if kernel == "cudnn":
        attention = torch.ops.aten._scaled_dot_product_cudnn_attention
        return attention(query, key, value, None, True, 0.0, False, False, scale=scale)[:2]
    if kernel == "flash":
        attention = torch.ops.aten._scaled_dot_product_flash_attention
        return attention(query, key, value, 0.0, False, False, scale=scale)[:2]
    # The same correction on the CPU kernel, so it is testable without a GPU.
    return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(query, key, value, 0.0, False, scale=scale)


def lse_kernel(device: torch.device, dtype: torch.dtype) -> str | None:
    """The kernel the ``lse`` path runs here: cuDNN's flash attention on Hopper and newer (the fastest there),
    else FlashAttention-2 on sm 8.0+ (Ampere, an Orin's 8.7, Ada), each only where this torch build runs it and
    PyTorch's switch for it (``torch.backends.cuda.enable_*_sdp``) is on; ``None`` where neither runs."""
    if device.type != "cuda":
        return "cpu"
    capability = torch.cuda.get_device_capability(device)
    candidates = []
    if capability >= (9, 0) and torch.backends.cuda.cudnn_sdp_enabled():
        candidates.append("cudnn")
    if capability >= (8, 0) and torch.backends.cuda.flash_sdp_enabled() and dtype in (torch.float16, torch.bfloat16):
        candidates.append("flash")
    return next((kernel for kernel in candidates if _kernel_runs(kernel, device, dtype)), None)


@functools.cache
def _kernel_runs(kernel: str, device: torch.device, dtype: torch.dtype) -> bool:
    """Whether ``kernel`` runs on a tiny input here (JetPack's torch builds may leave a kernel out); probed once
    per process, though choosing and reporting the attention kind both ask."""
    query = torch.zeros(1, 1, 128, 64, device=device, dtype=dtype)
    try:
        lse = flash_with_lse(query, query, query, 0.125, kernel)[1]
    except (RuntimeError, AttributeError, NotImplementedError):
        return False
    return bool(torch.isfinite(lse).all())


def attention_kind(requested: str, device: torch.device, dtype: torch.dtype = torch.float16) -> str:
    """``auto`` picks the log-sum-exp correction where a flash kernel that returns it runs (:func:`lse_kernel`),
    else the masked SDPA; a kind that cannot run here is refused when the engine is built."""
    if requested not in ATTENTION_KINDS:
        raise ValueError(f"attention must be one of {', '.join(ATTENTION_KINDS)}, not {requested!r}")
    if requested == "varlen" and importlib.util.find_spec("torch.nn.attention.varlen") is None:
        raise EngineError(f"attention 'varlen' needs torch >= 2.9 (this is {torch.__version__}): use auto, lse or sdpa")
    if requested == "lse" and lse_kernel(device, dtype) is None:
        raise EngineError(
            "attention 'lse' needs cuDNN flash attention (sm 9.0+) or FlashAttention-2 (sm 8.0+, fp16/bf16) in this "
            "torch build: use auto or sdpa"
        )
    if requested != "auto":
        return requested
    return "lse" if device.type == "cuda" and lse_kernel(device, dtype) is not None else "sdpa"


def sdpa_kernel(kind: str, dit: Any, device: torch.device, dtype: torch.dtype) -> str:
    """The attention kernel that ``kind`` runs for this model on this device, for diagnostics: ``lse`` and
    ``varlen`` call theirs directly; for ``sdpa`` (an additive key mask) it is PyTorch's own dispatch decision,
    asked with the model's head shape (on Ampere without cuDNN attention: the memory-efficient kernel)."""
    if kind == "lse":
        names = {"cudnn": "cudnn flash", "flash": "flash-attention-2", "cpu": "cpu flash"}
        return f"{names[lse_kernel(device, dtype) or 'cpu']} (log-sum-exp corrected)"
    if kind == "varlen":
        return "flash varlen"
    attn = dit.transformer_blocks[0].attn
    heads, head_dim = attn.heads, attn.inner_dim // attn.heads
    query = torch.zeros(1, heads, 256, head_dim, device=device, dtype=dtype)
    bias = torch.zeros(1, 1, 1, 256, device=device, dtype=dtype)
    choice = torch._fused_sdp_choice(query, query, query, bias)
    from torch.nn.attention import SDPBackend

    return f"sdpa {SDPBackend(choice).name.lower()}"
