"""Shared fixtures; test processes (nodes, servers, CLIs) inherit this folder on their path so they can load the
test-only engines of :mod:`support.engines`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.engines import TEST_ENGINES, tiny_f5

TEST_ROOT = str(Path(__file__).resolve().parent)
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (TEST_ROOT, os.environ.get("PYTHONPATH", "")) if p)
os.environ["ISHOWTTS_EXTRA_ENGINES"] = TEST_ENGINES


@pytest.fixture(scope="session")
def tiny_engine():
    """One tiny random-init F5 engine per session (real upstream classes, CPU, fp32)."""
    pytest.importorskip("f5_tts", reason="the F5 engine needs f5-tts and torch (pip install 'ishowtts_ros[f5]')")
    engine = tiny_f5()
    yield engine
    engine.close()
