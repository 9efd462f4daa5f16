"""Fused kernels standing in for upstream modules on CUDA, each checked against the module it replaces."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import torch

_off_lock = threading.Lock()
_off_depth = 0
_enabled_before = True


@contextlib.contextmanager
def cudnn_off() -> Iterator[None]:
    """cuDNN off for the convolutions inside, on every thread that asks at the same time.

    ``torch.backends.cudnn.enabled`` is process-wide, not per thread: a plain ``cudnn.flags`` block on one thread
    restores, on exit, the value it saw on entry, which may be another thread's, and switches cuDNN back on under a
    thread still inside its own block. Here every thread only ever asks for "off": the first one in switches it
    off, the last one out restores what was there before, and the switch never flips under a thread inside."""
    global _off_depth, _enabled_before
    with _off_lock:
        if _off_depth == 0:
            _enabled_before = torch.backends.cudnn.enabled
            torch.backends.cudnn.enabled = False
        _off_depth += 1
    try:
        yield
    finally:
        with _off_lock:
            _off_depth -= 1
            if _off_depth == 0:
                torch.backends.cudnn.enabled = _enabled_before
