"""Markers for tests that need optional packages."""

import importlib.util

import pytest

MISSING_F5 = [name for name in ("torch", "torchaudio", "f5_tts", "vocos") if importlib.util.find_spec(name) is None]
needs_f5 = pytest.mark.skipif(bool(MISSING_F5), reason=f"needs {', '.join(MISSING_F5)}")
