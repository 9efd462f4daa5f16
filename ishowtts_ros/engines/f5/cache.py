"""Where torch.compile keeps its kernels for this engine, torch-free (``ishowtts doctor`` reads it too)."""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from pathlib import Path


def compile_cache_dir(environ: Mapping[str, str] = os.environ) -> str:
    """``$TORCHINDUCTOR_CACHE_DIR`` if set, else ``~/.cache/ishowtts_ros/torchinductor`` (``$XDG_CACHE_HOME``)."""
    if "TORCHINDUCTOR_CACHE_DIR" in environ:
        return environ["TORCHINDUCTOR_CACHE_DIR"]
    base = Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return str(base / "ishowtts_ros" / "torchinductor")


def persistent_compile_cache(environ: MutableMapping[str, str] = os.environ) -> str:
    """Point torch.compile's cache (Inductor's kernels, and the Triton binaries under it) at a folder that survives
    a reboot, unless ``TORCHINDUCTOR_CACHE_DIR`` is already set: its default lives in /tmp, which Ubuntu (JetPack)
    empties at boot, so every robot start-up would compile from scratch (~60 s on an H200, minutes on an Orin)."""
    environ["TORCHINDUCTOR_CACHE_DIR"] = compile_cache_dir(environ)
    return environ["TORCHINDUCTOR_CACHE_DIR"]
