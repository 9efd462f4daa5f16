"""A machine without Triton, as JetPack's torch often is: imported by every Python process started with this folder
on PYTHONPATH, it makes Triton absent the way Python sees a module that is not installed: ``import triton`` raises
ModuleNotFoundError and ``importlib.util.find_spec("triton")`` returns None (what torch checks)."""

import sys

sys.modules["triton"] = None  # type: ignore[assignment]
