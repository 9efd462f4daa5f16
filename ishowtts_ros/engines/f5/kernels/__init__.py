"""Fused kernels standing in for upstream modules on CUDA, each checked against the module it replaces."""

from __future__ import annotations

import contextlib

import torch


def cudnn_switched(enabled: bool, benchmark: bool = False) -> contextlib.AbstractContextManager[None]:
    """cuDNN on or off (and its autotuning) for the convolutions inside, other cuDNN settings as they are."""
    cudnn = torch.backends.cudnn
    return cudnn.flags(
        enabled=enabled, benchmark=benchmark, deterministic=cudnn.deterministic, allow_tf32=cudnn.allow_tf32
    )
